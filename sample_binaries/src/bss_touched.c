/* bss_touched: a page-aligned 64 KiB .bss array.  main writes one byte in
   each of pages 0-4 (5 dirty anonymous pages) and reads one byte in each of
   pages 5-9 (mapped to the shared zero page: not dirty, not even Rss). */
#include <unistd.h>

#define PAGE 4096

char bss_touched[16 * PAGE] __attribute__((aligned(PAGE)));

int main(void)
{
    volatile char *p = bss_touched;

    for (int i = 0; i < 5; i++)
        p[i * PAGE] = 1;
    for (int i = 5; i < 10; i++)
        (void)p[i * PAGE];
    for (;;)
        pause();
}
