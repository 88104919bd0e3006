/* trace_store.c - trace_records on SQLite: the schema, the record upsert,
 * the outbox and the reads of `lode trace`. See state/trace_store.h. */
#include "state/trace_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/util.h"
#include "state/sqlite/sysdb_int.h"

/* ---- schema (migration trace-1) ------------------------------------------------ */

static const char *const schema_sql =
    "CREATE TABLE IF NOT EXISTS trace_records("
    " id TEXT PRIMARY KEY,"
    " kind TEXT NOT NULL,"          /* trace | span | feedback */
    " trace_id TEXT,"
    " parent_id TEXT,"              /* parent span id; NULL for roots and traces */
    " name TEXT,"
    " type TEXT,"
    " start_ms INTEGER,"
    " end_ms INTEGER,"
    " error TEXT,"                  /* 'Type: message' for `lode trace`, NULL if ok */
    " body TEXT NOT NULL,"          /* JSON sent to Opik, minus the envelope */
    " rev INTEGER NOT NULL,"        /* bumps on every upsert */
    " state TEXT NOT NULL,"         /* pending | sent | failed | disabled */
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " last_error TEXT,"
    " next_attempt_at INTEGER NOT NULL DEFAULT 0,"
    " updated_at INTEGER NOT NULL);" /* epoch ms, strictly increasing per id */
    "CREATE INDEX IF NOT EXISTS trace_records_outbox"
    " ON trace_records(state, kind, next_attempt_at);"
    "CREATE INDEX IF NOT EXISTS trace_records_by_trace ON trace_records(trace_id, start_ms);";

/* The local trace store commits with the checkpoints it describes, so its
 * table lives in the same file. Idempotent. */
int lode__trace_store_v1(sqlite3 *db, char *err, size_t errlen) {
  char *msg = NULL;
  if (sqlite3_exec(db, schema_sql, NULL, NULL, &msg) == SQLITE_OK) return LODE_OK;
  snprintf(err, errlen, "creating the trace store tables: %s", msg ? msg : sqlite3_errmsg(db));
  sqlite3_free(msg);
  return LODE_EDB;
}

/* Migration trace-2: OTLP's own delivery state beside Opik's (`state`,
 * `attempts`, `last_error`, `next_attempt_at`), so one destination being
 * down never holds the other back. Finished spans only (OTLP has no trace
 * or feedback records, and its spans are final: an open span's version has
 * none, its closed version is pending); rows stored before it have none
 * (NULL: never sent over OTLP). */
int lode__trace_store_v2(sqlite3 *db, char *err, size_t errlen) {
  char *msg = NULL;
  if (sqlite3_exec(db,
                   "ALTER TABLE trace_records ADD COLUMN otlp_state TEXT;"
                   "ALTER TABLE trace_records ADD COLUMN otlp_attempts INTEGER NOT NULL DEFAULT 0;"
                   "ALTER TABLE trace_records ADD COLUMN otlp_error TEXT;"
                   "ALTER TABLE trace_records ADD COLUMN otlp_next_at INTEGER NOT NULL DEFAULT 0;"
                   "CREATE INDEX trace_records_otlp ON trace_records(otlp_state, otlp_next_at)"
                   " WHERE otlp_state IS NOT NULL;",
                   NULL, NULL, &msg) == SQLITE_OK)
    return LODE_OK;
  snprintf(err, errlen, "adding the OTLP delivery state: %s", msg ? msg : sqlite3_errmsg(db));
  sqlite3_free(msg);
  return LODE_EDB;
}

/* ---- records ------------------------------------------------------------------ */

static const char *const upsert_sql =
    "INSERT INTO trace_records(id, kind, trace_id, parent_id, name, type, start_ms, end_ms,"
    " error, body, rev, state, attempts, last_error, next_attempt_at, updated_at,"
    " otlp_state, otlp_attempts, otlp_error, otlp_next_at)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 1, ?11, 0, NULL, 0, ?12,"
    " CASE WHEN ?2='span' AND ?8>0 THEN ?11 END, 0, NULL, 0)"
    " ON CONFLICT(id) DO UPDATE SET kind=excluded.kind, trace_id=excluded.trace_id,"
    " parent_id=excluded.parent_id, name=excluded.name, type=excluded.type,"
    " start_ms=excluded.start_ms, end_ms=excluded.end_ms, error=excluded.error,"
    " body=excluded.body, rev=rev+1, state=excluded.state, attempts=0, last_error=NULL,"
    " next_attempt_at=0, updated_at=MAX(excluded.updated_at, updated_at + 1),"
    " otlp_state=excluded.otlp_state, otlp_attempts=0, otlp_error=NULL, otlp_next_at=0";

