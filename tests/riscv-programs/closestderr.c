// Closes its standard error and exits, as programs using gnulib's close_stdout do (coreutils,
// xz): Tandem's `--stats` line must still reach the stderr Tandem was started with.
#include <unistd.h>

int main(void) {
    return close(2) == 0 ? 0 : 1;
}
