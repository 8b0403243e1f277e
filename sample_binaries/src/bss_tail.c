/* bss_tail: .data ends in the middle of a page and .bss starts right after
   it.  The loader zeroes the rest of that page (kernel padzero for the
   executable, R-K1; memset in glibc/musl for libraries, R-G1/R-M1), so the
   page is dirty although main never writes .bss.
   .data is ~8000 bytes so that its end lies on a page that no relocation
   touches: the dirty tail page then has no other cause. */
#include <unistd.h>

int bss_tail_data[2000] = { 1, 2, 3, 4 };
int bss_tail_zero[4096]; /* 16 KiB: the pages past the tail stay untouched */

int main(void)
{
    for (;;)
        pause();
}
