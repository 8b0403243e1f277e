/* printf_format: formats numbers into a string with snprintf and sleeps.
   No heap: the string is on the stack and so is vfprintf's work buffer,
   which makes the printf family's frames several KiB deep (glibc
   stdio-common/vfprintf-internal.c). */
#include <stdio.h>
#include <unistd.h>

volatile char sink;

int main(int argc, char **argv)
{
    char out[128];
    snprintf(out, sizeof out, "%s %d %ld %.3f %g %x", argv[0], argc, (long)argc * 1000003L,
             argc / 3.0, argc * 1e10, (unsigned)argc);
    sink = out[0];
    for (;;)
        pause();
}
