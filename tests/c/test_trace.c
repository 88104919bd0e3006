/* test_trace.c - the local trace store, Opik bodies, configuration precedence,
 * the `lode trace` tree and the exporter's outage behaviour. Exporter delivery
 * against the fake Opik is covered by tests/integration/test_trace_*.py. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "base/error.h"
#include "base/http.h"
#include "state/sqlite/sysdb_int.h"
#include "state/sysdb.h"
#include "trace/opik_config.h"
#include "trace/trace.h"
#include "trace/trace_export.h"
#include "trace/trace_view.h"
#include "base/util.h"

/* Records go through a state database (one at a time: SYS(db) is the one
 * open_mem opened); the tests read its tables on their own. With
 * $LODE_TEST_PG (tests/pg/pgserver.py run) that database is on PostgreSQL
 * (emptied for each test) instead of SQLite's :memory:. */
typedef struct tdb {
  sqlite3 *lite;
  PGconn *pg;
} tdb;
static lode_sysdb *the_sys;
static tdb the_db;

static const char *pg_url(void) {
  const char *u = getenv("LODE_TEST_PG");
  return u && *u ? u : NULL;
}

/* An empty PostgreSQL state database (the schema lode dropped). */
static void pg_empty(void) {
  PGconn *c = PQconnectdb(pg_url());
  assert_int_equal(PQstatus(c), CONNECTION_OK);
  PQclear(PQexec(c, "SET client_min_messages TO warning; DROP SCHEMA IF EXISTS lode CASCADE"));
  PQfinish(c);
}

static tdb *open_mem(void) {
  char err[256];
  assert_null(the_sys);
  if (pg_url()) pg_empty();
  assert_int_equal(lode_sysdb_open(pg_url() ? pg_url() : ":memory:", 0, &the_sys, err,
                                   sizeof err), LODE_OK);
  memset(&the_db, 0, sizeof the_db);
  if (pg_url()) {
    the_db.pg = PQconnectdb(pg_url());
    PQclear(PQexec(the_db.pg, "SET search_path TO lode"));
  } else {
    the_db.lite = lode__sysdb_conn(the_sys);
  }
  return &the_db;
}
static lode_sysdb *SYS(tdb *db) {
  assert_ptr_equal(&the_db, db);
  return the_sys;
}
static void close_mem(tdb *db) {
  lode_sysdb_close(SYS(db));
  if (db->pg) PQfinish(db->pg);
  db->pg = NULL;
  the_sys = NULL;
}

/* The first cell of sql's first row (sql has at most one parameter, ?),
 * malloc'd; NULL if none. */
static char *cell(tdb *db, const char *sql, const char *id) {
  char *out = NULL;
  if (db->lite) {
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db->lite, sql, -1, &st, NULL), SQLITE_OK);
    if (id) sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
      out = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return out;
  }
  char q[512];
  const char *m = strchr(sql, '?');
  if (m) snprintf(q, sizeof q, "%.*s$1%s", (int)(m - sql), sql, m + 1);
  else snprintf(q, sizeof q, "%s", sql);
  PGresult *r = PQexecParams(db->pg, q, id ? 1 : 0, NULL, &id, NULL, NULL, 0);
  assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
  if (PQntuples(r) && !PQgetisnull(r, 0, 0)) out = strdup(PQgetvalue(r, 0, 0));
  PQclear(r);
  return out;
}

static void exec_sql(tdb *db, const char *sql) {
  if (db->lite) {
    sqlite3_exec(db->lite, sql, NULL, NULL, NULL);
    return;
  }
  PQclear(PQexec(db->pg, sql));
}

/* The stored body of `id`, parsed (caller deletes). */
static cJSON *body_of(tdb *db, const char *id) {
  char *t = cell(db, "SELECT body FROM trace_records WHERE id=?", id);
  cJSON *o = t ? cJSON_Parse(t) : NULL;
  free(t);
  assert_non_null(o);
  return o;
}

static long long col_int(tdb *db, const char *sql, const char *id) {
  char *t = cell(db, sql, id);
  long long v = t ? strtoll(t, NULL, 10) : -1;
  free(t);
  return v;
}

/* Ids are unique, also across a fork: the child does not draw its parent's
 * buffered random bytes. */
static int cmp_id(const void *a, const void *b) { return strcmp(a, b); }

