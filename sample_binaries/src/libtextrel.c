/* libtextrel.so: built without -fPIC (-fno-pic -mcmodel=large) and linked
   with -z notext, so the absolute addresses in its code are fixed up at
   load time: DT_TEXTREL.  The two functions are page-aligned so that the
   text relocations fall on exactly two distinct text pages. */
int textrel_values[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
int textrel_bias = 7;

__attribute__((aligned(4096))) int textrel_get(int i)
{
    return textrel_values[i & 15];
}

__attribute__((aligned(4096))) int textrel_get_bias(void)
{
    return textrel_bias;
}
