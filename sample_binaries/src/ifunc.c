/* ifunc: a GNU indirect function.  The executable gets an
   R_X86_64_IRELATIVE relocation: glibc calls the resolver at load time
   and stores the result in the GOT (R-G2; R-S1 in static binaries).
   musl does not support IRELATIVE, so there is no musl build. */
#include <unistd.h>

static int ifunc_impl(void)
{
    return 42;
}

static int (*ifunc_resolve(void))(void)
{
    return ifunc_impl;
}

int ifunc_target(void) __attribute__((ifunc("ifunc_resolve")));

int main(void)
{
    (void)ifunc_target();
    for (;;)
        pause();
}
