#ifndef ENGAGED_RUN_H
#define ENGAGED_RUN_H
/* `engaged run [-c FILE]`: the daemon in the foreground. Returns a sysexits.h code. */
int run_main(int argc, char **argv);
#endif
