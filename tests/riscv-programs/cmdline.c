/* /proc/self/cmdline and /proc/<pid>/cmdline show the program's own argv (not the
 * emulator's command line), before and after an exec with arguments. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void show(const char *path, int argc, char **argv) {
  char buf[4096];
  int fd = open(path, O_RDONLY);
  if (fd < 0) {
    perror(path);
    return;
  }
  ssize_t n = read(fd, buf, sizeof buf);
  close(fd);
  int entries = 0, same = 1;
  for (ssize_t i = 0; i < n; i += strlen(buf + i) + 1) {
    if (entries >= argc || strcmp(buf + i, argv[entries]) != 0)
      same = 0;
    entries++;
  }
  printf("%s: %d entries, %s argv\n", strncmp(path, "/proc/self", 10) ? "/proc/PID/cmdline" : path,
         entries, same && entries == argc ? "same as" : "differs from");
}

int main(int argc, char **argv) {
  char pidpath[64];
  snprintf(pidpath, sizeof pidpath, "/proc/%d/cmdline", (int)getpid());
  show("/proc/self/cmdline", argc, argv);
  show(pidpath, argc, argv);
  if (argc == 1) {
    char *args[] = {argv[0], "a", "b c", "", NULL};
    fflush(stdout);
    execv(argv[0], args);
    perror("execv");
    return 1;
  }
  return 0;
}