static void test_uuid7_unique_across_fork(void **state) {
  (void)state;
  enum { N = 5000 };
  static char ids[N][37];
  for (int i = 0; i < N; i++) {
    lode_uuid7(ids[i]);
    assert_int_equal(strlen(ids[i]), 36);
    assert_int_equal(ids[i][14], '7');
  }
  qsort(ids, N, sizeof ids[0], cmp_id);
  for (int i = 1; i < N; i++) assert_true(strcmp(ids[i - 1], ids[i]) != 0);
  char mine[37], theirs[37] = {0};
  lode_uuid7(mine); /* the pool now holds bytes a child would inherit */
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    char c[37];
    lode_uuid7(c);
    ssize_t w = write(fds[1], c, 37);
    _exit(w == 37 ? 0 : 1);
  }
  lode_uuid7(mine);
  close(fds[1]);
  assert_int_equal(read(fds[0], theirs, 37), 37);
  close(fds[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  /* the last 12 hex digits are random bits only */
  assert_true(strcmp(mine + 24, theirs + 24) != 0);
}

static void test_upsert_bumps_rev_and_time(void **state) {
  (void)state;
  tdb *db = open_mem();
  char err[256], tid[37], sid[37];
  lode_trace_set_disabled(0);
  lode_uuid7(tid);
  lode_uuid7(sid);
  lode_span_rec s = {0};
  s.id = sid, s.trace_id = tid, s.name = "chunk_step", s.start_ms = 1000;
  assert_int_equal(lode_trace_put_span(SYS(db), &s, err, sizeof err), 0);
  long long t1 = col_int(db, "SELECT updated_at FROM trace_records WHERE id=?", sid);
  s.end_ms = 1500, s.output_json = "{\"chunks\":3}";
  assert_int_equal(lode_trace_put_span(SYS(db), &s, err, sizeof err), 0);
  long long t2 = col_int(db, "SELECT updated_at FROM trace_records WHERE id=?", sid);
  assert_true(t2 > t1); /* strictly increasing even within one millisecond */
  assert_int_equal(col_int(db, "SELECT rev FROM trace_records WHERE id=?", sid), 2);
  assert_int_equal(col_int(db, "SELECT count(*) FROM trace_records WHERE state='pending'", NULL), 1);
  cJSON *b = body_of(db, sid);
  assert_string_equal(cJSON_GetObjectItem(b, "end_time")->valuestring, "1970-01-01T00:00:01.500Z");
  assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(b, "output"), "chunks")->valueint, 3);
  assert_string_equal(cJSON_GetObjectItem(b, "type")->valuestring, "general");
  assert_null(cJSON_GetObjectItem(b, "parent_span_id"));
  cJSON_Delete(b);
  close_mem(db);
}