int lode__sqlite_trace_put(lode_sysdb *db, const lode_trace_row *r, char *err, size_t errlen) {
  sqlite3_stmt *st = lode__sysdb_stmt(db, LODE__X_TRACE_UPSERT, upsert_sql);
  if (!st) return lode__sysdb_err(db, 0, "preparing the trace store upsert", err, errlen);
  lode__bind_text(st, 1, r->id);
  lode__bind_text(st, 2, r->kind);
  lode__bind_text(st, 3, r->trace_id);
  lode__bind_text(st, 4, r->parent_id);
  lode__bind_text(st, 5, r->name);
  lode__bind_text(st, 6, r->type);
  sqlite3_bind_int64(st, 7, r->start_ms);
  sqlite3_bind_int64(st, 8, r->end_ms);
  lode__bind_text(st, 9, r->error);
  lode__bind_text(st, 10, r->body);
  lode__bind_text(st, 11, r->state ? r->state : LODE_TRACE_PENDING);
  sqlite3_bind_int64(st, 12, lode_now_ms());
  int rc = sqlite3_step(st) == SQLITE_DONE ? LODE_OK : LODE_EDB;
  if (rc != LODE_OK)
    snprintf(err, errlen, "storing %s %s in the trace store: %s", r->kind, r->id,
             sqlite3_errmsg(lode__sysdb_conn(db)));
  sqlite3_reset(st);
  sqlite3_clear_bindings(st); /* they point into the caller's strings */
  return rc;
}

/* ---- the outbox ---------------------------------------------------------------- */

/* Runs sql (no result rows) on the connection. */
static int exec(lode_sysdb *db, const char *sql, const char *what, char *err, size_t errlen) {
  char *msg = NULL;
  if (sqlite3_exec(lode__sysdb_conn(db), sql, NULL, NULL, &msg) == SQLITE_OK) return LODE_OK;
  snprintf(err, errlen, "%s: %s: %s", lode__sqlite_path(db), what, msg ? msg : "?");
  sqlite3_free(msg);
  return LODE_EDB;
}

/* The outbox's columns for each destination (trace_store.h). */
typedef struct dest_sql {
  const char *start, *undelay, *retry_failed, *select, *mark[3], *pending, *failed;
  int slot_select, slot_mark[3], slot_pending;
} dest_sql;

