/* ctor: a constructor writes one byte in each of three distinct pages of a
   page-aligned 256 KiB .bss array before main runs.  Relocation data cannot
   predict this (R-G12): 3 dirty pages that only a constructor model sees. */
#include <unistd.h>

#define PAGE 4096

char ctor_bss[64 * PAGE] __attribute__((aligned(PAGE)));

__attribute__((constructor)) static void ctor_touch(void)
{
    volatile char *p = ctor_bss;

    p[0] = 1;
    p[20 * PAGE] = 1;
    p[40 * PAGE] = 1;
}

int main(void)
{
    for (;;)
        pause();
}
