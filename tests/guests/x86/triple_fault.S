/* Faults in ring 3 with an empty IDT: the CPU triple-faults. */
#define NO_IDT
#include "prelude.S"
user_main:
    ud2
