/* util.c - clocks, ids and small helpers. */
#include "base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>

int64_t lode_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t lode_limit_ms(double s) {
  if (!(s > 0)) return 0; /* NaN too */
  if (s > LODE_MAX_SECONDS) s = LODE_MAX_SECONDS;
  return (int64_t)(s * 1000.0 + 0.5);
}

int64_t lode_mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Random bytes for ids, drawn from a per-thread pool refilled 256 bytes at
 * a time: glibc 2.36's arc4random makes one getrandom system call per call,
 * and a workflow, its trace and each span take an id (three calls per
 * workflow on the step path). A forked child empties the pool it inherited
 * (the forking thread is the only one it has), so it never repeats its
 * parent's bytes. */
static _Thread_local uint8_t pool[256];
static _Thread_local size_t pool_left;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void pool_forget(void) {
  explicit_bzero(pool, sizeof pool);
  pool_left = 0;
}

static void pool_init(void) { pthread_atfork(NULL, NULL, pool_forget); }

static void random_bytes(uint8_t *out, size_t n) {
  pthread_once(&pool_once, pool_init);
  while (n) {
    if (!pool_left) {
      arc4random_buf(pool, sizeof pool);
      pool_left = sizeof pool;
    }
    size_t k = n < pool_left ? n : pool_left;
    uint8_t *from = pool + sizeof pool - pool_left;
    memcpy(out, from, k);
    explicit_bzero(from, k); /* drawn bytes are not kept */
    pool_left -= k;
    out += k;
    n -= k;
  }
}

void lode_uuid7(char out[37]) {
  /* Monotonic within a process: if the clock has not moved, bump a counter in
   * the rand_a field so ids made in the same millisecond still sort. */
  static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  static int64_t last_ms;
  static uint16_t seq;
  uint8_t b[16];
  random_bytes(b, sizeof b);
  pthread_mutex_lock(&mu);
  int64_t ms = lode_now_ms();
  if (ms <= last_ms) {
    ms = last_ms;
    seq++;
    if (seq > 0x0fff) { ms++; seq = 0; }
  } else {
    seq = (uint16_t)(((b[6] << 8) | b[7]) & 0x07ff); /* leave headroom */
  }
  last_ms = ms;
  uint16_t s = seq;
  pthread_mutex_unlock(&mu);
  for (int i = 0; i < 6; i++) b[i] = (uint8_t)(ms >> (8 * (5 - i)));
  b[6] = (uint8_t)(0x70 | ((s >> 8) & 0x0f));
  b[7] = (uint8_t)(s & 0xff);
  b[8] = (uint8_t)(0x80 | (b[8] & 0x3f));
  static const char hex[] = "0123456789abcdef";
  int o = 0;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
    out[o++] = hex[b[i] >> 4];
    out[o++] = hex[b[i] & 15];
  }
  out[o] = 0;
}

void lode_iso8601(int64_t ms, char out[80]) {
  time_t s = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&s, &tm);
  snprintf(out, 80, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
           (int)((ms % 1000 + 1000) % 1000));
}

void lode_first_line(const char *s, char *out, size_t n) {
  const char *nl = strchr(s, '\n');
  size_t l = nl ? (size_t)(nl - s) : strlen(s);
  if (l >= n) l = n - 1;
  memcpy(out, s, l);
  out[l] = 0;
}

size_t lode_strlcpy(char *dst, const char *src, size_t n) {
  size_t l = strlen(src);
  if (n) {
    size_t c = l < n - 1 ? l : n - 1;
    memcpy(dst, src, c);
    dst[c] = 0;
  }
  return l;
}

void lode_sleep_s(double s) {
  if (s <= 0) return;
  struct timespec ts;
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &ts) != 0) {
  }
}

#include "base/error.h"

char *lode_error_cut(const char *s, size_t max, int *oom) {
  if (oom) *oom = 0;
  if (!s) return NULL;
  size_t n = strlen(s);
  if (n <= max) return NULL;
  size_t keep = max;
  /* back to the first byte of a character (never inside a UTF-8 sequence) */
  while (keep > 0 && ((unsigned char)s[keep] & 0xC0) == 0x80) keep--;
  char tail[96];
  int tn = snprintf(tail, sizeof tail, "...[error truncated by lode: %zu of %zu bytes kept]",
                    keep, n);
  char *out = malloc(keep + (size_t)tn + 1);
  if (!out) {
    if (oom) *oom = 1;
    return NULL;
  }
  memcpy(out, s, keep);
  memcpy(out + keep, tail, (size_t)tn + 1);
  return out;
}

const char *lode_strerror(int code) {
  static const char *const msgs[] = {
#define X(name, msg) msg,
      LODE_ERRORS(X)
#undef X
  };
  if (code < 0 || (size_t)code >= sizeof msgs / sizeof msgs[0]) return "unknown error";
  return msgs[code];
}

void lode_scrub_secret(char *text, const char *secret) {
  if (!text || !secret || !*secret) return;
  size_t kl = strlen(secret);
  static const char mask[] = "[redacted]";
  size_t ml = sizeof mask - 1;
  char *p = text;
  while ((p = strstr(p, secret))) {
    if (kl >= ml) {
      memcpy(p, mask, ml);
      memmove(p + ml, p + kl, strlen(p + kl) + 1);
      p += ml;
    } else {
      memset(p, '*', kl); /* same length: the scan moves past it */
      p += kl;
    }
  }
}

int lode_prepare_private_file(const char *path, int mkdirs) {
  char tmp[PATH_MAX];
  if (lode_strlcpy(tmp, path, sizeof tmp) >= sizeof tmp) {
    errno = ENAMETOOLONG;
    return -1;
  }
  for (char *p = tmp + 1; mkdirs && *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST) return -1;
    *p = '/';
  }
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) return close(fd);
  return errno == EEXIST ? 0 : -1;
}

int lode_proc_start(long pid, char *out, size_t n) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t got = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[got] = 0;
  char *p = strrchr(buf, ')'); /* the command name may hold spaces */
  if (!p) return -1;
  int field = 2;
  for (p++; *p && field < 22; p++)
    if (*p == ' ') field++;
  size_t i = 0;
  while (*p && *p != ' ' && i + 1 < n) out[i++] = *p++;
  out[i] = 0;
  return i ? 0 : -1;
}

void lode_hostname(char *out, size_t n) {
  if (gethostname(out, n) != 0) lode_strlcpy(out, "localhost", n);
  out[n - 1] = 0;
}
