/* stdin_read: a daemon that waits for a line on stdin with fgets, as
   `curl -K -` waits for its configuration.  The stream buffer is allocated
   before the first read(2) blocks (glibc libio/fileops.c
   _IO_new_file_underflow -> _IO_doallocbuf; musl reads into its static
   stdin buffer).  At end of input it sleeps all the same. */
#include <stdio.h>
#include <unistd.h>

int main(void)
{
    char line[256];
    if (fgets(line, sizeof line, stdin) != NULL)
        line[0] = 0;
    for (;;)
        pause();
}
