/* skalike: a supervisor-shaped program using libskalike, built twice per mode: against
   libskalike.so (the library loaded, as Debian's s6 loads libskarnet) and with libskalike.a
   linked in. `elfcost estimate --assume static-lib=libskalike.so` on the first predicts the
   second. */
#include <unistd.h>

int sk_init(const char *dir);
int sk_lookup(const char *name);

int main(int argc, char **argv)
{
    (void)sk_init(argc > 1 ? argv[1] : ".");
    (void)sk_lookup("down");
    for (;;)
        pause();
}
