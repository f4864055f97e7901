/* mb_log.h — one-line logs on stderr: "TIME moebus[NAME pid] LEVEL: message".
 * One line per event so a supervisor can interleave children's output. */
#ifndef MB_LOG_H
#define MB_LOG_H

enum { MB_LOG_DEBUG, MB_LOG_INFO, MB_LOG_WARN, MB_LOG_ERROR };

/* Sets the process name shown in each line, and the minimum level from
 * MOEBUS_LOG (debug|info|warn|error; default info). */
void mb_log_init(const char *name);
void mb_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define mb_debug(...) mb_log(MB_LOG_DEBUG, __VA_ARGS__)
#define mb_info(...) mb_log(MB_LOG_INFO, __VA_ARGS__)
#define mb_warn(...) mb_log(MB_LOG_WARN, __VA_ARGS__)
#define mb_error(...) mb_log(MB_LOG_ERROR, __VA_ARGS__)

#endif
