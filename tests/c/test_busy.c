/* test_busy.c - waiting for another connection's write lock (base/busy.c),
 * through the state database's connections. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <pthread.h>
#include <sqlite3.h>

#include "base/busy.h"
#include "base/error.h"
#include "state/sysdb.h"
#include "state/sqlite/sysdb_int.h"
#include "base/util.h"

static char path[256];

static int setup(void **state) {
  (void)state;
  snprintf(path, sizeof path, "/tmp/lode-test-busy-%d/state.db", (int)getpid());
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf /tmp/lode-test-busy-%d", (int)getpid());
  return system(cmd) == 0 ? 0 : -1;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

typedef struct waiter {
  lode_sysdb *db;
  _Atomic int started;
  int rc;
  int64_t got_ns; /* when its BEGIN IMMEDIATE returned */
} waiter;

static void *wait_and_write(void *arg) {
  waiter *w = arg;
  char err[256];
  w->started = 1;
  w->rc = lode_sysdb_begin(w->db, err, sizeof err);
  w->got_ns = lode_mono_ns();
  if (w->rc == LODE_OK) w->rc = lode_sysdb_commit(w->db, err, sizeof err);
  return NULL;
}

/* One connection holds the write lock for 14 ms while another thread waits
 * for it; returns how long after the release (committing a write, or rolling
 * back) the waiter had it. Naps alone (.., 2, 5, 10 ms, ending ~9 and ~19 ms
 * into the wait) woke ~5 ms after it. */
static int64_t release_latency(lode_sysdb *a, lode_sysdb *b, int commit) {
  char err[256];
  waiter w = {.db = b};
  assert_int_equal(lode_sysdb_begin(a, err, sizeof err), LODE_OK);
  assert_int_equal(sqlite3_exec(lode__sysdb_conn(a), "INSERT INTO t VALUES(1)", NULL, NULL,
                                NULL),
                   SQLITE_OK);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, wait_and_write, &w), 0);
  while (!w.started) lode_sleep_s(50e-6);
  lode_sleep_s(0.014);
  int64_t released = lode_mono_ns();
  if (commit)
    assert_int_equal(lode_sysdb_commit(a, err, sizeof err), LODE_OK);
  else
    lode_sysdb_rollback(a);
  pthread_join(th, NULL);
  assert_int_equal(w.rc, LODE_OK);
  assert_true(w.got_ns >= released); /* it did wait for the lock */
  return w.got_ns - released;
}

/* A release in this process wakes the waiter: the best of 9 trials is under
 * 1.5 ms (typically 0.05 ms), where naps alone gave ~5 ms in every trial on
 * a quiet machine. On a loaded one a woken thread can wait a few ms for a
 * core, so one prompt trial is all that is asked for (and there the naps'
 * phase drifts, so they may pass by chance). */
static void check_wakes(int commit) {
  char err[256];
  lode_sysdb *a, *b;
  assert_int_equal(lode_sysdb_open(path, 0, &a, err, sizeof err), LODE_OK);
  assert_int_equal(lode_sysdb_open(path, 0, &b, err, sizeof err), LODE_OK);
  sqlite3_exec(lode__sysdb_conn(a), "CREATE TABLE IF NOT EXISTS t(x)", NULL, NULL, NULL);
  int64_t lat[9];
  for (int i = 0; i < 9; i++) lat[i] = release_latency(a, b, commit);
  qsort(lat, 9, sizeof *lat, cmp_i64);
  printf("release to waiter (%s): min %.3f ms, median %.3f ms, max %.3f ms\n",
         commit ? "commit" : "rollback", lat[0] / 1e6, lat[4] / 1e6, lat[8] / 1e6);
  assert_true(lat[0] < 1500000);
  lode_sysdb_close(a);
  lode_sysdb_close(b);
}

static void test_commit_wakes_waiter(void **state) {
  (void)state;
  check_wakes(1);
}

static void test_rollback_wakes_waiter(void **state) {
  (void)state;
  check_wakes(0);
}

/* Another process's lock wakes no one here: the waiter naps, retries and
 * gets it soon after that process commits (within a nap, 10 ms). */
