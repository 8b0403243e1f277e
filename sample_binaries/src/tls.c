/* tls: 100000 bytes of .tbss and 20000 bytes of .tdata in the executable.
   glibc dynamic copies .tdata and memsets .tbss into the main thread's
   static TLS block, so the whole PT_TLS p_memsz is written (R-G11, ~31
   pages).  glibc static and musl copy only .tdata (R-S2, R-M7). */
#include <unistd.h>

__thread char tls_bss[100000];
__thread char tls_data[20000] = { 1 };

int main(void)
{
    volatile char *b = tls_bss;
    volatile char *d = tls_data;

    (void)b[0];
    (void)d[0];
    for (;;)
        pause();
}
