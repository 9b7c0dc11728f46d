// Puts a file of its own at descriptor 100, where Tandem keeps its copy of stderr for
// `--stats`: the statistics line must not land in the guest's file.
#include <fcntl.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || dup2(fd, 100) != 100) return 1;
    return 0;
}
