#ifndef ENGAGED_REPLAY_H
#define ENGAGED_REPLAY_H
/* `engaged replay`: argv after the subcommand name. Returns a sysexits.h code. */
int replay_main(int argc, char **argv);
#endif
