#ifndef ENGAGED_CHECKCONF_H
#define ENGAGED_CHECKCONF_H
/* `engaged check-config [-c FILE]`: prints FILE:LINE: message per error; 0 or EX_CONFIG. */
int checkconf_main(int argc, char **argv);

/* The `[-c FILE]` argument shared by run and check-config: sets *path (default
 * SYSCONFDIR/engaged/engaged.conf). Returns 0, or EX_USAGE after printing "usage: engaged
 * CMD [-c FILE]". */
int config_path_arg(int argc, char **argv, const char *cmd, const char **path);
#endif
