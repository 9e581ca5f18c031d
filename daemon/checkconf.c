#include <getopt.h>
#include <stdio.h>
#include <sysexits.h>

#include "daemon/checkconf.h"
#include "daemon/conf.h"

#ifndef ENGAGED_SYSCONFDIR
#define ENGAGED_SYSCONFDIR "/etc"
#endif

static void print_error(void *ud, const char *file, int line, const char *msg)
{
    unsigned *n = ud;
    (*n)++;
    printf("%s:%d: %s\n", file, line, msg);
}

int config_path_arg(int argc, char **argv, const char *cmd, const char **path)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {NULL, 0, NULL, 0}};
    int c;
    *path = ENGAGED_SYSCONFDIR "/engaged/engaged.conf";
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
        if (c != 'c')
            break;
        *path = optarg;
    }
    if (c != -1 || optind != argc) {
        fprintf(stderr, "usage: engaged %s [-c FILE]\n", cmd);
        return EX_USAGE;
    }
    return 0;
}

int checkconf_main(int argc, char **argv)
{
    const char *path;
    int u = config_path_arg(argc, argv, "check-config", &path);
    if (u)
        return u;
    struct conf *cf = NULL;
    unsigned n = 0;
    int e = conf_load(path, &cf, print_error, &n);
    conf_free(cf);
    if (e < 0 || n > 0) {
        if (n == 0) /* failed without a located error: say so anyway */
            printf("%s:0: cannot load configuration\n", path);
        return EX_CONFIG;
    }
    printf("%s: OK\n", path);
    return 0;
}
