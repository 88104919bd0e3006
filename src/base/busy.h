#ifndef LODE_BUSY_H
#define LODE_BUSY_H
/* busy.h - waiting for another connection's write lock on a WAL file.
 *
 * The threads of one lode process each hold their own connection to the same
 * file (the state database, a store). A connection that finds the write lock
 * taken can only nap and retry (SQLite's busy handler); naps of a fixed
 * length wake up to a nap after the lock is free. Here the nap is a wait on a
 * condition variable that a connection of the same process signals as soon
 * as it releases the lock, so an in-process waiter retries at once. A lock
 * held by another process is waited for with the caller's schedule of naps,
 * as before.
 *
 * Releases are seen through sqlite3_wal_hook, which SQLite calls once a
 * commit that wrote pages has released the write lock. Releases without a
 * written page (ROLLBACK; a COMMIT of a BEGIN IMMEDIATE that changed nothing)
 * call no hook: the code that runs them calls lode_busy_released, and any it
 * does not cover cost a waiter at most its current nap.
 *
 * Ownership: a lode_busy_kind is a process-wide static, one per kind of file
 * (a waiter on the state database is not woken by store commits); a
 * lode_busy sits in the struct that owns the connection, which it must
 * outlive. A connection is used by one thread at a time, so a lode_busy needs
 * no lock of its own. */
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>

typedef struct lode_busy_kind {
  const int *nap_us; /* nap n is nap_us[n], the last one repeating */
  int naps;
  int64_t give_up_ms; /* then SQLITE_BUSY */
  pthread_mutex_t mu;
  pthread_cond_t cv; /* on CLOCK_MONOTONIC, set up at the first wait */
  int cv_ready;
  uint64_t gen; /* bumped at every release */
  _Atomic int64_t waited_ns;
} lode_busy_kind;

/* A static lode_busy_kind: naps from an array of microseconds, and the
 * milliseconds after which a waiter gives up. */
#define LODE_BUSY_KIND(nap_array, give_up)                                             \
  {.nap_us = (nap_array), .naps = (int)(sizeof(nap_array) / sizeof *(nap_array)), \
   .give_up_ms = (give_up), .mu = PTHREAD_MUTEX_INITIALIZER}

typedef struct lode_busy {
  lode_busy_kind *kind;
  int checkpoint_pages; /* the connection's wal_autocheckpoint */
  int hooked;           /* the WAL hook ran since lode_busy_releasing */
  uint64_t seen;        /* kind->gen when SQLite last retried */
  int64_t since_ns;     /* when the current wait began */
} lode_busy;

/* Installs the busy handler and the WAL hook on db; call it right after
 * opening db, so that setting up the file already waits for locks. The hook
 * replaces SQLite's automatic checkpoint (sqlite3_wal_autocheckpoint and its
 * PRAGMA install that hook, and would remove this one: never use them on db),
 * so it checkpoints as SQLite would, once the log holds checkpoint_pages
 * pages; 0 keeps SQLite's default (PRAGMA wal_autocheckpoint, 1000). Returns
 * SQLITE_OK or the error of reading that default. */
int lode_busy_attach(lode_busy *b, lode_busy_kind *kind, sqlite3 *db, int checkpoint_pages);

/* Around a COMMIT or ROLLBACK the caller runs: `releasing` before it,
 * `released` after it, which wakes the waiters unless the WAL hook did. */
void lode_busy_releasing(lode_busy *b);
void lode_busy_released(lode_busy *b);

/* Milliseconds this process's connections of `kind` spent waiting. */
int64_t lode_busy_waited_ms(lode_busy_kind *kind);
#endif
