/* libcopydata.so: a 16 KiB initialised data object for copy_reloc. */
int copydata_table[4096] = { [0 ... 4095] = 3 };
