/* libctorinit.so: a constructor that memsets 16 KiB (four pages) in the
   middle of a page-aligned 64 KiB .bss table and stores into a static and an
   exported .bss array, each page-aligned on pages of their own.  glibc's
   _dl_init runs it before the program's entry point; musl runs it after,
   from __libc_start_main. */
#include <string.h>

#define PAGE 4096

static char init_table[16 * PAGE] __attribute__((aligned(PAGE)));
static long init_state[PAGE / sizeof(long)] __attribute__((aligned(PAGE)));
long init_counters[PAGE / sizeof(long)] __attribute__((aligned(PAGE)));

__attribute__((constructor)) static void init_lib(void)
{
    memset(init_table + 4 * PAGE, 0xa5, 4 * PAGE);
    init_state[3] = 1;
    init_counters[7] = 42;
}

int init_lookup(int i)
{
    return init_table[4 * PAGE + i] + (int)init_state[3] + (int)init_counters[7];
}
