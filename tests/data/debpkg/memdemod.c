/* memdemod: a tiny daemon. It wakes up now and then and logs a greeting from libmemdemo.
 *
 * Its handler table holds 16384 pointers: in a position-independent executable each one is a
 * relative relocation the loader applies at start-up, so 128 KiB of the table become private
 * dirty memory in every instance. That is the cost the test package's budgets are about. */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "memdemo.h"

static void tick(void) {}

#define T4 tick, tick, tick, tick
#define T16 T4, T4, T4, T4
#define T64 T16, T16, T16, T16
#define T256 T64, T64, T64, T64
#define T1024 T256, T256, T256, T256
#define T4096 T1024, T1024, T1024, T1024
#define T16384 T4096, T4096, T4096, T4096

static void (*const handlers[])(void) = {T16384};

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

int main(int argc, char **argv)
{
    unsigned long n = 0;
    signal(SIGTERM, on_term);
    while (!stop && (argc < 2 || n < 1)) {
        handlers[n++ % (sizeof handlers / sizeof handlers[0])]();
        fprintf(stderr, "memdemod: %s\n", memdemo_greeting());
        if (argc < 2)
            sleep(60);
    }
    (void)argv;
    return 0;
}