static void test_body_shapes(void **state) {
  (void)state;
  tdb *db = open_mem();
  char err[256], tid[37], sid[37], pid[37];
  lode_uuid7(tid), lode_uuid7(sid), lode_uuid7(pid);
  const char *tags[] = {"a", "b", "a"};
  lode_span_rec s = {0};
  s.id = sid, s.trace_id = tid, s.parent_span_id = pid, s.name = "embed", s.type = "llm";
  s.start_ms = 1, s.end_ms = 2;
  s.input_json = "[1,2]";            /* array: wrapped */
  s.output_json = "not json at all"; /* not JSON: kept as a string, wrapped */
  s.metadata_json = "7";             /* scalar metadata: wrapped */
  s.tags = tags, s.ntags = 3;
  s.error_message = "boom";          /* no type, no traceback: defaults */
  s.usage_json = "{\"prompt_tokens\":10,\"cost\":0.5}";
  s.model = "m", s.provider = "p";
  assert_int_equal(lode_trace_put_span(SYS(db), &s, err, sizeof err), 0);
  cJSON *b = body_of(db, sid);
  cJSON *in = cJSON_GetObjectItem(b, "input");
  assert_true(cJSON_IsArray(cJSON_GetObjectItem(in, "input")));
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(b, "output"), "output")->valuestring,
                      "not json at all");
  cJSON *md = cJSON_GetObjectItem(b, "metadata");
  assert_int_equal(cJSON_GetObjectItem(md, "metadata")->valueint, 7);
  /* non-integer usage moves to metadata.usage; integers stay */
  assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(b, "usage"), "prompt_tokens")->valueint, 10);
  assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(b, "usage"), "cost"));
  assert_true(cJSON_GetObjectItem(cJSON_GetObjectItem(md, "usage"), "cost")->valuedouble == 0.5);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(b, "tags")), 2);
  cJSON *ei = cJSON_GetObjectItem(b, "error_info");
  assert_string_equal(cJSON_GetObjectItem(ei, "exception_type")->valuestring, "Error");
  assert_string_equal(cJSON_GetObjectItem(ei, "traceback")->valuestring, "boom");
  assert_string_equal(cJSON_GetObjectItem(b, "parent_span_id")->valuestring, pid);
  assert_null(cJSON_GetObjectItem(b, "project_name")); /* added at send time */
  cJSON_Delete(b);

  /* hostile input is refused with a message naming the record */
  s.type = "banana";
  assert_int_equal(lode_trace_put_span(SYS(db), &s, err, sizeof err), -1);
  assert_non_null(strstr(err, "banana"));
  s.type = NULL, s.id = "x";
  assert_int_equal(lode_trace_put_span(SYS(db), &s, err, sizeof err), -1);
  assert_non_null(strstr(err, "not a UUID"));
  assert_int_equal(lode_trace_put_feedback(SYS(db), tid, "", 1, NULL, err, sizeof err), -1);
  assert_int_equal(lode_trace_put_feedback(SYS(db), tid, "q", 1.0 / 0.0, NULL, err, sizeof err), -1);
  /* one feedback row per (trace, name) */
  assert_int_equal(lode_trace_put_feedback(SYS(db), tid, "q", 0.5, "ok", err, sizeof err), 0);
  assert_int_equal(lode_trace_put_feedback(SYS(db), tid, "q", 0.9, NULL, err, sizeof err), 0);
  assert_int_equal(col_int(db, "SELECT count(*) FROM trace_records WHERE kind='feedback'", NULL), 1);

  /* disabled tracking: stored, but never pending */
  lode_trace_set_disabled(1);
  lode_trace_rec t = {0};
  t.id = tid, t.name = "wf", t.start_ms = 5;
  assert_int_equal(lode_trace_put_trace(SYS(db), &t, err, sizeof err), 0);
  assert_int_equal(col_int(db, "SELECT count(*) FROM trace_records WHERE state='disabled'", NULL), 1);
  lode_trace_set_disabled(0);
  close_mem(db);
}

/* Valid JSON is spliced into the body as it is; anything that is not
 * strictly valid takes the tree path (kept as a string): the body is valid
 * JSON either way, with the same meaning. */
static void test_raw_fields(void **state) {
  (void)state;
  tdb *db = open_mem();
  char err[256], tid[37];
  lode_uuid7(tid);
  static const struct {
    const char *in;
    int kind; /* 1 object as is, 2 wrapped value, 3 wrapped string */
  } cases[] = {
      {"{\"a\": [1, 2.50, \"x\\u00e9\\n\"], \"b\": {\"c\": null}}", 1},
      {"  [true, false, -0.5e3]  ", 2},
      {"\"a string\"", 2},
      {"{\"a\":", 3},          /* cut */
      {"{\"a\": 01}", 3},      /* leading zero */
      {"[1,]", 3},             /* trailing comma */
      {"{\"a\": \"\t\"}", 3}, /* raw control character in a string */
      {"1 junk", 3},
      {"{} {}", 3},
      {"{\"k\": \"\\q\"}", 3}, /* bad escape */
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char sid[37];
    lode_uuid7(sid);
    lode_span_rec sp = {0};
    sp.id = sid, sp.trace_id = tid, sp.name = "s", sp.start_ms = 1, sp.end_ms = 2;
    sp.input_json = cases[i].in;
    sp.metadata_json = "{\"m\": 1}";
    assert_int_equal(lode_trace_put_span(SYS(db), &sp, err, sizeof err), 0);
    cJSON *b = body_of(db, sid); /* parses: the body is valid JSON */
    cJSON *in = cJSON_GetObjectItem(b, "input");
    assert_true(cJSON_IsObject(in));
    if (cases[i].kind == 1) {
      cJSON *want = cJSON_Parse(cases[i].in);
      assert_true(cJSON_Compare(in, want, 1));
      cJSON_Delete(want);
    } else if (cases[i].kind == 2) {
      cJSON *want = cJSON_Parse(cases[i].in);
      assert_true(cJSON_Compare(cJSON_GetObjectItem(in, "input"), want, 1));
      cJSON_Delete(want);
    } else {
      /* the tree path, as before: whatever cJSON makes of it, or the text */
      cJSON *want = cJSON_ParseWithOpts(cases[i].in, NULL, 1);
      if (cJSON_IsObject(want)) assert_true(cJSON_Compare(in, want, 1));
      else if (want) assert_true(cJSON_Compare(cJSON_GetObjectItem(in, "input"), want, 1));
      else assert_string_equal(cJSON_GetObjectItem(in, "input")->valuestring, cases[i].in);
      cJSON_Delete(want);
    }
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(b, "metadata"), "m")->valueint, 1);
    cJSON_Delete(b);
  }
  close_mem(db);
}

