/* cli_trace.c - `lode trace` (the tree of a run) and `lode export` (deliver
 * pending trace records to Opik now). */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "base/buf.h"
#include "base/error.h"
#include "core/executor.h"
#include "trace/opik_config.h"
#include "trace/trace.h"
#include "trace/trace_export.h"
#include "trace/trace_view.h"

static int open_db(const char *path, int readonly, sqlite3 **db) {
  struct stat sb;
  if (stat(path, &sb) != 0) {
    fprintf(stderr, "lode: no database at %s (run a pipeline first, or pass --db PATH)\n", path);
    return -1;
  }
  int flags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
  if (sqlite3_open_v2(path, db, flags, NULL) != SQLITE_OK) {
    fprintf(stderr, "lode: cannot open %s: %s\n", path, *db ? sqlite3_errmsg(*db) : "out of memory");
    sqlite3_close(*db);
    *db = NULL;
    return -1;
  }
  sqlite3_busy_timeout(*db, 5000);
  return 0;
}

static int has_table(sqlite3 *db, const char *name) {
  sqlite3_stmt *st = NULL;
  int found = 0;
  if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?1", -1,
                         &st, NULL) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    found = sqlite3_step(st) == SQLITE_ROW;
  }
  sqlite3_finalize(st);
  return found;
}

/* WORKFLOW_ID -> (trace id, root span id) via the workflows table; an id that
 * is not a workflow is tried as a trace id. */
static int resolve(sqlite3 *db, const char *id, char **trace_id, char **span_id) {
  sqlite3_stmt *st = NULL;
  *trace_id = *span_id = NULL;
  if (has_table(db, "workflows") &&
      sqlite3_prepare_v2(db, "SELECT trace_id, span_id FROM workflows WHERE id=?1", -1, &st,
                         NULL) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)) {
      *trace_id = strdup((const char *)sqlite3_column_text(st, 0));
      if (sqlite3_column_text(st, 1)) *span_id = strdup((const char *)sqlite3_column_text(st, 1));
    }
    sqlite3_finalize(st);
  }
  if (!*trace_id) *trace_id = strdup(id);
  return *trace_id ? 0 : -1;
}

/* Workflow and step spans are rendered from their rows in batches (by the
 * exporter, or here): bring the trace store up to date before showing it. A
 * database that cannot be written (a read-only copy) is shown as it is. */
static void render_pending(const char *path) {
  lode_sysdb *sys = NULL;
  char err[512];
  struct stat sb;
  if (stat(path, &sb) != 0 || lode_sysdb_open(path, 0, &sys, err, sizeof err) != LODE_OK) return;
  int more = 1;
  for (int guard = 0; more && guard < 100000; guard++)
    if (lode_trace_materialize(sys, 5000, &more, err, sizeof err) != LODE_OK) {
      fprintf(stderr, "lode: warning: %s\n", err);
      break;
    }
  lode_sysdb_close(sys);
}

int lode_cmd_trace(lode_cli *c) {
  sqlite3 *db = NULL;
  char *trace_id = NULL, *span_id = NULL, err[512];
  lode_buf out;
  int rc = LODE_EXIT_FAILED;
  lode_buf_init(&out, (size_t)256 << 20);
  if (c->argc != 1 || c->argv[0][0] == '-') {
    fprintf(stderr, "usage: lode trace WORKFLOW_ID|TRACE_ID [--json] [--db PATH]\n");
    rc = LODE_EXIT_USAGE;
    goto done;
  }
  render_pending(c->db);
  if (open_db(c->db, 1, &db)) goto done;
  if (!has_table(db, "trace_records")) {
    fprintf(stderr, "lode: %s has no trace records yet\n", c->db);
    goto done;
  }
  if (resolve(db, c->argv[0], &trace_id, &span_id)) goto done;
  int r = lode_trace_render(db, trace_id, span_id, c->json, &out, err, sizeof err);
  if (r == 1 && span_id) {
    /* the workflow's own span is not recorded (yet): show the whole trace */
    r = lode_trace_render(db, trace_id, NULL, c->json, &out, err, sizeof err);
  }
  if (r) {
    if (r == 1 && !strcmp(trace_id, c->argv[0]))
      fprintf(stderr, "lode: no workflow or trace '%s' in %s\n", c->argv[0], c->db);
    else fprintf(stderr, "lode: %s\n", err);
    goto done;
  }
  fwrite(out.p, 1, out.len, stdout);
  rc = LODE_EXIT_OK;
done:
  lode_buf_free(&out);
  free(trace_id);
  free(span_id);
  sqlite3_close(db);
  return rc;
}

