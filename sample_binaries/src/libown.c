/* libown.so: a small library with .data, .bss and a function pointer table.
   The table is const, so with -fPIC it lands in .data.rel.ro and its
   entries are RELATIVE relocations (a dirty RELRO page); own_data is a
   small .data, own_bss a .bss that nothing writes. */
int own_data[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
int own_bss[2048];

static int own_add(int x) { return x + own_data[0]; }
static int own_sub(int x) { return x - own_data[1]; }
static int own_mul(int x) { return x * own_data[2]; }
static int own_neg(int x) { return -x; }

int (*const own_ops[4])(int) = { own_add, own_sub, own_mul, own_neg };

int own_call(int i, int x)
{
    return own_ops[i & 3](x);
}