static const dest_sql dests[] = {
    [LODE_OUTBOX_OPIK] =
        {"UPDATE trace_records SET next_attempt_at=0"
         " WHERE state='pending' AND next_attempt_at>0;"
         "UPDATE trace_records SET state='failed',"
         " last_error='the stored record is not a JSON object; it cannot be sent'"
         " WHERE state='pending' AND (body IS NULL OR substr(body,1,1)<>'{')",
         "UPDATE trace_records SET next_attempt_at=0 WHERE state='pending'"
         " AND next_attempt_at>0",
         "UPDATE trace_records SET state='pending', next_attempt_at=0 WHERE state='failed'",
         "SELECT id, rev, updated_at, body FROM trace_records"
         " WHERE state='pending' AND kind=?1 AND next_attempt_at<=?2 LIMIT ?3",
         {[LODE_OUTBOX_SENT] = "UPDATE trace_records SET state='sent', attempts=attempts+1,"
                               " last_error=NULL WHERE id=?1 AND rev=?2 AND state='pending'",
          [LODE_OUTBOX_FAILED] = "UPDATE trace_records SET state='failed', attempts=attempts+1,"
                                 " last_error=?3 WHERE id=?1 AND rev=?2 AND state='pending'",
          [LODE_OUTBOX_RETRY] = "UPDATE trace_records SET attempts=attempts+1, last_error=?3,"
                                " next_attempt_at=?4 WHERE id=?1 AND rev=?2 AND state='pending'"},
         "SELECT count(*) FROM trace_records WHERE state='pending'",
         "SELECT id, kind, trace_id, name, attempts, last_error FROM trace_records"
         " WHERE state='failed' ORDER BY updated_at",
         LODE__X_OUTBOX_SELECT,
         {[LODE_OUTBOX_SENT] = LODE__X_OUTBOX_SENT, [LODE_OUTBOX_FAILED] = LODE__X_OUTBOX_FAILED,
          [LODE_OUTBOX_RETRY] = LODE__X_OUTBOX_RETRY},
         LODE__X_OUTBOX_PENDING},
    [LODE_OUTBOX_OTLP] =
        {"UPDATE trace_records SET otlp_next_at=0"
         " WHERE otlp_state='pending' AND otlp_next_at>0;"
         "UPDATE trace_records SET otlp_state='failed',"
         " otlp_error='the stored record is not a JSON object; it cannot be sent'"
         " WHERE otlp_state='pending' AND (body IS NULL OR substr(body,1,1)<>'{')",
         "UPDATE trace_records SET otlp_next_at=0 WHERE otlp_state='pending'"
         " AND otlp_next_at>0",
         "UPDATE trace_records SET otlp_state='pending', otlp_next_at=0"
         " WHERE otlp_state='failed'",
         "SELECT id, rev, updated_at, body FROM trace_records"
         " WHERE otlp_state='pending' AND kind=?1 AND otlp_next_at<=?2 LIMIT ?3",
         {[LODE_OUTBOX_SENT] = "UPDATE trace_records SET otlp_state='sent',"
                               " otlp_attempts=otlp_attempts+1, otlp_error=NULL"
                               " WHERE id=?1 AND rev=?2 AND otlp_state='pending'",
          [LODE_OUTBOX_FAILED] = "UPDATE trace_records SET otlp_state='failed',"
                                 " otlp_attempts=otlp_attempts+1, otlp_error=?3"
                                 " WHERE id=?1 AND rev=?2 AND otlp_state='pending'",
          [LODE_OUTBOX_RETRY] = "UPDATE trace_records SET otlp_attempts=otlp_attempts+1,"
                                " otlp_error=?3, otlp_next_at=?4"
                                " WHERE id=?1 AND rev=?2 AND otlp_state='pending'"},
         "SELECT count(*) FROM trace_records WHERE otlp_state='pending'",
         "SELECT id, kind, trace_id, name, otlp_attempts, otlp_error FROM trace_records"
         " WHERE otlp_state='failed' ORDER BY updated_at",
         LODE__X_OTLP_SELECT,
         {[LODE_OUTBOX_SENT] = LODE__X_OTLP_SENT, [LODE_OUTBOX_FAILED] = LODE__X_OTLP_FAILED,
          [LODE_OUTBOX_RETRY] = LODE__X_OTLP_RETRY},
         LODE__X_OTLP_PENDING},
};

static const dest_sql *dest(lode_sysdb *db) { return &dests[*lode__sysdb_outbox_dest(db)]; }

void lode__sqlite_outbox_use(lode_sysdb *db, enum lode_outbox_dest d) {
  *lode__sysdb_outbox_dest(db) = d == LODE_OUTBOX_OTLP ? LODE_OUTBOX_OTLP : LODE_OUTBOX_OPIK;
}

int lode__sqlite_outbox_start(lode_sysdb *db, char *err, size_t errlen) {
  return exec(db, dest(db)->start, "preparing the trace outbox", err, errlen);
}

int lode__sqlite_outbox_undelay(lode_sysdb *db, char *err, size_t errlen) {
  return exec(db, dest(db)->undelay, "making delayed trace records due", err, errlen);
}

int lode__sqlite_outbox_retry_failed(lode_sysdb *db, char *err, size_t errlen) {
  return exec(db, dest(db)->retry_failed, "requeueing failed trace records", err, errlen);
}

int lode__sqlite_outbox_keep_local(lode_sysdb *db, int64_t before_ms, int *n, char *err,
                                   size_t errlen) {
  int otlp = *lode__sysdb_outbox_dest(db) == LODE_OUTBOX_OTLP;
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(lode__sysdb_conn(db),
                         otlp ? "UPDATE trace_records SET otlp_state='disabled'"
                                " WHERE otlp_state='pending' AND COALESCE(NULLIF(start_ms, 0), updated_at)<?1"
                              : "UPDATE trace_records SET state='disabled'"
                                " WHERE state='pending' AND COALESCE(NULLIF(start_ms, 0), updated_at)<?1",
                         -1, &st, NULL) != SQLITE_OK)
    return lode__sysdb_err(db, 0, "keeping older trace records local", err, errlen);
  sqlite3_bind_int64(st, 1, before_ms);
  int r = sqlite3_step(st);
  sqlite3_finalize(st);
  if (r != SQLITE_DONE) return lode__sysdb_err(db, r, "keeping older trace records local", err, errlen);
  *n = sqlite3_changes(lode__sysdb_conn(db));
  return LODE_OK;
}

