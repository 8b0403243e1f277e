/* data_untouched_large: 256 KiB of initialised, non-zero .data that is
   read (one byte per page) but never written.  Reading maps the clean file
   page, so none of it may be predicted dirty. */
#include <unistd.h>

#define PAGE 4096
#define DATA_BYTES (256 * 1024)

unsigned char data_untouched_large[DATA_BYTES] = { [0 ... DATA_BYTES - 1] = 0x5a };

int main(void)
{
    volatile unsigned char *p = data_untouched_large;

    for (int i = 0; i < DATA_BYTES; i += PAGE)
        (void)p[i];
    for (;;)
        pause();
}