/* Lua strings are bytes; Opik needs UTF-8 and bounded records. */
static void test_hostile_values(void **state) {
  (void)state;
  tdb *db = open_mem();
  char err[256], tid[37], sid[37];
  lode_uuid7(tid), lode_uuid7(sid);
  size_t big = LODE_TRACE_MAX_VALUE_BYTES + 5000;
  char *huge = malloc(big + 3);
  assert_non_null(huge);
  huge[0] = '"';
  memset(huge + 1, 'x', big);
  huge[big + 1] = '"';
  huge[big + 2] = 0;
  lode_span_rec s = {0};
  s.id = sid, s.trace_id = tid, s.start_ms = 1;
  s.name = "bad\xff\xfename";
  s.input_json = "\"caf\xc3\" \x80\""; /* broken UTF-8, and trailing junk: not JSON */
  s.output_json = huge;
  s.error_type = "E", s.error_message = "msg \xe2\x82";
  assert_int_equal(lode_trace_put_span(SYS(db), &s, err, sizeof err), 0);
  free(huge);
  cJSON *b = body_of(db, sid);
  assert_string_equal(cJSON_GetObjectItem(b, "name")->valuestring, "bad\xef\xbf\xbd\xef\xbf\xbdname");
  const char *in = cJSON_GetObjectItem(cJSON_GetObjectItem(b, "input"), "input")->valuestring;
  assert_string_equal(in, "\"caf\xef\xbf\xbd\" \xef\xbf\xbd\"");
  cJSON *out = cJSON_GetObjectItem(b, "output");
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(out, "lode_truncated")));
  assert_true(cJSON_GetObjectItem(out, "lode_original_bytes")->valuedouble == (double)big + 2);
  const char *o = cJSON_GetObjectItem(out, "output")->valuestring;
  assert_true(strlen(o) < LODE_TRACE_MAX_VALUE_BYTES + 100);
  assert_non_null(strstr(o, "...[truncated by lode: "));
  cJSON_Delete(b);
  assert_int_equal(col_int(db, "SELECT count(*) FROM trace_records WHERE name=?",
                           "bad\xef\xbf\xbd\xef\xbf\xbdname"), 1);
  close_mem(db);
}

/* The upsert is prepared once per connection and reused: a value bound
 * for one record (an error) never leaks into the next. */
static void test_writer(void **state) {
  (void)state;
  tdb *db = open_mem();
  char err[256], tid[37], a[37], b[37];
  lode_uuid7(tid), lode_uuid7(a), lode_uuid7(b);
  lode_span_rec s = {0};
  s.id = a, s.trace_id = tid, s.name = "x", s.start_ms = 1, s.end_ms = 2;
  s.error_type = "E", s.error_message = "bad";
  assert_int_equal(lode_trace_put_span(SYS(db), &s, err, sizeof err), 0);
  s.id = b, s.error_type = NULL, s.error_message = NULL;
  assert_int_equal(lode_trace_put_span(SYS(db), &s, err, sizeof err), 0);
  assert_int_equal(lode_trace_put_span(SYS(db), &s, err, sizeof err), 0);
  assert_int_equal(col_int(db, "SELECT count(*) FROM trace_records WHERE error IS NOT NULL", NULL), 1);
  assert_int_equal(col_int(db, "SELECT rev FROM trace_records WHERE id=?", b), 2);
  lode_trace_rec t = {0};
  t.id = tid, t.name = "wf", t.start_ms = 1;
  assert_int_equal(lode_trace_put_trace(SYS(db), &t, err, sizeof err), 0);
  assert_int_equal(lode_trace_put_feedback(SYS(db), tid, "q", 1, NULL, err, sizeof err), 0);
  assert_int_equal(col_int(db, "SELECT count(*) FROM trace_records", NULL), 4);
  close_mem(db);
}

