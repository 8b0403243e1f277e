/* libmemdemo.so.1: a small shared library of the package's own, in its own binary package. */
#include <stdlib.h>

#include "memdemo.h"

static const char *greetings[] = {"hello", "bonjour", "hallo"};
static unsigned calls;

const char *memdemo_greeting(void)
{
    const char *mine = getenv("MEMDEMO_GREETING");
    return mine ? mine : greetings[calls++ % 3];
}