int lode__sqlite_outbox_load(lode_sysdb *db, const char *kind, int64_t now_ms, int limit,
                           lode_outbox_fn fn, void *ud, char *err, size_t errlen) {
  const dest_sql *d = dest(db);
  sqlite3_stmt *st = lode__sysdb_stmt(db, d->slot_select, d->select);
  if (!st) return lode__sysdb_err(db, 0, "preparing the outbox read", err, errlen);
  sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, now_ms);
  sqlite3_bind_int(st, 3, limit);
  int r, rc = LODE_OK;
  while ((r = sqlite3_step(st)) == SQLITE_ROW) {
    const char *body = (const char *)sqlite3_column_text(st, 3);
    size_t len = (size_t)sqlite3_column_bytes(st, 3);
    if (fn(ud, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1),
           sqlite3_column_int64(st, 2), body, len))
      break;
  }
  if (r != SQLITE_ROW && r != SQLITE_DONE)
    rc = lode__sysdb_err(db, r, "reading the outbox", err, errlen);
  sqlite3_reset(st);
  return rc;
}

int lode__sqlite_outbox_mark(lode_sysdb *db, enum lode_outbox_mark how, const lode_outbox_ref *refs,
                           int n, const char *text, int64_t when, int *changed, char *err,
                           size_t errlen) {
  const dest_sql *d = dest(db);
  sqlite3_stmt *st = lode__sysdb_stmt(db, d->slot_mark[how], d->mark[how]);
  if (!st) return lode__sysdb_err(db, 0, "preparing the outbox update", err, errlen);
  /* lode_sysdb's begin/commit/rollback: its releases wake this process's
   * waiting writers (base/busy.c) */
  int rc = lode__sqlite_begin(db, err, errlen);
  for (int i = 0; i < n && rc == LODE_OK; i++) {
    sqlite3_bind_text(st, 1, refs[i].id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, refs[i].rev);
    if (how != LODE_OUTBOX_SENT) lode__bind_text(st, 3, text);
    if (how == LODE_OUTBOX_RETRY) sqlite3_bind_int64(st, 4, when);
    int r = sqlite3_step(st);
    sqlite3_reset(st);
    if (r != SQLITE_DONE) rc = lode__sysdb_err(db, r, "updating the outbox", err, errlen);
    else if (changed) *changed += sqlite3_changes(lode__sysdb_conn(db));
  }
  sqlite3_clear_bindings(st);
  if (rc == LODE_OK) rc = lode__sqlite_commit(db, err, errlen);
  if (rc != LODE_OK) lode__sqlite_rollback(db);
  return rc;
}

int lode__sqlite_outbox_pending(lode_sysdb *db) {
  const dest_sql *d = dest(db);
  sqlite3_stmt *st = lode__sysdb_stmt(db, d->slot_pending, d->pending);
  if (!st) return -1;
  int n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
  sqlite3_reset(st);
  return n;
}

int lode__sqlite_outbox_failed(lode_sysdb *db, void (*fn)(void *ud, const lode_outbox_failure *f),
                             void *ud, char *err, size_t errlen) {
  sqlite3 *c = lode__sysdb_conn(db);
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(c, dest(db)->failed, -1, &st, NULL) != SQLITE_OK)
    return lode__sysdb_err(db, 0, "reading failed trace records", err, errlen);
  int r;
  while ((r = sqlite3_step(st)) == SQLITE_ROW) {
    lode_outbox_failure f = {
        (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
        (const char *)sqlite3_column_text(st, 2), (const char *)sqlite3_column_text(st, 3),
        (const char *)sqlite3_column_text(st, 5),  sqlite3_column_int(st, 4)};
    fn(ud, &f);
  }
  int rc = r == SQLITE_DONE ? LODE_OK
                            : lode__sysdb_err(db, r, "reading failed trace records", err, errlen);
  sqlite3_finalize(st);
  return rc;
}

/* ---- reading a trace ------------------------------------------------------------- */