/* ---- configuration ------------------------------------------------------------ */

static char cfg_path[256];

static void clear_env(void) {
  unsetenv("OPIK_URL_OVERRIDE"), unsetenv("OPIK_API_KEY"), unsetenv("OPIK_WORKSPACE");
  unsetenv("OPIK_PROJECT_NAME"), unsetenv("OPIK_TRACK_DISABLE");
  unsetenv("OPIK_DEFAULT_FLUSH_TIMEOUT"), unsetenv("OPIK_CONFIG_PATH");
}

static void write_cfg(const char *text) {
  snprintf(cfg_path, sizeof cfg_path, "/tmp/lode_test_opik_%d.config", (int)getpid());
  FILE *f = fopen(cfg_path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static void test_config_precedence(void **state) {
  (void)state;
  lode_opik_config c;
  char err[512];
  clear_env();
  write_cfg("# comment\n[other]\napi_key = wrong\n[opik]\nurl_override = http://file:1/api/\n"
            "api_key = file-key\nworkspace = file-ws\nproject_name = \"File Project\"\n");
  lode_opik_settings ex = LODE_OPIK_SETTINGS_INIT;
  ex.config_path = "/nonexistent/dir/opik.config";

  /* defaults: nothing configured => local only */
  assert_int_equal(lode_opik_config_load(&c, &ex, err, sizeof err), 0);
  assert_null(c.url);
  assert_string_equal(c.project_name, "Default Project");
  assert_true(c.flush_timeout_s == 10.0);
  assert_false(lode_opik_config_sends(&c));
  lode_opik_config_free(&c);

  /* file (via OPIK_CONFIG_PATH, as the SDK) */
  setenv("OPIK_CONFIG_PATH", cfg_path, 1);
  assert_int_equal(lode_opik_config_load(&c, NULL, err, sizeof err), 0);
  assert_string_equal(c.url, "http://file:1/api"); /* trailing slash dropped */
  assert_string_equal(c.api_key, "file-key");
  assert_string_equal(c.workspace, "file-ws");
  assert_string_equal(c.project_name, "File Project");
  assert_true(lode_opik_config_sends(&c));
  lode_opik_config_free(&c);

  /* environment beats the file, field by field */
  setenv("OPIK_URL_OVERRIDE", "http://env:2/api", 1);
  setenv("OPIK_WORKSPACE", "env-ws", 1);
  assert_int_equal(lode_opik_config_load(&c, NULL, err, sizeof err), 0);
  assert_string_equal(c.url, "http://env:2/api");
  assert_string_equal(c.workspace, "env-ws");
  assert_string_equal(c.api_key, "file-key");
  lode_opik_config_free(&c);

  /* explicit beats the environment */
  lode_opik_settings ex2 = LODE_OPIK_SETTINGS_INIT;
  ex2.url = "http://explicit:3/api";
  ex2.project_name = "P";
  ex2.track_disable = 1;
  ex2.flush_timeout_s = 2.5;
  assert_int_equal(lode_opik_config_load(&c, &ex2, err, sizeof err), 0);
  assert_string_equal(c.url, "http://explicit:3/api");
  assert_string_equal(c.project_name, "P");
  assert_true(c.flush_timeout_s == 2.5);
  assert_false(lode_opik_config_sends(&c)); /* disabled */
  lode_opik_config_free(&c);

  /* OPIK_TRACK_DISABLE and OPIK_DEFAULT_FLUSH_TIMEOUT */
  setenv("OPIK_TRACK_DISABLE", "TRUE", 1);
  setenv("OPIK_DEFAULT_FLUSH_TIMEOUT", "3", 1);
  assert_int_equal(lode_opik_config_load(&c, NULL, err, sizeof err), 0);
  assert_true(c.track_disable);
  assert_true(c.flush_timeout_s == 3.0);
  lode_opik_config_free(&c);
  setenv("OPIK_DEFAULT_FLUSH_TIMEOUT", "soon", 1);
  assert_int_equal(lode_opik_config_load(&c, NULL, err, sizeof err), -1);
  assert_non_null(strstr(err, "OPIK_DEFAULT_FLUSH_TIMEOUT"));

  /* a key alone means Opik Cloud */
  clear_env();
  setenv("OPIK_API_KEY", "k", 1);
  assert_int_equal(lode_opik_config_load(&c, &ex, err, sizeof err), 0);
  assert_string_equal(c.url, LODE_OPIK_CLOUD_URL);
  lode_opik_config_free(&c);

  /* a malformed file names itself and the line; the key never shows */
  write_cfg("[opik]\napi_key = topsecret\nthis line is junk\n");
  setenv("OPIK_CONFIG_PATH", cfg_path, 1);
  assert_int_equal(lode_opik_config_load(&c, NULL, err, sizeof err), -1);
  assert_non_null(strstr(err, cfg_path));
  assert_non_null(strstr(err, ":3:"));
  assert_null(strstr(err, "topsecret"));
  clear_env();
  setenv("OPIK_URL_OVERRIDE", "http://h/api", 1);
  setenv("OPIK_API_KEY", "abc\r\nX-Evil: 1", 1);
  assert_int_equal(lode_opik_config_load(&c, &ex, err, sizeof err), -1);
  assert_non_null(strstr(err, "OPIK_API_KEY"));
  assert_null(strstr(err, "Evil"));
  unsetenv("OPIK_API_KEY");
  setenv("OPIK_CONFIG_PATH", cfg_path, 1);
  setenv("OPIK_URL_OVERRIDE", "ftp://x", 1);
  write_cfg("[opik]\n");
  assert_int_equal(lode_opik_config_load(&c, NULL, err, sizeof err), -1);
  assert_non_null(strstr(err, "http://"));
  clear_env();
  unlink(cfg_path);
}

static void test_retry_after(void **state) {
  (void)state;
  assert_true(lode__http_parse_retry_after("3") == 3.0);
  assert_true(lode__http_parse_retry_after(" 0.5 ") == 0.5);
  assert_true(lode__http_parse_retry_after("soon") < 0);
  assert_true(lode__http_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0); /* past */
}

/* ---- the tree ------------------------------------------------------------------- */

static void put(tdb *db, const char *id, const char *tid, const char *parent, const char *name,
                const char *type, int64_t start, int64_t end, const char *err_msg) {
  char err[256];
  lode_span_rec s = {0};
  s.id = id, s.trace_id = tid, s.parent_span_id = parent, s.name = name, s.type = type;
  s.start_ms = start, s.end_ms = end;
  s.error_type = err_msg ? "RuntimeError" : NULL;
  s.error_message = err_msg;
  assert_int_equal(lode_trace_put_span(SYS(db), &s, err, sizeof err), 0);
}

#define ID(n) "01900000-0000-7000-8000-0000000000" #n

static void test_render_tree(void **state) {
  (void)state;
  tdb *db = open_mem();
  char err[256];
  const char *tags[] = {"execution:workflow", "phase:INGESTION"};
  lode_trace_rec t = {0};
  t.id = ID(00), t.name = "ingest_folder_workflow", t.start_ms = 1000, t.end_ms = 3500;
  t.tags = tags, t.ntags = 2;
  assert_int_equal(lode_trace_put_trace(SYS(db), &t, err, sizeof err), 0);
  put(db, ID(01), ID(00), NULL, "ingest_folder_workflow", NULL, 1000, 3500, NULL);
  put(db, ID(02), ID(00), ID(01), "discover_files_step", NULL, 1001, 1013, NULL);
  put(db, ID(03), ID(00), ID(01), "process_file_workflow", NULL, 1020, 3400, "bad file\nmore");
  put(db, ID(04), ID(00), ID(03), "check_exists_step", NULL, 1021, 1022, NULL);
  put(db, ID(05), ID(00), ID(03), "load_document", "tool", 1030, 0, NULL);
  put(db, ID(06), ID(00), ID(99), "orphan", NULL, 2000, 2001, NULL);
  lode_buf out;
  lode_buf_init(&out, 1 << 20);
  assert_int_equal(lode_trace_render(SYS(db), ID(00), NULL, 0, &out, err, sizeof err), 0);
  const char *want =
      "trace " ID(00) "  ingest_folder_workflow [execution:workflow] [phase:INGESTION]\n"
      "ingest_folder_workflow  2.50s  ok\n"
      " ├── discover_files_step  12ms  ok\n"
      " └── process_file_workflow  2.38s  error\n"
      "      │   error: RuntimeError: bad file\n"
      "      ├── check_exists_step  1ms  ok\n"
      "      └── load_document  [tool]  -  running\n"
      "orphan  1ms  ok  (parent missing)\n";
  assert_string_equal(lode_buf_cstr(&out), want);

  /* a subtree, as `lode trace WORKFLOW_ID` shows a child workflow */
  lode_buf_reset(&out);
  assert_int_equal(lode_trace_render(SYS(db), ID(00), ID(03), 0, &out, err, sizeof err), 0);
  assert_non_null(strstr(lode_buf_cstr(&out), "\nprocess_file_workflow  2.38s  error\n"));
  assert_null(strstr(lode_buf_cstr(&out), "discover_files_step"));

  /* JSON: nested children */
  lode_buf_reset(&out);
  assert_int_equal(lode_trace_render(SYS(db), ID(00), NULL, 1, &out, err, sizeof err), 0);
  cJSON *doc = cJSON_Parse(lode_buf_cstr(&out));
  assert_non_null(doc);
  cJSON *roots = cJSON_GetObjectItem(doc, "spans");
  assert_int_equal(cJSON_GetArraySize(roots), 2);
  cJSON *kids = cJSON_GetObjectItem(cJSON_GetArrayItem(roots, 0), "children");
  assert_int_equal(cJSON_GetArraySize(kids), 2);
  cJSON *pf = cJSON_GetArrayItem(kids, 1);
  assert_string_equal(cJSON_GetObjectItem(pf, "status")->valuestring, "error");
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(pf, "children")), 2);
  cJSON_Delete(doc);

  /* unknown trace */
  lode_buf_reset(&out);
  assert_int_equal(lode_trace_render(SYS(db), ID(77), NULL, 0, &out, err, sizeof err), 1);
  /* a cycle in stored rows (hostile database) does not hang or crash */
  put(db, ID(10), ID(50), ID(11), "a", NULL, 1, 2, NULL);
  put(db, ID(11), ID(50), ID(10), "b", NULL, 1, 2, NULL);
  assert_int_equal(lode_trace_render(SYS(db), ID(50), ID(10), 0, &out, err, sizeof err), 0);
  lode_buf_free(&out);

  char d[32];
  lode_trace_fmt_duration(125000, d);
  assert_string_equal(d, "2m05s");
  lode_trace_fmt_duration(3720000, d);
  assert_string_equal(d, "1h02m");
  close_mem(db);
}

