/* pipe_print: a daemon whose stdout is a pipe (as under a logger): it
   makes fd 1 the write end of a pipe of its own, prints one formatted line
   with printf, flushes it and sleeps.  glibc allocates the stream buffer on
   first output (libio/filedoalloc.c _IO_file_doallocate: st_blksize of the
   pipe, 4096 B); musl's stdout buffer is static in libc's .bss. */
#include <stdio.h>
#include <unistd.h>

int main(void)
{
    int p[2];
    if (pipe(p) != 0 || dup2(p[1], 1) != 1)
        return 1;
    printf("pipe_print: %d lines, %s\n", 1, "flushed");
    fflush(stdout);
    for (;;)
        pause();
}
