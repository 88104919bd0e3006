/* test_sysdb.c - the system database and the executor's core rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "base/error.h"
#include "core/executor.h"
#include "state/sysdb.h"
#include "state/sqlite/sysdb_int.h"
#include "state/render_rows.h"
#include "state/trace_store.h"
#include "trace/trace.h"
#include "base/util.h"

static char path[256];
/* $LODE_TEST_PG (tests/pg/pgserver.py run): the tests run on PostgreSQL,
 * in a fresh schema; the SQLite-only ones (file format, migrations of the
 * SQLite backend) are skipped, each says why. */
static const char *pg_url;

static int setup(void **state) {
  (void)state;
  pg_url = getenv("LODE_TEST_PG");
  if (pg_url && !*pg_url) pg_url = NULL;
  if (pg_url) {
    snprintf(path, sizeof path, "%s", pg_url);
    PGconn *c = PQconnectdb(pg_url);
    PQclear(PQexec(c, "DROP SCHEMA IF EXISTS lode CASCADE"));
    PQfinish(c);
    return PQstatus(c) == CONNECTION_OK ? 0 : 0;
  }
  snprintf(path, sizeof path, "/tmp/lode-test-sysdb-%d/sub/state.db", (int)getpid());
  return 0;
}

#define SQLITE_ONLY(why)                                      \
  do {                                                        \
    if (pg_url) {                                             \
      print_message("skipped on PostgreSQL: %s\n", why);      \
      skip();                                                 \
    }                                                         \
  } while (0)

/* Raw SQL on the test's database, whichever the backend (the tests look
 * into rows the interface does not show). */
typedef struct raw {
  sqlite3 *lite;
  PGconn *pg;
} raw;

static raw *raw_of(lode_sysdb *db) {
  static raw r;
  static char url[300];
  if (pg_url) {
    if (!r.pg || strcmp(url, lode_sysdb_path(db))) {
      if (r.pg) PQfinish(r.pg);
      snprintf(url, sizeof url, "%s", lode_sysdb_path(db));
      r.pg = PQconnectdb(url);
      PQclear(PQexec(r.pg, "SET search_path TO lode"));
    }
    r.lite = NULL;
  } else {
    r.lite = lode__sysdb_conn(db);
  }
  return &r;
}

