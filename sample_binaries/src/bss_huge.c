/* bss_huge: 1 GiB of .bss, of which main writes one page, half-way in.
   The kernel maps .bss as anonymous zero pages, so the rest costs nothing;
   the estimate lists possible-write pages up to a limit and counts the rest
   in its high bound. */
#include <unistd.h>

#define BSS_BYTES (1UL << 30)

unsigned char bss_huge[BSS_BYTES];

int main(void)
{
    ((volatile unsigned char *)bss_huge)[BSS_BYTES / 2] = 1;
    for (;;)
        pause();
}
