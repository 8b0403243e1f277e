/* Tiny shared library used as an ELF test fixture (see ../MANIFEST.md).
 *
 * Built with -fPIC -shared -Wl,-soname,libfix.so.1.  It deliberately holds:
 *   - a small initialised .data array            (fix_data)
 *   - a zero-initialised .bss array               (fix_bss)
 *   - a const table of function pointers, which lands in .data.rel.ro
 *     because its entries need load-time relocation (fix_ops)
 *   - TLS variables: one initialised (.tdata) and one zeroed (.tbss)
 */

int fix_data[4] = { 1, 2, 3, 4 };
char fix_bss[256];

__thread int fix_tls_counter = 7;
__thread char fix_tls_buf[32];

static int op_inc(int x) { return x + 1; }
static int op_dbl(int x) { return x * 2; }
int fix_neg(int x) { return -x; }

/* Two static targets (relative relocations) and one exported, interposable
 * target (symbolic relocation). */
int (*const fix_ops[3])(int) = { op_inc, op_dbl, fix_neg };

int fix_call(int i, int x)
{
    fix_tls_counter += x;
    fix_tls_buf[i & 31] = (char)x;
    fix_bss[i & 255] += (char)x;
    return fix_ops[i % 3](x) + fix_data[i & 3] + fix_tls_counter;
}
