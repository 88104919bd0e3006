/* log.c - leveled messages on stderr. */
#include "base/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum lode_log_level min_level = LODE_LOG_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *const names[] = {"debug", "info", "warning", "error"};

void lode_log_set_level(enum lode_log_level lvl) { min_level = lvl; }

static pthread_once_t env_once = PTHREAD_ONCE_INIT;
static void read_env(void) {
  const char *e = getenv("LODE_LOG");
  if (e && !strcmp(e, "debug")) min_level = LODE_LOG_DEBUG;
  if (e && !strcmp(e, "warning")) min_level = LODE_LOG_WARN;
}

void lode_log(enum lode_log_level lvl, const char *fmt, ...) {
  pthread_once(&env_once, read_env);
  if (lvl < min_level) return;
  char line[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  pthread_mutex_lock(&log_lock);
  fprintf(stderr, "lode: %s: %s\n", names[lvl], line);
  pthread_mutex_unlock(&log_lock);
}
