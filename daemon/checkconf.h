#ifndef ENGAGED_CHECKCONF_H
#define ENGAGED_CHECKCONF_H
/* `engaged check-config [-c FILE]`: prints FILE:LINE: message per error; 0 or EX_CONFIG. */
int checkconf_main(int argc, char **argv);
#endif
