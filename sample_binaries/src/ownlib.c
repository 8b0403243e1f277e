/* ownlib: the executable needs its own libown.so, found through
   RUNPATH $ORIGIN.  Shows the per-DSO cost of one extra small library:
   its relocated RELRO/.data pages, its bss tail page (R-G1/R-M1, and the
   musl donate page R-M4) and its share of the loader heap (R-G10/R-M5). */
#include <unistd.h>

int own_call(int i, int x);

int main(int argc, char **argv)
{
    (void)argv;
    (void)own_call(argc, 1);
    for (;;)
        pause();
}
