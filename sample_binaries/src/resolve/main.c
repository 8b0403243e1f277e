/* Executable of a resolution scenario.  It only has to exist: every
   library is kept in DT_NEEDED by -Wl,--no-as-needed, and the loader is
   asked what it would map (ld.so --list), so nothing runs. */
int main(void)
{
    return 0;
}
