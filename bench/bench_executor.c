/* bench_executor.c - executor overhead against raw SQLite, and replay rate.
 *
 * Prints:
 *   raw insert:   N autocommit inserts into a WAL database (same sync mode)
 *   lode steps:   1000 runs of a workflow of 10 no-op steps, per-step time
 *   (each the median of 5 rounds; a round measures both sides back to back)
 *   ratio:        lode per-step / raw per-insert (targets: normal <= 1.5,
 *                 full <= 1.2)
 *   replay:       steps/s replaying a finished 10,000-step workflow
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"
#include "core/executor.h"
#include "state/sysdb.h"
#include "state/sqlite/sysdb_int.h"
#include "trace/trace.h"
#include "base/util.h"
#include "lua/lode_lua.h"
#include "lua/lode_lua_workflow.h"

static double raw_insert(const char *path, int full, int n) {
  sqlite3 *db;
  unlink(path);
  sqlite3_open(path, &db);
  char pragmas[128];
  snprintf(pragmas, sizeof pragmas, "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s;",
           full ? "FULL" : "NORMAL");
  sqlite3_exec(db, pragmas, NULL, NULL, NULL);
  sqlite3_exec(db,
               "CREATE TABLE t(wf TEXT, n INTEGER, name TEXT, status TEXT, out BLOB, "
               "PRIMARY KEY(wf, n)) WITHOUT ROWID",
               NULL, NULL, NULL);
  sqlite3_stmt *st;
  sqlite3_prepare_v2(db, "INSERT INTO t VALUES(?,?,?,?,?)", -1, &st, NULL);
  int64_t t0 = lode_mono_ns();
  for (int i = 0; i < n; i++) {
    sqlite3_bind_text(st, 1, "01a2017a-d0dc-7411-a828-8aa1cf8d1ba4", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, i);
    sqlite3_bind_text(st, 3, "noop", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, "SUCCESS", -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 5, "\1\0", 2, SQLITE_STATIC);
    sqlite3_step(st);
    sqlite3_reset(st);
  }
  double per = (double)(lode_mono_ns() - t0) / n;
  sqlite3_finalize(st);
  sqlite3_close(db);
  return per;
}

static lua_State *state_for(const char *db, int full) {
  lua_State *L = lode_lua_new(NULL);
  lode_host_opts o = {db, full, "/bench.lua", "v"};
  lode_host_configure(L, &o);
  const char *src =
      "local lode = require('lode')\n"
      "local noop = lode.step('noop', function() return nil end)\n"
      "ten = lode.workflow('ten', function() for i = 1, 10 do noop() end end)\n"
      "many = lode.workflow('many', function(n) for i = 1, n do noop() end return n end)\n";
  if (luaL_dostring(L, src)) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    exit(1);
  }
  return L;
}

static double lode_steps(const char *db, int full, int runs) {
  unlink(db);
  lua_State *L = state_for(db, full);
  int status;
  /* warm-up: open the database, prepare statements */
  lua_getglobal(L, "ten");
  lode_lua_run_top(L, -1, NULL, 0, &status);
  lua_settop(L, 0);
  int64_t t0 = lode_mono_ns();
  for (int i = 0; i < runs; i++) {
    lua_getglobal(L, "ten");
    if (lode_lua_run_top(L, -1, NULL, 0, &status) != 0) {
      fprintf(stderr, "run failed: %s\n", lua_tostring(L, -1));
      exit(1);
    }
    lua_settop(L, 0);
  }
  double per = (double)(lode_mono_ns() - t0) / (runs * 10.0);
  lua_close(L);
  return per;
}

/* Renders every workflow and step span of the database into the trace store
 * (what the exporter thread does off the step path). Returns us per record
 * and sets *n to the records rendered. */
static double render_all(const char *path, long *n) {
  lode_sysdb *db;
  char err[256];
  if (lode_sysdb_open(path, 0, &db, err, sizeof err) != LODE_OK) {
    fprintf(stderr, "%s\n", err);
    exit(1);
  }
  sqlite3 *s = lode__sysdb_conn(db);
  sqlite3_stmt *st;
  sqlite3_prepare_v2(s, "SELECT count(*) FROM trace_records", -1, &st, NULL);
  int64_t t0 = lode_mono_ns();
  int more = 1;
  while (more)
    if (lode_trace_materialize(db, 5000, &more, err, sizeof err) != LODE_OK) {
      fprintf(stderr, "%s\n", err);
      exit(1);
    }
  double us = (double)(lode_mono_ns() - t0) / 1e3;
  sqlite3_step(st);
  *n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  lode_sysdb_close(db);
  return *n ? us / (double)*n : 0;
}

