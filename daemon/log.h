/* Logging to stderr (journald picks it up under systemd, with <N> priority prefixes). */
#ifndef ENGAGED_LOG_H
#define ENGAGED_LOG_H

#include <stdarg.h>

enum log_level { LOG_LVL_ERR = 3, LOG_LVL_WARNING = 4, LOG_LVL_NOTICE = 5, LOG_LVL_INFO = 6, LOG_LVL_DEBUG = 7 };

void log_set_level(int level);
int log_get_level(void);
/* With journal prefixes ("<3>..."), as systemd expects when stderr is the journal. */
void log_set_journal(int on);
/* At most this many messages per second per call site class; the rest are counted. */
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
unsigned long log_suppressed(void);

#define log_error(...) log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_LVL_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
