/* ctorlib: constructors that write memory before main, in the program and in
   its own libctorinit.so.  The program's constructor memsets 8 KiB (two
   pages) in the middle of a page-aligned 64 KiB .bss table and stores into
   two more .bss pages; the library's constructor does the same with 16 KiB
   (a call to memset, where GCC inlines 8 KiB as rep stos).  Every written
   page is one no other rule touches, so an estimate that reads the
   constructors' code predicts them exactly.  The static modes link
   libctorinit.c into the program. */
#include <string.h>
#include <unistd.h>

#define PAGE 4096

static char main_table[16 * PAGE] __attribute__((aligned(PAGE)));
static long main_state[PAGE / sizeof(long)] __attribute__((aligned(PAGE)));
long main_flags[PAGE / sizeof(long)] __attribute__((aligned(PAGE)));

int init_lookup(int i);

__attribute__((constructor)) static void main_init(void)
{
    memset(main_table + 8 * PAGE, 0x5a, 2 * PAGE);
    main_state[1] = 1;
    main_flags[2] = 2;
}

int main(int argc, char **argv)
{
    (void)argv;
    /* Read what the constructor wrote, so that no store is dead. */
    if (main_table[8 * PAGE + argc] + main_state[1] + main_flags[2] + init_lookup(argc) == 0)
        return 1;
    for (;;)
        pause();
}