static double replay_rate(const char *db, int n) {
  unlink(db);
  lua_State *L = state_for(db, 0);
  int status;
  lua_getglobal(L, "many");
  lua_pushinteger(L, n);
  lode_lua_run_top(L, -2, "replay-me", 1, &status);
  lua_close(L);
  /* mark it unfinished so a resume replays every step */
  sqlite3 *s;
  sqlite3_open(db, &s);
  sqlite3_exec(s, "UPDATE workflows SET status='PENDING' WHERE id='replay-me'", NULL, NULL, NULL);
  sqlite3_close(s);
  L = state_for(db, 0);
  int64_t t0 = lode_mono_ns();
  if (lode_lua_resume(L, "replay-me", &status) != 0) {
    fprintf(stderr, "replay failed: %s\n", lua_tostring(L, -1));
    exit(1);
  }
  double secs = (double)(lode_mono_ns() - t0) / 1e9;
  lua_close(L);
  return n / secs;
}

static int cmp_double(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return (a > b) - (a < b);
}

static double median(const double *v, int n) {
  double t[16];
  memcpy(t, v, (size_t)n * sizeof *t);
  qsort(t, (size_t)n, sizeof *t, cmp_double);
  return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

int main(int argc, char **argv) {
  /* bench_executor --raw DIR N normal|full: only the raw insert figure (us
   * per insert), the reference of bench/bench_step_path.sh */
  if (argc == 5 && !strcmp(argv[1], "--raw")) {
    char path[512];
    snprintf(path, sizeof path, "%s/bench-raw.db", argv[2]);
    printf("%.3f\n", raw_insert(path, !strcmp(argv[4], "full"), atoi(argv[3])) / 1e3);
    unlink(path);
    return 0;
  }
  const char *dir = argc > 1 ? argv[1] : "/tmp";
  char raw[512], wf[512];
  snprintf(raw, sizeof raw, "%s/bench-raw.db", dir);
  snprintf(wf, sizeof wf, "%s/bench-lode.db", dir);
  int runs = argc > 2 ? atoi(argv[2]) : 1000;
  /* profiling aid: BENCH_ONLY=steps runs the untraced --sync normal steps only */
  const char *only = getenv("BENCH_ONLY");
  if (only && !strcmp(only, "steps")) {
    lode_trace_set_disabled(1);
    printf("lode step (sync normal, untraced): %.2f us\n", lode_steps(wf, 0, runs) / 1e3);
    return 0;
  }
  /* The machine is shared and its disk latency moves: every figure is the
   * median of ROUNDS rounds, and each round measures the pair (on/off,
   * raw/lode) back to back so both sides see the same moment. */
  enum { ROUNDS = 5 };
  double ratio[ROUNDS], a[ROUNDS], b[ROUNDS];
  /* tracing on vs off (issue: one Opik trace tree per run) */
  for (int i = 0; i < ROUNDS; i++) {
    lode_trace_set_disabled(1);
    a[i] = lode_steps(wf, 0, runs);
    lode_trace_set_disabled(0);
    b[i] = lode_steps(wf, 0, runs);
    ratio[i] = a[i] / b[i];
  }
  long nrec = 0;
  double per = render_all(wf, &nrec); /* the last traced run's records */
  double rmin = ratio[0], rmax = ratio[0];
  for (int i = 1; i < ROUNDS; i++) {
    if (ratio[i] < rmin) rmin = ratio[i];
    if (ratio[i] > rmax) rmax = ratio[i];
  }
  printf("tracing: steps/s on %.0f, off %.0f, ratio on/off %.2f (rounds %.2f-%.2f; target >= 0.8)\n",
         1e9 / median(b, ROUNDS), 1e9 / median(a, ROUNDS), median(ratio, ROUNDS), rmin, rmax);
  printf("  + rendering those spans into the outbox afterwards (the exporter's batches, off the"
         " step path): %.2f us per record, %ld records (%.2f per step)\n",
         per, nrec, (double)nrec / (runs * 10.0 + 10));
  lode_trace_set_disabled(1); /* the durability figures below: the executor alone */
  for (int full = 0; full <= 1; full++) {
    for (int i = 0; i < ROUNDS; i++) {
      a[i] = raw_insert(raw, full, runs * 10);
      b[i] = lode_steps(wf, full, runs);
      ratio[i] = b[i] / a[i];
    }
    rmin = rmax = ratio[0];
    for (int i = 1; i < ROUNDS; i++) {
      if (ratio[i] < rmin) rmin = ratio[i];
      if (ratio[i] > rmax) rmax = ratio[i];
    }
    printf("sync %-6s raw insert %8.2f us   lode step %8.2f us   ratio %.2f (rounds %.2f-%.2f;"
           " target <= %.1f)\n",
           full ? "full" : "normal", median(a, ROUNDS) / 1e3, median(b, ROUNDS) / 1e3,
           median(ratio, ROUNDS), rmin, rmax, full ? 1.2 : 1.5);
  }
  printf("replay of a finished 10,000-step workflow: %.0f steps/s (target >= 200000)\n",
         replay_rate(wf, 10000));
  unlink(raw);
  unlink(wf);
  return 0;
}