/* `lode export --failed`: what Opik refused and why. */
static int list_failed(sqlite3 *db, int json) {
  sqlite3_stmt *st = NULL;
  cJSON *arr = json ? cJSON_CreateArray() : NULL;
  int n = 0;
  if (sqlite3_prepare_v2(db,
                         "SELECT id, kind, trace_id, name, attempts, last_error FROM trace_records"
                         " WHERE state='failed' ORDER BY updated_at", -1, &st, NULL) != SQLITE_OK) {
    fprintf(stderr, "lode: reading failed records: %s\n", sqlite3_errmsg(db));
    cJSON_Delete(arr);
    return LODE_EXIT_FAILED;
  }
  while (sqlite3_step(st) == SQLITE_ROW) {
    const char *id = (const char *)sqlite3_column_text(st, 0);
    const char *kind = (const char *)sqlite3_column_text(st, 1);
    const char *tid = (const char *)sqlite3_column_text(st, 2);
    const char *name = (const char *)sqlite3_column_text(st, 3);
    int attempts = sqlite3_column_int(st, 4);
    const char *why = (const char *)sqlite3_column_text(st, 5);
    n++;
    if (arr) {
      cJSON *o = cJSON_CreateObject();
      cJSON_AddStringToObject(o, "id", id ? id : "");
      cJSON_AddStringToObject(o, "kind", kind ? kind : "");
      if (tid) cJSON_AddStringToObject(o, "trace_id", tid);
      if (name) cJSON_AddStringToObject(o, "name", name);
      cJSON_AddNumberToObject(o, "attempts", attempts);
      cJSON_AddStringToObject(o, "response", why ? why : "");
      cJSON_AddItemToArray(arr, o);
    } else {
      printf("%s %s  %s  (trace %s, %d attempt%s)\n    %s\n", kind ? kind : "?", id ? id : "?",
             name ? name : "", tid ? tid : "?", attempts, attempts == 1 ? "" : "s",
             why ? why : "");
    }
  }
  sqlite3_finalize(st);
  if (arr) {
    char *s = cJSON_Print(arr);
    if (s) printf("%s\n", s);
    cJSON_free(s);
    cJSON_Delete(arr);
  } else if (!n) {
    printf("no failed trace records\n");
  } else {
    printf("%d failed record%s; 'lode export --retry-failed' sends them again\n", n,
           n == 1 ? "" : "s");
  }
  return LODE_EXIT_OK;
}

int lode_cmd_export(lode_cli *c) {
  int show_failed = 0, retry_failed = 0, rc = LODE_EXIT_FAILED;
  double timeout = 60.0;
  sqlite3 *db = NULL;
  lode_opik_config cfg;
  char err[512];
  memset(&cfg, 0, sizeof cfg);
  for (int i = 0; i < c->argc; i++) {
    const char *a = c->argv[i];
    if (!strcmp(a, "--failed")) show_failed = 1;
    else if (!strcmp(a, "--retry-failed")) retry_failed = 1;
    else if (!strcmp(a, "--timeout") && i + 1 < c->argc) {
      char *end;
      timeout = strtod(c->argv[++i], &end);
      if (*end || timeout < 0) {
        fprintf(stderr, "lode: --timeout takes seconds (a number >= 0)\n");
        return LODE_EXIT_USAGE;
      }
    } else {
      fprintf(stderr, "usage: lode export [--failed] [--retry-failed] [--timeout SECONDS] "
                      "[--db PATH] [--json]\n");
      return LODE_EXIT_USAGE;
    }
  }
  if (open_db(c->db, 0, &db)) goto done;
  if (lode_trace_migrate(db, err, sizeof err)) {
    fprintf(stderr, "lode: %s\n", err);
    goto done;
  }
  if (show_failed && !retry_failed) {
    rc = list_failed(db, c->json);
    goto done;
  }
  if (lode_opik_config_load(&cfg, NULL, err, sizeof err)) {
    fprintf(stderr, "lode: %s\n", err);
    goto done;
  }
  if (cfg.track_disable) {
    /* records written while disabled stay local for good */
    printf("tracking is disabled (OPIK_TRACK_DISABLE): nothing is sent\n");
    rc = LODE_EXIT_OK;
    goto done;
  }
  if (retry_failed &&
      sqlite3_exec(db, "UPDATE trace_records SET state='pending', next_attempt_at=0"
                       " WHERE state='failed'", NULL, NULL, NULL) != SQLITE_OK) {
    fprintf(stderr, "lode: requeueing failed records in %s: %s\n", c->db, sqlite3_errmsg(db));
    goto done;
  }
  sqlite3_close(db);
  db = NULL;
  lode_export_stats st;
  if (lode_export_flush(c->db, &cfg, timeout, &st, err, sizeof err)) {
    fprintf(stderr, "lode: %s\n", err);
    goto done;
  }
  if (c->json) {
    printf("{\"sent\":%d,\"failed\":%d,\"pending\":%d,\"requests\":%d}\n", st.sent, st.failed,
           st.pending, st.requests);
  } else {
    printf("delivered %d record%s to Opik in %d request%s\n", st.sent, st.sent == 1 ? "" : "s",
           st.requests, st.requests == 1 ? "" : "s");
    if (st.failed)
      printf("%d record%s rejected by Opik: see 'lode export --failed'\n", st.failed,
             st.failed == 1 ? " was" : "s were");
    if (st.pending)
      printf("%d record%s still pending (Opik unreachable?): run 'lode export' again\n",
             st.pending, st.pending == 1 ? "" : "s");
  }
  rc = st.pending || st.failed ? LODE_EXIT_FAILED : LODE_EXIT_OK;
done:
  lode_opik_config_free(&cfg);
  sqlite3_close(db);
  return rc;
}