int lode__sqlite_trace_spans(lode_sysdb *db, const char *trace_id,
                           int (*fn)(void *ud, const lode_trace_span_row *r), void *ud, char *err,
                           size_t errlen) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(lode__sysdb_conn(db),
                         "SELECT id, parent_id, name, type, error, state, start_ms, end_ms, body"
                         " FROM trace_records WHERE trace_id=?1 AND kind='span'"
                         " ORDER BY start_ms, id",
                         -1, &st, NULL) != SQLITE_OK)
    return lode__sysdb_err(db, 0, "reading a trace", err, errlen);
  sqlite3_bind_text(st, 1, trace_id, -1, SQLITE_STATIC);
  int r, rc = LODE_OK;
  while ((r = sqlite3_step(st)) == SQLITE_ROW) {
    const char *t[6];
    for (int i = 0; i < 6; i++) t[i] = (const char *)sqlite3_column_text(st, i);
    lode_trace_span_row row = {t[0], t[1], t[2], t[3], t[4], t[5],
                               sqlite3_column_int64(st, 6), sqlite3_column_int64(st, 7),
                               (const char *)sqlite3_column_text(st, 8)};
    if ((rc = fn(ud, &row)) != 0) {
      snprintf(err, errlen, "out of memory reading trace %s", trace_id);
      rc = LODE_ENOMEM;
      break;
    }
  }
  if (rc == LODE_OK && r != SQLITE_DONE) {
    char what[160];
    snprintf(what, sizeof what, "reading trace %s", trace_id);
    rc = lode__sysdb_err(db, r, what, err, errlen);
  }
  sqlite3_finalize(st);
  return rc;
}

/* One row of (a, b) text columns for `key`: malloc'd copies. */
static int two_texts(lode_sysdb *db, const char *sql, const char *key, char **a, char **b,
                     char *err, size_t errlen) {
  sqlite3_stmt *st = NULL;
  *a = *b = NULL;
  if (sqlite3_prepare_v2(lode__sysdb_conn(db), sql, -1, &st, NULL) != SQLITE_OK)
    return lode__sysdb_err(db, 0, "reading a trace", err, errlen);
  sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
  int r = sqlite3_step(st), rc = LODE_ENOTFOUND;
  if (r == SQLITE_ROW) {
    *a = lode__col_text(st, 0);
    *b = lode__col_text(st, 1);
    rc = LODE_OK;
    if ((sqlite3_column_text(st, 0) && !*a) || (sqlite3_column_text(st, 1) && !*b)) {
      free(*a), free(*b);
      *a = *b = NULL;
      snprintf(err, errlen, "out of memory");
      rc = LODE_ENOMEM;
    }
  } else if (r != SQLITE_DONE) {
    rc = lode__sysdb_err(db, r, "reading a trace", err, errlen);
  }
  sqlite3_finalize(st);
  return rc;
}

int lode__sqlite_trace_head(lode_sysdb *db, const char *trace_id, char **name, char **body,
                          char *err, size_t errlen) {
  return two_texts(db, "SELECT name, body FROM trace_records WHERE id=?1 AND kind='trace'",
                   trace_id, name, body, err, errlen);
}

static int has_table(lode_sysdb *db, const char *name) {
  sqlite3_stmt *st = NULL;
  int found = 0;
  if (sqlite3_prepare_v2(lode__sysdb_conn(db),
                         "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?1", -1, &st,
                         NULL) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    found = sqlite3_step(st) == SQLITE_ROW;
  }
  sqlite3_finalize(st);
  return found;
}

int lode__sqlite_has_trace_store(lode_sysdb *db) { return has_table(db, "trace_records"); }

int lode__sqlite_wf_trace_ref(lode_sysdb *db, const char *wf_id, char **trace_id, char **span_id,
                            char *err, size_t errlen) {
  *trace_id = *span_id = NULL;
  /* a read-only database need not be a state database at all */
  if (!has_table(db, "workflows")) return LODE_ENOTFOUND;
  int rc = two_texts(db, "SELECT trace_id, span_id FROM workflows WHERE id=?1", wf_id, trace_id,
                     span_id, err, errlen);
  if (rc == LODE_OK && !*trace_id) {
    free(*span_id);
    *span_id = NULL;
    rc = LODE_ENOTFOUND;
  }
  return rc;
}

int lode__sqlite_latest_trace(lode_sysdb *db, char **trace_id, char *err, size_t errlen) {
  char *unused = NULL;
  *trace_id = NULL;
  if (!has_table(db, "workflows")) return LODE_ENOTFOUND;
  int rc = two_texts(db,
                     "SELECT trace_id, NULL FROM workflows WHERE parent_id IS NULL AND"
                     " trace_id IS NOT NULL AND ?1 IS NOT NULL ORDER BY created_at DESC, rowid DESC"
                     " LIMIT 1",
                     "latest", trace_id, &unused, err, errlen);
  free(unused);
  if (rc == LODE_OK && !*trace_id) rc = LODE_ENOTFOUND;
  return rc;
}
