#ifndef LODE_UTIL_H
#define LODE_UTIL_H
/* util.h - clocks, ids and small helpers shared by core and kernels. */
#include <stddef.h>
#include <stdint.h>

/* Wall clock in milliseconds since the epoch, and a monotonic clock in ns. */
int64_t lode_now_ms(void);
int64_t lode_mono_ns(void);
/* The longest time limit lode takes (s, about 31 years): declarations refuse
 * more, and lode_limit_ms clamps to it, so that converting a limit to ms is
 * always defined (a double past INT64_MAX, or infinity, is not). */
#define LODE_MAX_SECONDS 1e9
/* A limit of s seconds in ms, rounded, clamped to [0, LODE_MAX_SECONDS];
 * NaN gives 0. */
int64_t lode_limit_ms(double s);
/* A UUIDv7 (RFC 9562) as 36 chars + NUL; time-ordered, random tail from
 * getrandom(2). */
void lode_uuid7(char out[37]);
/* ISO-8601 UTC with milliseconds and a 'Z' zone: 2026-11-22T04:06:32.123Z */
void lode_iso8601(int64_t ms, char out[80]);
/* strlcpy-like: always NUL-terminates, returns strlen(src). */
size_t lode_strlcpy(char *dst, const char *src, size_t n);
/* Field 22 of /proc/PID/stat, the process's start time in clock ticks since
 * boot: with the pid it names one process for the life of the machine (how
 * the state backends tell a live executor from a dead one). Returns 0, or -1
 * when the process is gone. */
int lode_proc_start(long pid, char *out, size_t n);
/* gethostname, "localhost" if it fails; always NUL-terminated. */
void lode_hostname(char *out, size_t n);
/* The first line of `s` (up to a newline), cut to fit n bytes with its NUL:
 * a span's error message, whose traceback is the whole text. */
void lode_first_line(const char *s, char *out, size_t n);
/* Sleep for seconds (fractional). */
void lode_sleep_s(double s);
/* Masks every occurrence of secret (an API key) in the NUL-terminated text:
 * "[redacted]" in its place, or as many '*' when the secret is shorter than
 * that; the text never grows. A NULL or empty secret changes nothing. */
void lode_scrub_secret(char *text, const char *secret);
/* Makes ready a database file that holds private data (document text, step
 * outputs): creates (when `mkdirs`) its missing parent folders 0700 and the file itself 0600
 * if it does not exist (umask permitting; existing ones are left as they
 * are; docs/operations.md, "State files"). SQLite gives its -wal and -shm
 * files the mode of the database. 0, or -1 with errno set. */
int lode_prepare_private_file(const char *path, int mkdirs);
#endif
