/* copy_reloc: the executable reads copydata_table, defined in its own
   libcopydata.so, with direct (PC-relative) addressing.  The linker then
   emits R_X86_64_COPY: the loader copies the 16 KiB object into the
   executable's .bss, dirtying those ~4-5 pages (R-G2, COPY row).  GCC on
   x86_64 does this for PIE too (copyreloc), not only for -no-pie. */
#include <unistd.h>

extern int copydata_table[4096];

int main(void)
{
    (void)*(volatile int *)&copydata_table[100];
    for (;;)
        pause();
}
