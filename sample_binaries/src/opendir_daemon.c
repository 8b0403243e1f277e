/* opendir_daemon: a daemon that opens a directory, reads one entry and
   sleeps with it open, as s6-supervise does with its service directory.
   opendir allocates the DIR and its getdents buffer with malloc: glibc
   sysdeps/unix/sysv/linux/opendir.c __alloc_dir (32 KiB), musl
   src/dirent/opendir.c (a 2 KiB buffer inside struct __dirstream). */
#include <dirent.h>
#include <stdio.h>
#include <unistd.h>

int main(void)
{
    DIR *d = opendir("/");
    if (d == NULL || readdir(d) == NULL)
        return 1;
    for (;;)
        pause();
}
