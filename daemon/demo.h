/* The demo recording and its config, embedded in the binary (demo/ in the source tree). */
#ifndef ENGAGED_DEMO_H
#define ENGAGED_DEMO_H
#include <stddef.h>
/* Writes demo.jsonl and demo.conf into a new private temp directory, whose path is
 * stored in dir. Returns 0 or a negative errno. */
int demo_materialise(char *dir, size_t cap);
void demo_cleanup(const char *dir);
#endif
