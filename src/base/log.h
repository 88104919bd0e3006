#ifndef LODE_LOG_H
#define LODE_LOG_H
/* log.h - leveled messages on stderr. Thread-safe: one line per call.
 * Never pass secrets (API keys) to these functions. */
enum lode_log_level { LODE_LOG_DEBUG, LODE_LOG_INFO, LODE_LOG_WARN, LODE_LOG_ERROR };

void lode_log_set_level(enum lode_log_level lvl);
void lode_log(enum lode_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
#define lode_debug(...) lode_log(LODE_LOG_DEBUG, __VA_ARGS__)
#define lode_info(...) lode_log(LODE_LOG_INFO, __VA_ARGS__)
#define lode_warn(...) lode_log(LODE_LOG_WARN, __VA_ARGS__)
#define lode_error(...) lode_log(LODE_LOG_ERROR, __VA_ARGS__)
#endif
