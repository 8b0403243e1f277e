/* relro_ptr_table: 4000 pointers to distinct strings in a const table.
   In a PIE the table goes to .data.rel.ro and every entry needs an
   R_X86_64_RELATIVE relocation, so all ~8 of its pages are written by the
   loader (R-G2) before RELRO makes them read-only (R-G7).  In a non-PIE
   executable the addresses are link-time constants: .rodata, no writes. */
#include <unistd.h>

#define STR(x) #x
#define XSTR(x) STR(x)
#define E1 XSTR(__COUNTER__),
#define E10 E1 E1 E1 E1 E1 E1 E1 E1 E1 E1
#define E100 E10 E10 E10 E10 E10 E10 E10 E10 E10 E10
#define E1000 E100 E100 E100 E100 E100 E100 E100 E100 E100 E100

const char *const relro_ptr_table[4000] = { E1000 E1000 E1000 E1000 };

int main(void)
{
    /* The volatile pointer keeps the compiler from folding the lookup. */
    const char *const *volatile table = relro_ptr_table;

    (void)*(volatile const char *)table[1234];
    for (;;)
        pause();
}