/* ---- exporter during an outage --------------------------------------------------- */

/* A local port with nothing listening: bind, read the port, close. */
static int dead_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  close(fd);
  return ntohs(a.sin_port);
}

static void test_exporter_outage_keeps_pending(void **state) {
  (void)state;
  char path[256], err[512], url[128], tid[37], sid[37];
  snprintf(path, sizeof path, "/tmp/lode_test_trace_%d.db", (int)getpid());
  unlink(path);
  if (pg_url()) {
    snprintf(path, sizeof path, "%s", pg_url());
    pg_empty();
  }
  lode_sysdb *sys = NULL;
  /* the exporter writes on its own connection: lode_sysdb waits for it */
  assert_int_equal(lode_sysdb_open(path, 0, &sys, err, sizeof err), LODE_OK);
  tdb raw = {0}, *db = &raw;
  if (pg_url()) {
    raw.pg = PQconnectdb(pg_url());
    PQclear(PQexec(raw.pg, "SET search_path TO lode"));
  } else {
    raw.lite = lode__sysdb_conn(sys);
  }
  snprintf(url, sizeof url, "http://127.0.0.1:%d/api", dead_port());
  lode_opik_settings ex = LODE_OPIK_SETTINGS_INIT;
  ex.url = url, ex.api_key = "key-for-outage", ex.config_path = "/nonexistent";
  ex.track_disable = 0;
  lode_opik_config cfg;
  assert_int_equal(lode_opik_config_load(&cfg, &ex, err, sizeof err), 0);
  lode_exporter *x = lode_exporter_start(path, &cfg, err, sizeof err);
  lode_opik_config_free(&cfg); /* the exporter keeps its own copy */
  assert_non_null(x);
  lode_trace_set_disabled(0);
  lode_uuid7(tid);
  for (int i = 0; i < 30; i++) {
    lode_span_rec s = {0};
    lode_uuid7(sid);
    s.id = sid, s.trace_id = tid, s.name = "s", s.start_ms = 1, s.end_ms = 2;
    assert_int_equal(lode_sysdb_begin(sys, err, sizeof err), LODE_OK);
    if (lode_trace_put_span(sys, &s, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(lode_sysdb_commit(sys, err, sizeof err), LODE_OK);
    lode_exporter_kick(x);
    lode_sleep_s(0.01);
  }
  int64_t t0 = lode_mono_ns();
  int left = lode_exporter_stop(x, 0.5);
  double took = (double)(lode_mono_ns() - t0) / 1e9;
  assert_int_equal(left, 30);
  assert_true(took < 5.0); /* bounded by the flush timeout, not by retries */
  /* backoff holds during the outage: 30 kicks did not make 30 attempts */
  long long attempts = col_int(db, "SELECT max(attempts) FROM trace_records", NULL);
  assert_true(attempts <= 6);
  /* attempts were recorded, and nothing is stuck in backoff for the next run */
  assert_true(col_int(db, "SELECT max(attempts) FROM trace_records", NULL) >= 1);
  assert_true(col_int(db, "SELECT count(*) FROM trace_records WHERE last_error LIKE 'network:%'",
                      NULL) >= 1);
  assert_int_equal(col_int(db, "SELECT count(*) FROM trace_records WHERE next_attempt_at>0", NULL), 0);

  /* a damaged row is failed once, not retried forever; `lode export`
   * semantics: bounded by its timeout during an outage */
  exec_sql(db, "INSERT INTO trace_records(id, kind, body, rev, state, updated_at)"
               " VALUES('junk', 'span', 'garbage', 1, 'pending', 1)");
  lode_export_stats st;
  assert_int_equal(lode_opik_config_load(&cfg, &ex, err, sizeof err), 0);
  t0 = lode_mono_ns();
  assert_int_equal(lode_export_flush(path, &cfg, 0.4, &st, err, sizeof err), 0);
  assert_true((double)(lode_mono_ns() - t0) / 1e9 < 5.0);
  lode_opik_config_free(&cfg);
  assert_int_equal(st.pending, 30);
  assert_int_equal(st.sent, 0);
  assert_true(st.requests >= 1 && st.requests <= 6);
  assert_int_equal(col_int(db, "SELECT count(*) FROM trace_records WHERE state='failed'", NULL), 1);

  /* an inert exporter (nothing configured) */
  lode_opik_settings none = LODE_OPIK_SETTINGS_INIT;
  none.config_path = "/nonexistent";
  clear_env();
  assert_int_equal(lode_opik_config_load(&cfg, &none, err, sizeof err), 0);
  x = lode_exporter_start(path, &cfg, err, sizeof err);
  assert_non_null(x);
  lode_exporter_kick(x);
  assert_int_equal(lode_exporter_stop(x, 1), 0);
  lode_opik_config_free(&cfg);
  /* synchronous export refuses to run without Opik */
  assert_int_equal(lode_export_flush(path, &cfg, 1, &st, err, sizeof err), -1);
  assert_non_null(strstr(err, "OPIK_URL_OVERRIDE"));
  lode_sysdb_close(sys);
  if (raw.pg) PQfinish(raw.pg);
  unlink(path);
  char side[300];
  snprintf(side, sizeof side, "%s-wal", path);
  unlink(side);
  snprintf(side, sizeof side, "%s-shm", path);
  unlink(side);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_uuid7_unique_across_fork),
      cmocka_unit_test(test_upsert_bumps_rev_and_time),
      cmocka_unit_test(test_body_shapes),
      cmocka_unit_test(test_writer),
      cmocka_unit_test(test_hostile_values),
      cmocka_unit_test(test_raw_fields),
      cmocka_unit_test(test_config_precedence),
      cmocka_unit_test(test_retry_after),
      cmocka_unit_test(test_render_tree),
      cmocka_unit_test(test_exporter_outage_keeps_pending),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
