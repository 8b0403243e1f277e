/* libskalike, shaped like skalibs' libskarnet: a library of small members (this file and
   libskalike_extra.c), each with .data, .bss, a const pointer table (.data.rel.ro), and
   references to libc's functions and data (GOT, PLT). Built as libskalike.so and as
   libskalike.a; skalike.c uses the functions of this member only, so ld takes this member
   from the archive and leaves libskalike_extra.o out. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

static const char *const sk_names[] = { "run", "finish", "down", "notification-fd",
                                        "timeout-kill", "timeout-finish", "max-death-tally" };
const char *const *const sk_table[2] = { sk_names, sk_names + 4 };
char sk_path[64] = "/run/service";
char sk_buf[8192];     /* a buffer in .bss, written by sk_init */
static int sk_state[256];

int sk_init(const char *dir)
{
    size_t n = strlen(dir);
    if (n >= sizeof sk_path)
        return -1;
    memcpy(sk_path, dir, n + 1);
    memset(sk_buf, ' ', 64);
    sk_state[0] = environ != NULL;
    return (int)n;
}

int sk_lookup(const char *name)
{
    for (unsigned i = 0; i < sizeof sk_names / sizeof *sk_names; i++)
        if (!strcmp(sk_names[i], name))
            return (int)i;
    return getenv(name) ? -2 : -1;
}

ssize_t sk_say(int fd)
{
    return write(fd, sk_buf, strlen(sk_table[0][0]));
}
