/* Tiny PIE executable used as an ELF test fixture (see ../MANIFEST.md).
 * It needs libfix.so.1 (found through RUNPATH $ORIGIN) and libc, and it
 * references a data object and a TLS object defined in libfix. */
#include <stdio.h>

extern int fix_call(int i, int x);
extern int fix_data[4];
extern __thread int fix_tls_counter;

int main(int argc, char **argv)
{
    int r;

    (void)argv;
    r = fix_call(argc, 5);
    printf("%d %d %d\n", r, fix_data[argc & 3], fix_tls_counter);
    return 0;
}
