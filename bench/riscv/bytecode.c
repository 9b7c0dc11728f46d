// A small stack-based bytecode interpreter (switch dispatch: indirect branches) running
// nested loops and a recursive-free Fibonacci.
#include <stdint.h>
#include <stdio.h>

enum { PUSH, LOAD, STORE, ADD, SUB, MUL, LT, JZ, JMP, DUP, DROP, MOD, HALT };

static int64_t run(const int32_t *code, int64_t *vars) {
    int64_t stack[64];
    int sp = 0, pc = 0;
    for (;;) {
        int32_t op = code[pc++];
        switch (op) {
        case PUSH: stack[sp++] = code[pc++]; break;
        case LOAD: stack[sp++] = vars[code[pc++]]; break;
        case STORE: vars[code[pc++]] = stack[--sp]; break;
        case ADD: sp--; stack[sp - 1] += stack[sp]; break;
        case SUB: sp--; stack[sp - 1] -= stack[sp]; break;
        case MUL: sp--; stack[sp - 1] *= stack[sp]; break;
        case MOD: sp--; stack[sp - 1] %= stack[sp]; break;
        case LT: sp--; stack[sp - 1] = stack[sp - 1] < stack[sp]; break;
        case JZ: if (!stack[--sp]) pc = code[pc]; else pc++; break;
        case JMP: pc = code[pc]; break;
        case DUP: stack[sp] = stack[sp - 1]; sp++; break;
        case DROP: sp--; break;
        case HALT: return stack[sp - 1];
        }
    }
}

int main(void) {
    // v0 = i, v1 = acc, v2 = a, v3 = b
    // for (i = 0; i < 6000000; i++) { t = a + b; a = b; b = t % 1000003; acc += b * 3 - i % 7; }
    const int32_t prog[] = {
        PUSH, 0, STORE, 0, PUSH, 0, STORE, 1, PUSH, 0, STORE, 2, PUSH, 1, STORE, 3,
        /* 16 */ LOAD, 0, PUSH, 6000000, LT, JZ, 67,
        /* 23 */ LOAD, 2, LOAD, 3, ADD, LOAD, 3, STORE, 2, PUSH, 1000003, MOD, STORE, 3,
        /* 37 */ LOAD, 1, LOAD, 3, PUSH, 3, MUL, ADD, LOAD, 0, PUSH, 7, MOD, SUB, STORE, 1,
        /* 53 */ LOAD, 0, PUSH, 1, ADD, STORE, 0, JMP, 16, HALT, HALT, HALT, HALT, HALT,
        /* 67 */ LOAD, 1, HALT};
    int64_t vars[4] = {0};
    int64_t r = run(prog, vars);
    printf("result %lld b=%lld\n", (long long)r, (long long)vars[3]);
    return 0;
}
