/* busy.c - waiting for another connection's write lock. See busy.h. */
#include "base/busy.h"

#include <time.h>

#include "base/util.h"

static void wake(lode_busy_kind *k) {
  pthread_mutex_lock(&k->mu);
  k->gen++;
  if (k->cv_ready) pthread_cond_broadcast(&k->cv);
  pthread_mutex_unlock(&k->mu);
}

/* Called with n = 0, 1, 2... while the same lock stays taken. Waits until a
 * connection of this process releases a lock, or for nap n; returns 0 (and
 * SQLite returns SQLITE_BUSY) once give_up_ms have passed. */
static int busy_handler(void *ud, int n) {
  lode_busy *b = ud;
  lode_busy_kind *k = b->kind;
  int64_t t0 = lode_mono_ns();
  if (n == 0) b->since_ns = t0;
  else if (t0 - b->since_ns >= k->give_up_ms * 1000000) return 0;
  int64_t until = t0 + (int64_t)k->nap_us[n < k->naps ? n : k->naps - 1] * 1000;
  struct timespec ts = {(time_t)(until / 1000000000), (long)(until % 1000000000)};
  pthread_mutex_lock(&k->mu);
  if (!k->cv_ready) {
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&k->cv, &a);
    pthread_condattr_destroy(&a);
    k->cv_ready = 1;
  }
  /* From the second call on, `seen` is the generation when SQLite last
   * retried, so a release since then returns at once. The first call cannot
   * know whether a release came between SQLite's attempt and here, but its
   * nap is short. */
  if (n == 0) b->seen = k->gen;
  while (k->gen == b->seen) {
    if (pthread_cond_timedwait(&k->cv, &k->mu, &ts) != 0) break; /* ETIMEDOUT */
  }
  b->seen = k->gen;
  pthread_mutex_unlock(&k->mu);
  k->waited_ns += lode_mono_ns() - t0;
  return 1;
}

/* Called by SQLite after a commit that wrote pages, once the write lock is
 * free. Wakes the waiters first: the checkpoint that may follow takes no
 * write lock, so their writes can go on beside it. The checkpoint is the
 * one SQLite's own hook (sqlite3WalDefaultHook) would run: passive, when the
 * log holds at least checkpoint_pages pages. */
static int wal_hook(void *ud, sqlite3 *db, const char *name, int pages) {
  lode_busy *b = ud;
  b->hooked = 1;
  wake(b->kind);
  if (b->checkpoint_pages > 0 && pages >= b->checkpoint_pages) sqlite3_wal_checkpoint(db, name);
  return SQLITE_OK;
}

int lode_busy_attach(lode_busy *b, lode_busy_kind *kind, sqlite3 *db, int checkpoint_pages) {
  *b = (lode_busy){.kind = kind, .checkpoint_pages = checkpoint_pages};
  if (checkpoint_pages == 0) { /* SQLite's default hook is still set: ask it */
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "PRAGMA wal_autocheckpoint", -1, &st, NULL);
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
      b->checkpoint_pages = sqlite3_column_int(st, 0);
    else if (rc == SQLITE_OK)
      rc = sqlite3_errcode(db);
    sqlite3_finalize(st);
    if (rc != SQLITE_OK) return rc;
  }
  sqlite3_busy_handler(db, busy_handler, b);
  sqlite3_wal_hook(db, wal_hook, b);
  return SQLITE_OK;
}

void lode_busy_releasing(lode_busy *b) { b->hooked = 0; }

void lode_busy_released(lode_busy *b) {
  if (!b->hooked) wake(b->kind);
}

int64_t lode_busy_waited_ms(lode_busy_kind *kind) { return kind->waited_ns / 1000000; }
