// Jumping into data that is not code: the default SIGILL action must end the process, like on
// real hardware. The handler variant first checks a jump to an unmapped address gives SIGSEGV.
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static sigjmp_buf env;
static void on_signal(int sig) { siglongjmp(env, sig); }

int main(void) {
    signal(SIGSEGV, on_signal);
    int r = sigsetjmp(env, 1);
    if (r == 0) {
        ((void (*)(void))0x123456000)();
    }
    printf("unmapped jump: signal %d\n", r);
    static unsigned char junk[64];
    memset(junk, 0, sizeof junk); // 0x0000 is a defined illegal instruction
    fflush(stdout);
    // junk is in .bss: not executable, so a real kernel raises SIGSEGV (exec fault) here.
    r = sigsetjmp(env, 1);
    if (r == 0) ((void (*)(void))junk)();
    printf("data jump: signal %d\n", r);
    fflush(stdout);
    signal(SIGSEGV, SIG_DFL);
    ((void (*)(void))0x8)();
    return 0;
}