static int raw_exec(raw *r, const char *sql) {
  if (r->lite) return sqlite3_exec(r->lite, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
  PGresult *res = PQexec(r->pg, sql);
  int ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;
  if (!ok) print_message("raw_exec: %s: %s", sql, PQerrorMessage(r->pg));
  PQclear(res);
  return ok ? 0 : -1;
}

/* The first column of the first row, as malloc'd text (NULL if none). */
static char *raw_text(raw *r, const char *sql) {
  char *out = NULL;
  if (r->lite) {
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(r->lite, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
      out = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return out;
  }
  PGresult *res = PQexec(r->pg, sql);
  if (PQresultStatus(res) != PGRES_TUPLES_OK)
    print_message("raw_text: %s: %s", sql, PQerrorMessage(r->pg));
  assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
  if (PQntuples(res) && !PQgetisnull(res, 0, 0)) out = strdup(PQgetvalue(res, 0, 0));
  PQclear(res);
  return out;
}

static int teardown(void **state) {
  (void)state;
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf /tmp/lode-test-sysdb-%d", (int)getpid());
  return system(cmd) == 0 ? 0 : -1;
}

static void test_open_migrates_once(void **state) {
  (void)state;
  char err[256];
  lode_sysdb *a, *b;
  assert_int_equal(lode_sysdb_open(path, 0, &a, err, sizeof err), LODE_OK);
  assert_int_equal(lode_sysdb_open(path, 1, &b, err, sizeof err), LODE_OK);
  lode_sysdb_close(a);
  lode_sysdb_close(b);
}

static void test_steps_and_replay(void **state) {
  (void)state;
  char err[512];
  lode_exec *ex;
  lode_exec_opts o = {path, 0, "/p.lua", "v1"};
  assert_int_equal(lode_exec_open(&o, &ex, err, sizeof err), LODE_OK);
  lode_wf_start s = {"wf-1", "main", (const uint8_t *)"\1\0", 2, NULL, 0, 0, NULL, 0};
  lode_wf *wf;
  lode_wf_outcome done;
  assert_int_equal(lode_wf_begin(ex, &s, &wf, &done, err, sizeof err), LODE_OK);
  assert_non_null(wf);
  int64_t pos;
  const lode_step_row *rec;
  assert_int_equal(lode_wf_step_next(wf, "a", &pos, &rec, err, sizeof err), LODE_OK);
  assert_null(rec);
  assert_int_equal(pos, 1);
  lode_step_row row = {.step_no = 1, .name = "a", .status = LODE_WF_SUCCESS,
                       .output = (uint8_t *)"\1\3\4", .output_len = 3, .attempts = 1};
  assert_int_equal(lode_wf_step_record(wf, &row, NULL, 0, err, sizeof err), LODE_OK);
  lode_wf_free(wf); /* as if the process died here */

  /* same executor again: resumes (not a recovery), replays step 1 */
  assert_int_equal(lode_wf_begin(ex, &s, &wf, &done, err, sizeof err), LODE_OK);
  assert_non_null(wf);
  assert_int_equal(lode_wf_step_next(wf, "a", &pos, &rec, err, sizeof err), LODE_OK);
  assert_non_null(rec);
  assert_int_equal(rec->output_len, 3);
  /* determinism: position 2 is new, so any name runs */
  assert_int_equal(lode_wf_step_next(wf, "b", &pos, &rec, err, sizeof err), LODE_OK);
  assert_null(rec);
  assert_int_equal(lode_wf_finish(wf, LODE_WF_SUCCESS, (const uint8_t *)"\1\0", 2, NULL, NULL, NULL, NULL, err,
                                  sizeof err), LODE_OK);
  lode_wf_free(wf);

  /* finished: the recorded outcome comes back, the body does not run */
  assert_int_equal(lode_wf_begin(ex, &s, &wf, &done, err, sizeof err), LODE_OK);
  assert_null(wf);
  assert_int_equal(done.status, LODE_WF_SUCCESS);
  lode_wf_outcome_clear(&done);

  /* another name under the same id is a conflict */
  lode_wf_start s2 = {"wf-1", "other", NULL, 0, NULL, 0, 0, NULL, 0};
  assert_int_equal(lode_wf_begin(ex, &s2, &wf, &done, err, sizeof err), LODE_ECONFLICT);
  assert_non_null(strstr(err, "already used by workflow 'main'"));
  lode_exec_close(ex);
}

static void test_nondeterminism_message(void **state) {
  (void)state;
  char err[512];
  lode_exec *ex;
  lode_exec_opts o = {path, 0, NULL, NULL};
  assert_int_equal(lode_exec_open(&o, &ex, err, sizeof err), LODE_OK);
  lode_wf_start s = {"wf-2", "w", NULL, 0, NULL, 0, 0, NULL, 0};
  lode_wf *wf;
  lode_wf_outcome done;
  assert_int_equal(lode_wf_begin(ex, &s, &wf, &done, err, sizeof err), LODE_OK);
  int64_t pos;
  const lode_step_row *rec;
  lode_wf_step_next(wf, "x", &pos, &rec, err, sizeof err);
  lode_step_row row = {.step_no = 1, .name = "x", .status = LODE_WF_SUCCESS, .attempts = 1};
  lode_wf_step_record(wf, &row, NULL, 0, err, sizeof err);
  lode_wf_free(wf);
  assert_int_equal(lode_wf_begin(ex, &s, &wf, &done, err, sizeof err), LODE_OK);
  assert_int_equal(lode_wf_step_next(wf, "y", &pos, &rec, err, sizeof err), LODE_ENONDET);
  assert_string_equal(err, "workflow wf-2 step 1: recorded 'x' but the pipeline now calls 'y'; "
                           "the workflow is not deterministic");
  lode_wf_free(wf);

  /* cancel: the next new step is refused */
  int changed;
  lode_sysdb_wf_set_status(lode_exec_db(ex), "wf-2", LODE_WF_CANCELLED,
                           1u << LODE_WF_PENDING, &changed, err, sizeof err);
  assert_true(changed);
  lode_exec_close(ex);
}

/* An executor on a database of its own beside the others. */
/* The database named by suffix: a file beside path, or on PostgreSQL a
 * database made at its first use in this process (dropped first if a run
 * before left it). */
static void fresh_db(char *p, size_t n, const char *suffix) {
  if (!pg_url) {
    snprintf(p, n, "%s-%s.db", path, suffix);
    return;
  }
  static char made[32][32];
  char base[256], sql[128];
  snprintf(base, sizeof base, "%s", pg_url);
  char *slash = strrchr(base, '/');
  assert_non_null(slash);
  *slash = 0;
  int i;
  for (i = 0; i < 32 && made[i][0]; i++)
    if (!strcmp(made[i], suffix)) {
      snprintf(p, n, "%s/t_%s", base, suffix);
      return;
    }
  if (i < 32) snprintf(made[i], sizeof made[i], "%s", suffix);
  char admin[300];
  snprintf(admin, sizeof admin, "%s/postgres", base);
  PGconn *c = PQconnectdb(admin);
  assert_int_equal(PQstatus(c), CONNECTION_OK);
  snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS t_%s WITH (FORCE)", suffix);
  PQclear(PQexec(c, sql));
  snprintf(sql, sizeof sql, "CREATE DATABASE t_%s", suffix);
  PGresult *r = PQexec(c, sql);
  assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
  PQclear(r);
  PQfinish(c);
  snprintf(p, n, "%s/t_%s", base, suffix);
}

static lode_exec *open_exec(const char *suffix) {
  char err[512], p[300];
  fresh_db(p, sizeof p, suffix);
  lode_exec *ex;
  lode_exec_opts o = {p, 0, "/p.lua", "v1"};
  assert_int_equal(lode_exec_open(&o, &ex, err, sizeof err), LODE_OK);
  return ex;
}

/* Checkpoints the workflow's next step, NAME, as a plain step whose span is
 * its row (lode_trace_materialize renders it). */
static void spanned_step(lode_wf *wf, const char *name) {
  char err[512], sid[37];
  int64_t pos;
  const lode_step_row *rec;
  assert_int_equal(lode_wf_step_next(wf, name, &pos, &rec, err, sizeof err), LODE_OK);
  assert_null(rec);
  lode_uuid7(sid);
  lode_step_row r = {.step_no = pos, .name = (char *)name, .status = LODE_WF_SUCCESS,
                     .attempts = 1, .span_id = sid, .span_input = "", .started_at = 1,
                     .ended_at = 2};
  assert_int_equal(lode_wf_step_record(wf, &r, NULL, 0, err, sizeof err), LODE_OK);
}

/* Checkpoints the workflow's next step, NAME, with no span in its row (as a
 * step whose span was written with its checkpoint). */
static void spanless_step(lode_wf *wf, const char *name) {
  char err[512];
  int64_t pos;
  const lode_step_row *rec;
  assert_int_equal(lode_wf_step_next(wf, name, &pos, &rec, err, sizeof err), LODE_OK);
  lode_step_row r = {.step_no = pos, .name = (char *)name, .status = LODE_WF_SUCCESS,
                     .output = (uint8_t *)"\1\3\4", .output_len = 3, .attempts = 1,
                     .started_at = 3, .ended_at = 4};
  assert_int_equal(lode_wf_step_record(wf, &r, NULL, 0, err, sizeof err), LODE_OK);
}

/* The checkpoint skips its status read while nothing else was committed;
 * a cancel committed by another connection is still seen at the next
 * checkpoint, and the workflow stops before its next step. */
static void test_cancel_seen_after_skipped_reads(void **state) {
  (void)state;
  char err[512];
  lode_exec *ex = open_exec("cancel");
  lode_wf_start st = {"wf-x", "main", NULL, 0, NULL, 0, 0, NULL, 0};
  lode_wf *wf;
  lode_wf_outcome done;
  int64_t pos;
  const lode_step_row *rec;
  assert_int_equal(lode_wf_begin(ex, &st, &wf, &done, err, sizeof err), LODE_OK);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(lode_wf_step_next(wf, "a", &pos, &rec, err, sizeof err), LODE_OK);
    lode_step_row r = {.step_no = pos, .name = "a", .status = LODE_WF_SUCCESS, .attempts = 1};
    assert_int_equal(lode_wf_step_record(wf, &r, NULL, 0, err, sizeof err), LODE_OK);
  }
  lode_sysdb *other;
  int n = 0;
  assert_int_equal(lode_sysdb_open(lode_sysdb_path(lode_exec_db(ex)), 0, &other, err, sizeof err),
                   LODE_OK);
  assert_int_equal(lode_sysdb_cancel_tree(other, "wf-x", &n, err, sizeof err), LODE_OK);
  assert_int_equal(n, 1);
  lode_sysdb_close(other);
  /* the step in flight still checkpoints; the next one does not start */
  assert_int_equal(lode_wf_step_next(wf, "a", &pos, &rec, err, sizeof err), LODE_OK);
  lode_step_row r = {.step_no = pos, .name = "a", .status = LODE_WF_SUCCESS, .attempts = 1};
  assert_int_equal(lode_wf_step_record(wf, &r, NULL, 0, err, sizeof err), LODE_OK);
  assert_int_equal(lode_wf_step_next(wf, "a", &pos, &rec, err, sizeof err), LODE_ECANCELLED);
  lode_wf_free(wf);
  lode_exec_close(ex);
}

/* A run under an id lode makes is recorded by its first write (no commit
 * of its own); a child started first records its parent before itself. */
static void test_fresh_run_recorded_by_first_write(void **state) {
  (void)state;
  char err[512];
  lode_exec *ex = open_exec("defer");
  lode_sysdb *db = lode_exec_db(ex);
  lode_wf_start st = {NULL, "main", NULL, 0, NULL, 0, 0, NULL, 0};
  lode_wf *wf;
  lode_wf_outcome done;
  lode_wf_row r;
  int64_t pos;
  const lode_step_row *rec;
  assert_int_equal(lode_wf_begin(ex, &st, &wf, &done, err, sizeof err), LODE_OK);
  char id[64];
  snprintf(id, sizeof id, "%s", lode_wf_id(wf));
  assert_int_equal(lode_sysdb_wf_get(db, id, &r, err, sizeof err), LODE_ENOTFOUND);
  lode_wf_row_clear(&r);
  assert_int_equal(lode_wf_step_next(wf, "a", &pos, &rec, err, sizeof err), LODE_OK);
  lode_step_row a = {.step_no = pos, .name = "a", .status = LODE_WF_SUCCESS, .attempts = 1};
  assert_int_equal(lode_wf_step_record(wf, &a, NULL, 0, err, sizeof err), LODE_OK);
  assert_int_equal(lode_sysdb_wf_get(db, id, &r, err, sizeof err), LODE_OK);
  assert_int_equal(r.status, LODE_WF_PENDING);
  assert_string_equal(r.pipeline, "/p.lua");
  assert_string_equal(r.version, "v1");
  lode_wf_row_clear(&r);
  assert_int_equal(lode_wf_finish(wf, LODE_WF_SUCCESS, NULL, 0, NULL, NULL, NULL, NULL, err,
                                  sizeof err),
                   LODE_OK);
  lode_wf_free(wf);
  assert_int_equal(lode_sysdb_wf_get(db, id, &r, err, sizeof err), LODE_OK);
  assert_int_equal(r.status, LODE_WF_SUCCESS);
  lode_wf_row_clear(&r);

  /* a child before any step: the parent is recorded first */
  assert_int_equal(lode_wf_begin(ex, &st, &wf, &done, err, sizeof err), LODE_OK);
  snprintf(id, sizeof id, "%s", lode_wf_id(wf));
  assert_int_equal(lode_wf_step_next(wf, "child", &pos, &rec, err, sizeof err), LODE_OK);
  lode_wf_start cs = {NULL, "child", NULL, 0, wf, pos, 0, NULL, 0};
  lode_wf *child;
  assert_int_equal(lode_wf_begin(ex, &cs, &child, &done, err, sizeof err), LODE_OK);
  assert_int_equal(lode_sysdb_wf_get(db, id, &r, err, sizeof err), LODE_OK);
  lode_wf_row_clear(&r);
  assert_int_equal(lode_sysdb_wf_get(db, lode_wf_id(child), &r, err, sizeof err), LODE_OK);
  assert_string_equal(r.parent_id, id);
  lode_wf_row_clear(&r);
  lode_wf_free(child);
  /* and a run that writes nothing before it ends is recorded by its end */
  lode_wf_free(wf);
  assert_int_equal(lode_wf_begin(ex, &st, &wf, &done, err, sizeof err), LODE_OK);
  snprintf(id, sizeof id, "%s", lode_wf_id(wf));
  assert_int_equal(lode_wf_finish(wf, LODE_WF_ERROR, NULL, 0, "boom", NULL, NULL, NULL, err,
                                  sizeof err),
                   LODE_OK);
  lode_wf_free(wf);
  assert_int_equal(lode_sysdb_wf_get(db, id, &r, err, sizeof err), LODE_OK);
  assert_int_equal(r.status, LODE_WF_ERROR);
  assert_string_equal(r.error, "boom");
  lode_wf_row_clear(&r);
  lode_exec_close(ex);
}

/* Workflow and step spans are rendered from their rows: nothing is written
 * to the trace store on the step path, and each version (open, final) is
 * rendered once, with the tree's links and the step's fields. */
static long long q_int(raw *db, const char *sql) {
  char *t = raw_text(db, sql);
  long long v = t ? strtoll(t, NULL, 10) : -1;
  if (t && (!strcmp(t, "t") || !strcmp(t, "f"))) v = t[0] == 't';
  free(t);
  return v;
}

static long long q_lite(sqlite3 *db, const char *sql) {
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
  long long v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
  sqlite3_finalize(st);
  return v;
}

static cJSON *q_body(raw *db, const char *where) {
  char sql[256];
  snprintf(sql, sizeof sql, "SELECT body FROM trace_records WHERE %s", where);
  char *t = raw_text(db, sql);
  assert_non_null(t);
  cJSON *o = cJSON_Parse(t);
  free(t);
  assert_non_null(o);
  return o;
}

static const char *jget(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* core-6 makes a step's output the last column of its row (so reading the
 * other columns never reads through a long output); a database made before
 * keeps every row and value. */
/* Executors on two state databases in one process: each database loses
 * this process's executors row when its last executor closes. */
static void test_executors_unregistered_per_database(void **state) {
  (void)state;
  SQLITE_ONLY("two state database files");
  char err[512], p1[300], p2[300];
  snprintf(p1, sizeof p1, "%s-ex1.db", path);
  snprintf(p2, sizeof p2, "%s-ex2.db", path);
  lode_exec_opts o1 = {p1, 0, "/p.lua", "v1"}, o2 = {p2, 0, "/p.lua", "v1"};
  lode_exec *a, *b, *c;
  assert_int_equal(lode_exec_open(&o1, &a, err, sizeof err), LODE_OK);
  assert_int_equal(lode_exec_open(&o1, &b, err, sizeof err), LODE_OK);
  assert_int_equal(lode_exec_open(&o2, &c, err, sizeof err), LODE_OK);
  assert_int_equal(q_int(raw_of(lode_exec_db(c)), "SELECT count(*) FROM executors"), 1);
  lode_exec_close(c); /* the last on p2, while p1 still has two */
  lode_exec_close(a);
  assert_int_equal(q_int(raw_of(lode_exec_db(b)), "SELECT count(*) FROM executors"), 1);
  lode_exec_close(b);
  lode_sysdb *db;
  for (int i = 0; i < 2; i++) {
    assert_int_equal(lode_sysdb_open(i ? p2 : p1, 0, &db, err, sizeof err), LODE_OK);
    assert_int_equal(q_int(raw_of(db), "SELECT count(*) FROM executors"), 0);
    lode_sysdb_close(db);
  }
}

static void test_steps_output_last(void **state) {
  (void)state;
  SQLITE_ONLY("the file format of the SQLite backend (core-6)");
  char err[512], p[300];
  snprintf(p, sizeof p, "%s-v5.db", path);
  lode_sysdb *db;
  assert_int_equal(lode_sysdb_open(p, 0, &db, err, sizeof err), LODE_OK);
  sqlite3 *s = lode__sysdb_conn(db);
  /* back to the layout before core-6, with a row in it */
  assert_int_equal(
      sqlite3_exec(s,
                   "DROP TABLE steps;"
                   "CREATE TABLE steps(workflow_id TEXT NOT NULL, step_no INTEGER NOT NULL,"
                   " name TEXT NOT NULL, status TEXT NOT NULL, output BLOB, error TEXT,"
                   " attempts INTEGER NOT NULL DEFAULT 1, child_id TEXT, span_id TEXT,"
                   " started_at INTEGER, ended_at INTEGER, span_input TEXT,"
                   " span_recovery INTEGER, PRIMARY KEY(workflow_id, step_no)) WITHOUT ROWID;"
                   "INSERT INTO steps VALUES('w',1,'a','SUCCESS',zeroblob(100000),'e',2,'c',"
                   " 's',10,11,'{}',3);"
                   "DELETE FROM lode_migrations WHERE name='core-6';",
                   NULL, NULL, NULL),
      SQLITE_OK);
  lode_sysdb_close(db);
  assert_int_equal(lode_sysdb_open(p, 0, &db, err, sizeof err), LODE_OK);
  s = lode__sysdb_conn(db);
  assert_int_equal(q_lite(s, "SELECT count(*) FROM pragma_table_info('steps')"), 13);
  assert_int_equal(q_lite(s, "SELECT cid FROM pragma_table_info('steps') WHERE name='output'"),
                   12);
  assert_int_equal(q_lite(s, "SELECT count(*) FROM steps WHERE workflow_id='w' AND step_no=1"
                            " AND name='a' AND status='SUCCESS' AND length(output)=100000"
                            " AND error='e' AND attempts=2 AND child_id='c' AND span_id='s'"
                            " AND started_at=10 AND ended_at=11 AND span_input='{}'"
                            " AND span_recovery=3"),
                   1);
  lode_sysdb_close(db);
}

/* A new database gets every migration, once each, in order (the list is
 * fixed in the backend: nothing can be added at run time). */
static void test_migrations_applied_in_order(void **state) {
  (void)state;
  SQLITE_ONLY("the SQLite backend's migrations (PostgreSQL: test_postgres.py)");
  char err[512], p[300];
  snprintf(p, sizeof p, "%s-mig.db", path);
  lode_sysdb *db;
  assert_int_equal(lode_sysdb_open(p, 0, &db, err, sizeof err), LODE_OK);
  sqlite3 *s = lode__sysdb_conn(db);
  assert_int_equal(q_lite(s, "SELECT count(*) FROM lode_migrations"), 9);
  assert_int_equal(q_lite(s, "SELECT group_concat(name, ',') = 'core-1,trace-1,core-2,core-3,"
                            "core-4,core-5,core-6,core-7,trace-2' FROM (SELECT name FROM lode_migrations"
                            " ORDER BY rowid)"),
                   1);
  lode_sysdb_close(db);
  assert_int_equal(lode_sysdb_open(p, 0, &db, err, sizeof err), LODE_OK);
  assert_int_equal(q_int(raw_of(db), "SELECT count(*) FROM lode_migrations"), 9);
  lode_sysdb_close(db);
}

/* A database from a newer lode is refused, naming both versions
 * (docs/operations.md, "Upgrades"); nothing in it is changed. */
static void test_newer_database_refused(void **state) {
  (void)state;
  SQLITE_ONLY("the SQLite backend's schema versions (PostgreSQL: test_postgres.py)");
  char err[1024], p[300];
  snprintf(p, sizeof p, "%s-newer.db", path);
  lode_sysdb *db;
  assert_int_equal(lode_sysdb_open(p, 0, &db, err, sizeof err), LODE_OK);
  sqlite3 *s = lode__sysdb_conn(db);
  assert_int_equal(q_lite(s, "PRAGMA user_version"), 9);
  assert_int_equal(sqlite3_exec(s, "INSERT INTO lode_migrations VALUES('core-99', 1)", NULL,
                                NULL, NULL), SQLITE_OK);
  lode_sysdb_close(db);
  assert_int_not_equal(lode_sysdb_open(p, 0, &db, err, sizeof err), LODE_OK);
  assert_non_null(strstr(err, "newer lode"));
  assert_non_null(strstr(err, "core-99"));
  assert_non_null(strstr(err, "schema version 9"));
  assert_non_null(strstr(err, "trace-2"));
  /* nor read by the read-only commands (lode trace) */
  assert_int_not_equal(lode_sysdb_open_readonly(p, &db, err, sizeof err), LODE_OK);
  assert_non_null(strstr(err, "newer lode"));

  /* user_version alone */
  snprintf(p, sizeof p, "%s-newer2.db", path);
  assert_int_equal(lode_sysdb_open(p, 0, &db, err, sizeof err), LODE_OK);
  assert_int_equal(sqlite3_exec(lode__sysdb_conn(db), "PRAGMA user_version=99", NULL, NULL,
                                NULL), SQLITE_OK);
  lode_sysdb_close(db);
  assert_int_not_equal(lode_sysdb_open(p, 0, &db, err, sizeof err), LODE_OK);
  assert_non_null(strstr(err, "schema version 99"));
  assert_non_null(strstr(err, "knows schema version 9"));
}

/* A damaged file is reported as damage, with the way to check it. */
static void test_corrupt_database_reported(void **state) {
  (void)state;
  SQLITE_ONLY("a damaged SQLite file");
  char err[1024], p[300];
  snprintf(p, sizeof p, "%s-corrupt.db", path);
  lode_sysdb *db;
  assert_int_equal(lode_sysdb_open(p, 0, &db, err, sizeof err), LODE_OK);
  lode_sysdb_close(db);
  FILE *f = fopen(p, "r+b");
  assert_non_null(f);
  fseek(f, 100, SEEK_SET); /* page 1's b-tree, after the file header */
  for (int i = 0; i < 2000; i++) fputc(0xA5, f);
  fclose(f);
  assert_int_not_equal(lode_sysdb_open(p, 0, &db, err, sizeof err), LODE_OK);
  assert_non_null(strstr(err, "PRAGMA integrity_check"));
  assert_non_null(strstr(err, "docs/operations.md"));
  assert_null(strstr(err, "already exists"));
}

/* Steps whose spans are not kept in their rows (written with the
 * checkpoint) are passed over once: the renderer's progress moves past them,
 * so later passes do not read them again. */
static void test_render_passes_over_spanless_steps(void **state) {
  (void)state;
  char err[512];
  lode_trace_set_disabled(0);
  lode_exec *ex = open_exec("spanless");
  lode_sysdb *db = lode_exec_db(ex);
  raw *s = raw_of(db);
  lode_wf_start st = {"wf-s", "main", NULL, 0, NULL, 0, 0, NULL, 0};
  lode_wf *wf;
  lode_wf_outcome done;
  assert_int_equal(lode_wf_begin(ex, &st, &wf, &done, err, sizeof err), LODE_OK);
  spanned_step(wf, "a");
  for (int i = 0; i < 3; i++) spanless_step(wf, "t"); /* spans written elsewhere */
  int more = 0;
  assert_int_equal(lode_trace_materialize(db, 100, &more, err, sizeof err), LODE_OK);
  assert_int_equal(more, 0);
  /* the open workflow's progress is its last step, not the last spanned one */
  assert_int_equal(q_int(s, "SELECT steps_done FROM trace_open WHERE workflow_id='wf-s'"), 4);
  assert_int_equal(q_int(s, "SELECT count(*) FROM trace_records WHERE name='a'"), 1);
  assert_int_equal(q_int(s, "SELECT count(*) FROM trace_records WHERE name='t'"), 0);
  /* a batch limit met by passed-over rows asks for another pass */
  for (int i = 0; i < 4; i++) spanless_step(wf, "t");
  spanned_step(wf, "b");
  assert_int_equal(lode_trace_materialize(db, 2, &more, err, sizeof err), LODE_OK);
  assert_int_equal(more, 1);
  for (int i = 0; i < 5 && more; i++)
    assert_int_equal(lode_trace_materialize(db, 2, &more, err, sizeof err), LODE_OK);
  assert_int_equal(q_int(s, "SELECT count(*) FROM trace_records WHERE name='b'"), 1);
  assert_int_equal(q_int(s, "SELECT steps_done FROM trace_open WHERE workflow_id='wf-s'"), 9);
  lode_wf_free(wf);
  lode_exec_close(ex);
  lode_trace_set_disabled(-1);
}

static void test_spans_rendered_from_rows(void **state) {
  (void)state;
  char err[512];
  lode_trace_set_disabled(0);
  lode_exec *ex = open_exec("render");
  lode_sysdb *db = lode_exec_db(ex);
  raw *s = raw_of(db);
  const char *tags[] = {"nightly"};
  lode_wf_trace tr = {tags, 1, "{\"owner\":\"ops\"}", "INGESTION"};
  lode_wf_start st = {"wf-r", "main", NULL, 0, NULL, 0, 0, &tr, 0};
  lode_wf *wf;
  lode_wf_outcome done;
  assert_int_equal(lode_wf_begin(ex, &st, &wf, &done, err, sizeof err), LODE_OK);
  char sa[37], sb[37];
  lode_uuid7(sa);
  lode_uuid7(sb);
  int64_t pos;
  const lode_step_row *rec;
  assert_int_equal(lode_wf_step_next(wf, "a", &pos, &rec, err, sizeof err), LODE_OK);
  lode_step_row a = {.step_no = pos, .name = "a", .status = LODE_WF_SUCCESS,
                     .output = (uint8_t *)"\1\3\4", .output_len = 3, .attempts = 1,
                     .span_id = sa, .span_input = "{\"x\":1}", .started_at = 1000,
                     .ended_at = 1005};
  assert_int_equal(lode_wf_step_record(wf, &a, NULL, 0, err, sizeof err), LODE_OK);
  assert_int_equal(lode_wf_step_next(wf, "b", &pos, &rec, err, sizeof err), LODE_OK);
  lode_step_row b = {.step_no = pos, .name = "b", .status = LODE_WF_ERROR,
                     .error = "boom at b\nstack traceback: x", .attempts = 2, .span_id = sb,
                     .span_input = "", .started_at = 1006, .ended_at = 1010};
  assert_int_equal(lode_wf_step_record(wf, &b, NULL, 0, err, sizeof err), LODE_OK);
  /* the step path wrote no trace record */
  assert_int_equal(q_int(s, "SELECT count(*) FROM trace_records"), 0);

  int more = 1;
  assert_int_equal(lode_trace_materialize(db, 100, &more, err, sizeof err), LODE_OK);
  assert_int_equal(more, 0);
  /* the trace, the workflow's open span, two step spans */
  assert_int_equal(q_int(s, "SELECT count(*) FROM trace_records"), 4);
  cJSON *wspan = q_body(s, "kind='span' AND name='main'");
  cJSON *trace = q_body(s, "kind='trace'");
  cJSON *as = q_body(s, "kind='span' AND name='a'");
  cJSON *bs = q_body(s, "kind='span' AND name='b'");
  assert_null(cJSON_GetObjectItemCaseSensitive(wspan, "end_time"));
  assert_string_equal(jget(as, "id"), sa);
  assert_string_equal(jget(as, "parent_span_id"), jget(wspan, "id"));
  assert_string_equal(jget(as, "trace_id"), jget(trace, "id"));
  assert_string_equal(jget(wspan, "trace_id"), jget(trace, "id"));
  const cJSON *am = cJSON_GetObjectItemCaseSensitive(as, "metadata");
  assert_int_equal(cJSON_GetObjectItemCaseSensitive(am, "step")->valueint, 1);
  assert_string_equal(jget(am, "workflow_id"), "wf-r");
  assert_int_equal(cJSON_GetObjectItemCaseSensitive(
                       cJSON_GetObjectItemCaseSensitive(as, "input"), "x")->valueint, 1);
  const cJSON *be = cJSON_GetObjectItemCaseSensitive(bs, "error_info");
  assert_non_null(be);
  assert_string_equal(jget(be, "message"), "boom at b");
  assert_int_equal(cJSON_GetObjectItemCaseSensitive(
                       cJSON_GetObjectItemCaseSensitive(bs, "metadata"), "attempts")->valueint, 2);
  cJSON *ttags = cJSON_GetObjectItemCaseSensitive(trace, "tags");
  int seen = 0;
  const cJSON *t;
  cJSON_ArrayForEach(t, ttags) seen += !strcmp(t->valuestring, "execution:workflow") +
                                       !strcmp(t->valuestring, "phase:INGESTION") +
                                       !strcmp(t->valuestring, "nightly");
  assert_int_equal(seen, 3);
  assert_string_equal(jget(cJSON_GetObjectItemCaseSensitive(trace, "metadata"), "owner"), "ops");
  cJSON_Delete(wspan), cJSON_Delete(trace), cJSON_Delete(as), cJSON_Delete(bs);

  /* nothing new: nothing rendered again */
  assert_int_equal(lode_trace_materialize(db, 100, &more, err, sizeof err), LODE_OK);
  assert_int_equal(q_int(s, "SELECT max(rev) FROM trace_records"), 1);
  assert_int_equal(q_int(s, "SELECT count(*) FROM trace_open"), 1);

  /* the outcome: the final versions of the span and the trace */
  assert_int_equal(lode_wf_finish(wf, LODE_WF_SUCCESS, (const uint8_t *)"\1\3\7", 3, NULL,
                                  NULL, NULL, NULL, err, sizeof err),
                   LODE_OK);
  lode_wf_free(wf);
  assert_int_equal(lode_trace_materialize(db, 100, &more, err, sizeof err), LODE_OK);
  assert_int_equal(q_int(s, "SELECT count(*) FROM trace_records"), 4);
  assert_int_equal(q_int(s, "SELECT count(*) FROM trace_records WHERE rev=2"), 2);
  assert_int_equal(q_int(s, "SELECT count(*) FROM trace_open"), 0);
  wspan = q_body(s, "kind='span' AND name='main'");
  assert_non_null(cJSON_GetObjectItemCaseSensitive(wspan, "end_time"));
  assert_non_null(cJSON_GetObjectItemCaseSensitive(wspan, "output"));
  cJSON_Delete(wspan);
  assert_int_equal(lode_trace_materialize(db, 100, &more, err, sizeof err), LODE_OK);
  assert_int_equal(q_int(s, "SELECT max(rev) FROM trace_records"), 2);
  lode_exec_close(ex);
  lode_trace_set_disabled(-1);
}

/* A cancelled workflow, resumed: its later steps and new outcome are
 * rendered too (its cancelled end already was). */
static void test_render_after_resume(void **state) {
  (void)state;
  char err[512];
  lode_trace_set_disabled(0);
  lode_exec *ex = open_exec("resume");
  lode_sysdb *db = lode_exec_db(ex);
  raw *s = raw_of(db);
  lode_wf_start st = {"wf-c", "main", NULL, 0, NULL, 0, 0, NULL, 0};
  lode_wf *wf;
  lode_wf_outcome done;
  int64_t pos;
  const lode_step_row *rec;
  for (int round = 0; round < 2; round++) {
    assert_int_equal(lode_wf_begin(ex, &st, &wf, &done, err, sizeof err), LODE_OK);
    assert_non_null(wf);
    if (round == 1) /* step 1 is replayed */
      assert_int_equal(lode_wf_step_next(wf, "a", &pos, &rec, err, sizeof err), LODE_OK);
    spanned_step(wf, "a");
    if (round == 0) {
      int n = 0, more = 0;
      assert_int_equal(lode_sysdb_cancel_tree(db, "wf-c", &n, err, sizeof err), LODE_OK);
      lode_wf_free(wf);
      assert_int_equal(lode_trace_materialize(db, 100, &more, err, sizeof err), LODE_OK);
      assert_int_equal(q_int(s, "SELECT count(*) FROM trace_records WHERE body LIKE "
                                "'%error_info%cancelled%'"), 2);
      int changed = 0;
      assert_int_equal(lode_sysdb_wf_set_status(db, "wf-c", LODE_WF_PENDING,
                                                1u << LODE_WF_CANCELLED, &changed, err,
                                                sizeof err),
                       LODE_OK);
    } else {
      assert_int_equal(lode_wf_finish(wf, LODE_WF_SUCCESS, NULL, 0, NULL, NULL, NULL, NULL,
                                      err, sizeof err),
                       LODE_OK);
      lode_wf_free(wf);
    }
  }
  int more = 0;
  assert_int_equal(lode_trace_materialize(db, 100, &more, err, sizeof err), LODE_OK);
  /* trace + workflow span + the two steps; the ends are the newest versions */
  assert_int_equal(q_int(s, "SELECT count(*) FROM trace_records"), 4);
  assert_int_equal(q_int(s, "SELECT count(*) FROM trace_records WHERE name='a'"), 2);
  assert_int_equal(q_int(s, "SELECT count(*) FROM trace_records WHERE body LIKE "
                            "'%error_info%'"), 0);
  assert_int_equal(q_int(s, "SELECT count(*) FROM trace_open"), 0);
  lode_exec_close(ex);
  lode_trace_set_disabled(-1);
}

/* A workflow recorded while tracing was off (or by an older lode), resumed
 * with tracing on: its later steps and its outcome are rendered. */
static void test_render_after_untraced_start(void **state) {
  (void)state;
  char err[512];
  lode_trace_set_disabled(1);
  lode_exec *ex = open_exec("untraced");
  lode_wf_start st = {"wf-u", "main", NULL, 0, NULL, 0, 0, NULL, 0};
  lode_wf *wf;
  lode_wf_outcome done;
  assert_int_equal(lode_wf_begin(ex, &st, &wf, &done, err, sizeof err), LODE_OK);
  assert_int_equal(lode_wf_traced(wf), 0);
  int64_t pos;
  const lode_step_row *rec;
  assert_int_equal(lode_wf_step_next(wf, "a", &pos, &rec, err, sizeof err), LODE_OK);
  lode_step_row r = {.step_no = pos, .name = "a", .status = LODE_WF_SUCCESS, .attempts = 1};
  assert_int_equal(lode_wf_step_record(wf, &r, NULL, 0, err, sizeof err), LODE_OK);
  lode_wf_free(wf); /* the process stops here */
  lode_exec_close(ex);

  lode_trace_set_disabled(0);
  ex = open_exec("untraced");
  lode_sysdb *db = lode_exec_db(ex);
  raw *s = raw_of(db);
  assert_int_equal(lode_wf_begin(ex, &st, &wf, &done, err, sizeof err), LODE_OK);
  assert_int_equal(lode_wf_traced(wf), 1);
  assert_int_equal(lode_wf_step_next(wf, "a", &pos, &rec, err, sizeof err), LODE_OK);
  assert_non_null(rec); /* replayed */
  spanned_step(wf, "b");
  assert_int_equal(lode_wf_finish(wf, LODE_WF_SUCCESS, NULL, 0, NULL, NULL, NULL, NULL, err,
                                  sizeof err),
                   LODE_OK);
  lode_wf_free(wf);
  int more = 0;
  assert_int_equal(lode_trace_materialize(db, 100, &more, err, sizeof err), LODE_OK);
  assert_int_equal(q_int(s, "SELECT count(*) FROM trace_records WHERE name='b'"), 1);
  assert_int_equal(q_int(s, "SELECT count(*) FROM trace_records WHERE kind='span' AND "
                            "name='main' AND body LIKE '%end_time%'"), 1);
  assert_int_equal(q_int(s, "SELECT count(*) FROM trace_open"), 0);
  lode_exec_close(ex);
  lode_trace_set_disabled(-1);
}

/* A workflow left PENDING by a dead process is rendered once, then parked:
 * later passes skip it (nothing of it can change) until a live process
 * claims it. */
static void test_render_parks_dead_owners(void **state) {
  (void)state;
  char err[512];
  lode_trace_set_disabled(0);
  lode_exec *ex = open_exec("park");
  lode_sysdb *db = lode_exec_db(ex);
  raw *s = raw_of(db);
  lode_wf_start st = {"wf-p", "main", NULL, 0, NULL, 0, 0, NULL, 0};
  lode_wf *wf;
  lode_wf_outcome done;
  assert_int_equal(lode_wf_begin(ex, &st, &wf, &done, err, sizeof err), LODE_OK);
  spanned_step(wf, "a");
  /* its process dies (an owner no longer registered) */
  raw_exec(s, "UPDATE workflows SET executor_id='gone' WHERE id='wf-p'");
  int more = 0;
  assert_int_equal(lode_trace_materialize(db, 100, &more, err, sizeof err), LODE_OK);
  assert_int_equal(q_int(s, "SELECT count(*) FROM trace_records WHERE name='a'"), 1);
  assert_int_equal(q_int(s, "SELECT count(*) FROM trace_open WHERE parked_owner='gone'"), 1);
  /* a row written behind its back is not looked for while it is parked */
  char sid2[37];
  lode_uuid7(sid2);
  lode_step_row r2 = {.step_no = 2, .name = "b", .status = LODE_WF_SUCCESS, .attempts = 1,
                      .span_id = sid2, .span_input = "", .started_at = 3, .ended_at = 4};
  /* through a connection of no executor: on PostgreSQL, this executor's own
   * checkpoints are fenced (the workflow is 'gone''s now) */
  lode_sysdb *behind;
  assert_int_equal(lode_sysdb_open(lode_sysdb_path(db), 0, &behind, err, sizeof err), LODE_OK);
  assert_int_equal(lode_sysdb_step_put(behind, "wf-p", &r2, err, sizeof err), LODE_OK);
  lode_sysdb_close(behind);
  assert_int_equal(lode_trace_materialize(db, 100, &more, err, sizeof err), LODE_OK);
  assert_int_equal(q_int(s, "SELECT count(*) FROM trace_records WHERE name='b'"), 0);
  /* claimed by a live process: looked at again */
  char sql[160];
  snprintf(sql, sizeof sql, "UPDATE workflows SET executor_id='%s' WHERE id='wf-p'",
           lode_exec_id(ex));
  raw_exec(s, sql);
  assert_int_equal(lode_trace_materialize(db, 100, &more, err, sizeof err), LODE_OK);
  assert_int_equal(q_int(s, "SELECT count(*) FROM trace_records WHERE name='b'"), 1);
  assert_int_equal(q_int(s, "SELECT count(*) FROM trace_open WHERE parked_owner IS NULL OR "
                            "parked_owner='gone'"), 1);
  lode_wf_free(wf);
  lode_exec_close(ex);
  lode_trace_set_disabled(-1);
}

/* A budget smaller than the work: each pass renders part, none twice, and
 * the passes together render everything. */
static void test_render_in_batches(void **state) {
  (void)state;
  char err[512];
  lode_trace_set_disabled(0);
  lode_exec *ex = open_exec("batches");
  lode_sysdb *db = lode_exec_db(ex);
  for (int w = 0; w < 3; w++) {
    char id[32];
    snprintf(id, sizeof id, "wf-%d", w);
    lode_wf_start st = {id, "batch", NULL, 0, NULL, 0, 0, NULL, 0};
    lode_wf *wf;
    lode_wf_outcome done;
    assert_int_equal(lode_wf_begin(ex, &st, &wf, &done, err, sizeof err), LODE_OK);
    for (int i = 0; i < 7; i++) spanned_step(wf, "s");
    assert_int_equal(lode_wf_finish(wf, LODE_WF_SUCCESS, NULL, 0, NULL, NULL, NULL, NULL, err,
                                    sizeof err),
                     LODE_OK);
    lode_wf_free(wf);
  }
  int more = 1, passes = 0;
  while (more && passes < 100) {
    assert_int_equal(lode_trace_materialize(db, 4, &more, err, sizeof err), LODE_OK);
    passes++;
  }
  assert_true(passes > 3);
  raw *s = raw_of(db);
  /* 3 traces + 3 workflow spans + 21 step spans, each step once */
  assert_int_equal(q_int(s, "SELECT count(*) FROM trace_records"), 27);
  assert_int_equal(q_int(s, "SELECT count(*) FROM trace_records WHERE name='s' AND rev>1"), 0);
  assert_int_equal(q_int(s, "SELECT count(*) FROM trace_records WHERE kind='span' AND name="
                            "'batch' AND body LIKE '%end_time%'"), 3);
  assert_int_equal(q_int(s, "SELECT count(*) FROM trace_open"), 0);
  lode_exec_close(ex);
  lode_trace_set_disabled(-1);
}

/* ---- the trace store's state functions (state/trace_store.h) ------------------ */

static lode_sysdb *open_db(const char *suffix) {
  char err[512], p[300];
  fresh_db(p, sizeof p, suffix);
  lode_sysdb *db;
  assert_int_equal(lode_sysdb_open(p, 0, &db, err, sizeof err), LODE_OK);
  return db;
}

static void put_row(lode_sysdb *db, const char *id, const char *kind, const char *body,
                    const char *st) {
  char err[256];
  lode_trace_row r = {id, kind, "t1", NULL, id, NULL, 1, 2, NULL, body, st};
  assert_int_equal(lode_sysdb_trace_put(db, &r, err, sizeof err), LODE_OK);
}

typedef struct seen {
  char ids[8][16];
  int n, stop_at;
} seen;

static int see(void *ud, const char *id, int64_t rev, int64_t updated_at, const char *body,
               size_t len) {
  seen *s = ud;
  (void)rev, (void)updated_at;
  assert_int_equal(strlen(body), len);
  snprintf(s->ids[s->n++], 16, "%s", id);
  return s->stop_at && s->n >= s->stop_at;
}

static void see_failed(void *ud, const lode_outbox_failure *f) {
  seen *s = ud;
  assert_non_null(f->last_error);
  snprintf(s->ids[s->n++], 16, "%s", f->id);
}

/* Marks apply only at the version they were loaded at; backoff, undelay,
 * start-up and --retry-failed move rows as `lode export` expects. */
static void test_outbox(void **state) {
  (void)state;
  char err[256];
  lode_sysdb *db = open_db("outbox");
  raw *s = raw_of(db);
  put_row(db, "a", "span", "{}", LODE_TRACE_PENDING);
  put_row(db, "b", "span", "{\"x\":1}", LODE_TRACE_PENDING);
  put_row(db, "c", "trace", "{}", LODE_TRACE_PENDING);
  put_row(db, "d", "span", "garbage", LODE_TRACE_PENDING);
  put_row(db, "e", "span", "{}", LODE_TRACE_DISABLED);
  put_row(db, "b", "span", "{\"x\":2}", NULL); /* a second version */
  assert_int_equal(q_int(s, "SELECT rev FROM trace_records WHERE id='b'"), 2);
  assert_int_equal(lode_sysdb_outbox_start(db, err, sizeof err), LODE_OK);
  assert_int_equal(q_int(s, "SELECT count(*) FROM trace_records WHERE id='d'"
                            " AND state='failed'"), 1);
  seen got = {0};
  int64_t now = lode_now_ms();
  assert_int_equal(lode_sysdb_outbox_load(db, "span", now, 10, see, &got, err, sizeof err),
                   LODE_OK);
  assert_int_equal(got.n, 2); /* a and b: d failed, e disabled */
  /* on PostgreSQL a load claims its rows for a while (another exporter skips
   * them); made due again, as at an exporter's next start */
  assert_int_equal(lode_sysdb_outbox_undelay(db, err, sizeof err), LODE_OK);
  memset(&got, 0, sizeof got);
  got.stop_at = 1;
  assert_int_equal(lode_sysdb_outbox_load(db, "span", now, 10, see, &got, err, sizeof err),
                   LODE_OK);
  assert_int_equal(got.n, 1);
  assert_int_equal(lode_sysdb_outbox_pending(db), 3);
  /* b was loaded at rev 1: a newer version stays pending */
  lode_outbox_ref refs[2] = {{"a", 1}, {"b", 1}};
  int changed = 0;
  assert_int_equal(lode_sysdb_outbox_mark(db, LODE_OUTBOX_SENT, refs, 2, NULL, 0, &changed, err,
                                          sizeof err), LODE_OK);
  assert_int_equal(changed, 1);
  assert_int_equal(lode_sysdb_outbox_pending(db), 2);
  /* a retry later is not due now, still pending; undelay makes it due */
  refs[0].id = "b", refs[0].rev = 2;
  assert_int_equal(lode_sysdb_outbox_mark(db, LODE_OUTBOX_RETRY, refs, 1, "HTTP 503",
                                          now + 1000000, NULL, err, sizeof err), LODE_OK);
  memset(&got, 0, sizeof got);
  lode_sysdb_outbox_load(db, "span", now, 10, see, &got, err, sizeof err);
  assert_int_equal(got.n, 0);
  assert_int_equal(lode_sysdb_outbox_pending(db), 2);
  assert_int_equal(lode_sysdb_outbox_undelay(db, err, sizeof err), LODE_OK);
  lode_sysdb_outbox_load(db, "span", now, 10, see, &got, err, sizeof err);
  assert_int_equal(got.n, 1);
  assert_string_equal(got.ids[0], "b");
  /* rejected: listed with its response, then requeued */
  refs[0].id = "c", refs[0].rev = 1;
  assert_int_equal(lode_sysdb_outbox_mark(db, LODE_OUTBOX_FAILED, refs, 1, "HTTP 422", 0, NULL,
                                          err, sizeof err), LODE_OK);
  memset(&got, 0, sizeof got);
  assert_int_equal(lode_sysdb_outbox_failed(db, see_failed, &got, err, sizeof err), LODE_OK);
  assert_int_equal(got.n, 2); /* d and c */
  assert_int_equal(lode_sysdb_outbox_retry_failed(db, err, sizeof err), LODE_OK);
  assert_int_equal(lode_sysdb_outbox_pending(db), 3);
  lode_sysdb_close(db);
}

static int count_span(void *ud, const lode_trace_span_row *r) {
  int *n = ud;
  assert_non_null(r->id);
  return ++*n >= 2; /* stop at the second */
}

/* What `lode trace` reads, also from a read-only database that is not a
 * state database at all. */
static void test_trace_reads(void **state) {
  (void)state;
  char err[256], *a, *b, p[300];
  lode_sysdb *db = open_db("reads");
  assert_int_equal(lode_sysdb_has_trace_store(db), 1);
  put_row(db, "t1", "trace", "{\"tags\":[]}", NULL);
  put_row(db, "s1", "span", "{}", NULL);
  put_row(db, "s2", "span", "{}", NULL);
  assert_int_equal(lode_sysdb_trace_head(db, "t1", &a, &b, err, sizeof err), LODE_OK);
  assert_string_equal(a, "t1");
  assert_string_equal(b, "{\"tags\":[]}");
  free(a), free(b);
  assert_int_equal(lode_sysdb_trace_head(db, "nope", &a, &b, err, sizeof err), LODE_ENOTFOUND);
  int n = 0;
  assert_int_equal(lode_sysdb_trace_spans(db, "t1", count_span, &n, err, sizeof err),
                   LODE_ENOMEM);
  assert_int_equal(n, 2);
  lode_wf_row r = {.id = "w1", .name = "main", .status = LODE_WF_PENDING, .trace_id = "t1",
                   .span_id = "s1", .created_at = 1};
  int existed;
  assert_int_equal(lode_sysdb_wf_insert(db, &r, &existed, err, sizeof err), LODE_OK);
  assert_int_equal(lode_sysdb_wf_trace_ref(db, "w1", &a, &b, err, sizeof err), LODE_OK);
  assert_string_equal(a, "t1");
  assert_string_equal(b, "s1");
  free(a), free(b);
  assert_int_equal(lode_sysdb_wf_trace_ref(db, "w2", &a, &b, err, sizeof err), LODE_ENOTFOUND);
  lode_sysdb_close(db);
  if (pg_url) return; /* the rest is about SQLite files */
  /* read-only, and a file with no lode tables */
  snprintf(p, sizeof p, "%s-plain.db", path);
  sqlite3 *raw;
  assert_int_equal(sqlite3_open(p, &raw), SQLITE_OK);
  sqlite3_exec(raw, "CREATE TABLE x(y)", NULL, NULL, NULL);
  sqlite3_close(raw);
  assert_int_equal(lode_sysdb_open_readonly(p, &db, err, sizeof err), LODE_OK);
  assert_int_equal(lode_sysdb_has_trace_store(db), 0);
  assert_int_equal(lode_sysdb_wf_trace_ref(db, "w1", &a, &b, err, sizeof err), LODE_ENOTFOUND);
  lode_sysdb_close(db);
  snprintf(p, sizeof p, "%s-none.db", path);
  assert_int_not_equal(lode_sysdb_open_readonly(p, &db, err, sizeof err), LODE_OK);
}

typedef struct step_seen {
  int n, spanned;
  int64_t last;
} step_seen;

static int see_step(void *ud, const lode_step_row *r) {
  step_seen *s = ud;
  s->n++;
  s->last = r->step_no;
  if (r->span_input) {
    s->spanned++;
    assert_non_null(r->name);
    assert_non_null(r->span_id);
  } else {
    assert_null(r->name); /* only the step number of a spanless row */
    assert_null(r->output);
  }
  return 0;
}

static int see_open(void *ud, const char *id, int64_t steps_done, const char *owner) {
  int *n = ud;
  (void)id, (void)steps_done, (void)owner;
  ++*n;
  return 0;
}

/* The renderer's rows: steps after a point (spanless ones without their
 * columns), and trace_open's progress and parking. */
static void test_render_rows(void **state) {
  (void)state;
  char err[512];
  lode_trace_set_disabled(0);
  lode_exec *ex = open_exec("rows");
  lode_sysdb *db = lode_exec_db(ex);
  lode_wf_start st = {"wf-r", "main", NULL, 0, NULL, 0, 0, NULL, 0};
  lode_wf *wf;
  lode_wf_outcome done;
  assert_int_equal(lode_wf_begin(ex, &st, &wf, &done, err, sizeof err), LODE_OK);
  spanned_step(wf, "a");
  spanless_step(wf, "b");
  spanned_step(wf, "c");
  step_seen ss = {0};
  assert_int_equal(lode_sysdb_render_steps(db, "wf-r", 0, 10, see_step, &ss, err, sizeof err),
                   LODE_OK);
  assert_int_equal(ss.n, 3);
  assert_int_equal(ss.spanned, 2);
  memset(&ss, 0, sizeof ss);
  assert_int_equal(lode_sysdb_render_steps(db, "wf-r", 1, 1, see_step, &ss, err, sizeof err),
                   LODE_OK);
  assert_int_equal(ss.n, 1);
  assert_int_equal(ss.last, 2);
  int64_t cur = -1;
  assert_int_equal(lode_sysdb_render_cursor(db, &cur, err, sizeof err), LODE_OK);
  assert_int_equal(lode_sysdb_render_set_cursor(db, cur + 7, err, sizeof err), LODE_OK);
  assert_int_equal(lode_sysdb_render_cursor(db, &cur, err, sizeof err), LODE_OK);
  assert_int_equal(cur, 7);
  raw *s = raw_of(db);
  assert_int_equal(lode_sysdb_trace_open_put(db, "wf-r", 1, err, sizeof err), LODE_OK);
  assert_int_equal(lode_sysdb_trace_open_advance(db, "wf-r", 3, err, sizeof err), LODE_OK);
  assert_int_equal(q_int(s, "SELECT steps_done FROM trace_open WHERE workflow_id='wf-r'"), 3);
  int n = 0;
  assert_int_equal(lode_sysdb_render_open(db, see_open, &n, err, sizeof err), LODE_OK);
  assert_int_equal(n, 1);
  /* parked under its current owner: skipped until someone else claims it */
  assert_int_equal(lode_sysdb_trace_open_park(db, "wf-r", lode_exec_id(ex), err, sizeof err),
                   LODE_OK);
  n = 0;
  assert_int_equal(lode_sysdb_render_open(db, see_open, &n, err, sizeof err), LODE_OK);
  assert_int_equal(n, 0);
  /* opened again: unparked */
  assert_int_equal(lode_sysdb_trace_open_put(db, "wf-r", 3, err, sizeof err), LODE_OK);
  n = 0;
  lode_sysdb_render_open(db, see_open, &n, err, sizeof err);
  assert_int_equal(n, 1);
  assert_int_equal(lode_sysdb_trace_open_close(db, "wf-r", err, sizeof err), LODE_OK);
  assert_int_equal(q_int(s, "SELECT count(*) FROM trace_open"), 0);
  lode_wf_free(wf);
  lode_exec_close(ex);
  lode_trace_set_disabled(-1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_open_migrates_once),
      cmocka_unit_test(test_steps_and_replay),
      cmocka_unit_test(test_nondeterminism_message),
      cmocka_unit_test(test_cancel_seen_after_skipped_reads),
      cmocka_unit_test(test_fresh_run_recorded_by_first_write),
      cmocka_unit_test(test_spans_rendered_from_rows),
      cmocka_unit_test(test_render_in_batches),
      cmocka_unit_test(test_render_after_resume),
      cmocka_unit_test(test_render_parks_dead_owners),
      cmocka_unit_test(test_render_after_untraced_start),
      cmocka_unit_test(test_steps_output_last),
      cmocka_unit_test(test_executors_unregistered_per_database),
      cmocka_unit_test(test_migrations_applied_in_order),
      cmocka_unit_test(test_newer_database_refused),
      cmocka_unit_test(test_corrupt_database_reported),
      cmocka_unit_test(test_render_passes_over_spanless_steps),
      cmocka_unit_test(test_outbox),
      cmocka_unit_test(test_trace_reads),
      cmocka_unit_test(test_render_rows),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
