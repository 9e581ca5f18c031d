/* engaged: argv and subcommand dispatch. */
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "daemon/checkconf.h"
#include "daemon/replay.h"
#include "daemon/run.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: engaged run [-c FILE]\n"
               "       engaged check-config [-c FILE]\n"
               "       engaged replay [-c FILE] [--speed max|realtime|N] [--out FILE|-] [--format F]\n"
               "                      [--participant ID] [--strict] [--demo] INPUT...\n"
               "       engaged --version\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EX_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "replay") == 0)
        return replay_main(argc - 1, argv + 1);
    if (strcmp(cmd, "run") == 0)
        return run_main(argc - 1, argv + 1);
    if (strcmp(cmd, "check-config") == 0)
        return checkconf_main(argc - 1, argv + 1);
    if (strcmp(cmd, "--version") == 0) {
        printf("engaged %s\n", ENGAGED_VERSION);
        return 0;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    usage(stderr);
    return EX_USAGE;
}