static void test_other_process_waited_for(void **state) {
  (void)state;
  char err[256];
  lode_sysdb *a;
  /* the file exists, and no connection is open across the fork */
  assert_int_equal(lode_sysdb_open(path, 0, &a, err, sizeof err), LODE_OK);
  lode_sysdb_close(a);
  int ready[2];
  assert_int_equal(pipe(ready), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    sqlite3 *db;
    int ok = sqlite3_open(path, &db) == SQLITE_OK &&
             sqlite3_exec(db, "BEGIN IMMEDIATE; CREATE TABLE IF NOT EXISTS u(x);"
                              "INSERT INTO u VALUES(1)", NULL, NULL, NULL) == SQLITE_OK;
    char c = ok ? 'y' : 'n';
    if (write(ready[1], &c, 1) != 1) _exit(1);
    lode_sleep_s(0.05);
    ok = ok && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK;
    sqlite3_close(db);
    _exit(ok ? 0 : 1);
  }
  char c = 0;
  assert_int_equal(read(ready[0], &c, 1), 1);
  assert_int_equal(c, 'y');
  /* opening takes the write lock (migrations) and waits there */
  int64_t t0 = lode_mono_ns();
  assert_int_equal(lode_sysdb_open(path, 0, &a, err, sizeof err), LODE_OK);
  assert_int_equal(lode_sysdb_begin(a, err, sizeof err), LODE_OK);
  int64_t waited = lode_mono_ns() - t0;
  assert_int_equal(lode_sysdb_commit(a, err, sizeof err), LODE_OK);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  assert_true(waited > 20000000); /* it held the lock for 50 ms */
  lode_sysdb_close(a);
  close(ready[0]);
  close(ready[1]);
}

/* The WAL hook replaces SQLite's automatic checkpoint, so it checkpoints
 * itself: with --sync full (1000 pages) and 500 commits of ~10 pages, the
 * log is reset and rewritten instead of growing to ~5000 pages (20 MB). */
static void test_wal_checkpointed(void **state) {
  (void)state;
  char err[256];
  lode_sysdb *a, *b;
  assert_int_equal(lode_sysdb_open(path, 1, &a, err, sizeof err), LODE_OK);
  assert_int_equal(lode_sysdb_open(path, 1, &b, err, sizeof err), LODE_OK);
  lode_sysdb_relax_sync(a, 1); /* fewer fsyncs; the same checkpoint size */
  sqlite3 *s = lode__sysdb_conn(a);
  assert_int_equal(sqlite3_exec(s, "CREATE TABLE IF NOT EXISTS w(x)", NULL, NULL, NULL),
                   SQLITE_OK);
  for (int i = 0; i < 500; i++)
    assert_int_equal(sqlite3_exec(s, "INSERT INTO w VALUES(randomblob(40000))", NULL, NULL,
                                  NULL),
                     SQLITE_OK);
  char wal[300];
  snprintf(wal, sizeof wal, "%s-wal", path);
  struct stat st;
  assert_int_equal(stat(wal, &st), 0);
  printf("WAL after 500 commits of 40 kB: %.1f MB\n", st.st_size / 1e6);
  assert_true(st.st_size < 2 * 1000 * (4096 + 24));
  lode_sysdb_close(a);
  lode_sysdb_close(b);
}

static int q_int(sqlite3 *db, const char *sql) {
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  int v = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  return v;
}

/* A connection attached with 0 (the store's) keeps SQLite's default
 * threshold and checkpoints at it. */
static void test_default_threshold_checkpointed(void **state) {
  (void)state;
  static const int naps[] = {50, 1000};
  static lode_busy_kind kind = LODE_BUSY_KIND(naps, 1000);
  char p[300];
  snprintf(p, sizeof p, "%s.raw", path);
  sqlite3 *db;
  lode_busy b;
  assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
  int pages = q_int(db, "PRAGMA wal_autocheckpoint");
  assert_true(pages > 0);
  assert_int_equal(lode_busy_attach(&b, &kind, db, 0), SQLITE_OK);
  assert_int_equal(b.checkpoint_pages, pages);
  assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF;"
                                    "CREATE TABLE w(x)", NULL, NULL, NULL),
                   SQLITE_OK);
  int page_size = q_int(db, "PRAGMA page_size");
  int n = 10 * pages * page_size / 40000; /* ~10 times the threshold */
  for (int i = 0; i < n; i++)
    assert_int_equal(sqlite3_exec(db, "INSERT INTO w VALUES(randomblob(40000))", NULL, NULL,
                                  NULL),
                     SQLITE_OK);
  snprintf(p, sizeof p, "%s.raw-wal", path);
  struct stat st;
  assert_int_equal(stat(p, &st), 0);
  assert_true(st.st_size < 2 * (int64_t)pages * (page_size + 24));
  sqlite3_close(db);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_commit_wakes_waiter),
      cmocka_unit_test(test_rollback_wakes_waiter),
      cmocka_unit_test(test_other_process_waited_for),
      cmocka_unit_test(test_wal_checkpointed),
      cmocka_unit_test(test_default_threshold_checkpointed),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
