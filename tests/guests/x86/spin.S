/* Never ends by itself: for tests that stop Tandem from outside. */
#include "prelude.S"
user_main:
    lea message(%rip), %rsi
    call puts
1:  jmp 1b
message:
    .asciz "spinning\n"
