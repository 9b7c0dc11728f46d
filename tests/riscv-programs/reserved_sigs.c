// The dispositions of signals 32-34 at start, read with the raw system call (glibc's
// sigaction hides its reserved 32 and 33). Started by Rust's Command, which uses the host
// C library's posix_spawn: that leaves 32 and 33 ignored in the spawned emulator, which
// must not pass this artefact of the host's library on to the guest.
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
struct ksa { unsigned long h, f, m; };
int main(void) {
    for (int s = 32; s <= 34; s++) {
        struct ksa k;
        long r = syscall(SYS_rt_sigaction, s, 0, &k, 8);
        printf("signal %d at start: %ld %s\n", s, r, k.h == 1 ? "ignored" : k.h == 0 ? "default" : "handled");
    }
    return 0;
}
