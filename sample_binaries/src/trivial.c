/* trivial: the baseline.  Only the kernel, the loader and libc start-up
   write anything; every other sample is read against this one. */
#include <unistd.h>

int main(void)
{
    for (;;)
        pause();
}
