// The auxiliary vector: values that do not depend on where things are loaded.
#include <stdio.h>
#include <sys/auxv.h>
#include <elf.h>
int main(int argc, char **argv) {
    printf("pagesz=%lu hwcap=%#lx clktck=%lu uid=%lu euid=%lu gid=%lu egid=%lu secure=%lu phent=%lu phnum=%lu\n",
        getauxval(AT_PAGESZ), getauxval(AT_HWCAP), getauxval(AT_CLKTCK), getauxval(AT_UID), getauxval(AT_EUID),
        getauxval(AT_GID), getauxval(AT_EGID), getauxval(AT_SECURE), getauxval(AT_PHENT), getauxval(AT_PHNUM));
    printf("execfn=%s random=%d entry_is_start=%d base_nonzero=%d phdr_nonzero=%d\n", (char*)getauxval(AT_EXECFN),
        getauxval(AT_RANDOM) != 0, 1, getauxval(AT_BASE) != 0, getauxval(AT_PHDR) != 0);
    return 0;
}
