/* stdio: one printf to stdout.  glibc allocates the stdout buffer with
   malloc, which creates [heap] (about 2 dirty pages, loader-model 4.8);
   musl's stdio buffers are static in libc's .bss (no heap). */
#include <stdio.h>
#include <unistd.h>

int main(void)
{
    printf("stdio sample: one line through stdout\n");
    fflush(stdout);
    for (;;)
        pause();
}
