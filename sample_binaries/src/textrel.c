/* textrel: the executable needs libtextrel.so, which has DT_TEXTREL.  The
   loader makes its text writable, relocates it and (glibc) restores the
   protection: the relocated text pages become private dirty copies on the
   r-xp line (R-G6; musl leaves the text RWX). */
#include <unistd.h>

int textrel_get(int i);
int textrel_get_bias(void);

int main(int argc, char **argv)
{
    (void)argv;
    (void)(textrel_get(argc) + textrel_get_bias());
    for (;;)
        pause();
}
