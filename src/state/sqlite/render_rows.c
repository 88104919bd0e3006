/* render_rows.c - the trace renderer's reads and progress on SQLite. See
 * state/render_rows.h. Statements are cached on the connection: the
 * exporter renders every 100 ms while a run goes on. */
#include "state/render_rows.h"

#include <stdio.h>
#include <string.h>

#include "base/error.h"
#include "state/sqlite/sysdb_int.h"

/* A PENDING workflow parked by an earlier pass (its owner was dead) and not
 * claimed since: nothing of it can have changed. */
#define PARKED                                                                   \
  "w.status='PENDING' AND o.parked_owner IS NOT NULL AND o.parked_owner IS w.executor_id"

int lode__sqlite_render_pending(lode_sysdb *db) {
  static const char *const q =
      "SELECT EXISTS(SELECT 1 FROM workflows WHERE rowid > "
      " (SELECT value FROM trace_cursor WHERE name='workflows'))"
      " OR EXISTS(SELECT 1 FROM trace_open o JOIN workflows w ON w.id=o.workflow_id"
      "  WHERE NOT (" PARKED ") AND (w.status NOT IN ('PENDING','ENQUEUED')"
      "  OR EXISTS(SELECT 1 FROM steps p WHERE p.workflow_id=o.workflow_id"
      "  AND p.step_no>o.steps_done AND p.span_input IS NOT NULL)))";
  /* cached: an exporter asks every 100 ms while a run goes on */
  sqlite3_stmt *st = lode__sysdb_stmt(db, LODE__X_RENDER_PENDING, q);
  int yes = 1;
  if (!st) return 1;
  if (sqlite3_step(st) == SQLITE_ROW) yes = sqlite3_column_int(st, 0);
  sqlite3_reset(st);
  return yes;
}

int lode__sqlite_render_cursor(lode_sysdb *db, int64_t *cursor, char *err, size_t errlen) {
  sqlite3_stmt *st;
  *cursor = 0;
  if (sqlite3_prepare_v2(lode__sysdb_conn(db),
                         "SELECT value FROM trace_cursor WHERE name='workflows'", -1, &st,
                         NULL) != SQLITE_OK)
    return lode__sysdb_err(db, 0, "reading the trace cursor", err, errlen);
  int r = sqlite3_step(st);
  if (r == SQLITE_ROW) *cursor = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  if (r != SQLITE_ROW && r != SQLITE_DONE)
    return lode__sysdb_err(db, r, "reading the trace cursor", err, errlen);
  return LODE_OK;
}

int lode__sqlite_render_set_cursor(lode_sysdb *db, int64_t cursor, char *err, size_t errlen) {
  char sql[128];
  snprintf(sql, sizeof sql, "UPDATE trace_cursor SET value=%lld WHERE name='workflows'",
           (long long)cursor);
  if (sqlite3_exec(lode__sysdb_conn(db), sql, NULL, NULL, NULL) != SQLITE_OK)
    return lode__sysdb_err(db, 0, "moving the trace cursor", err, errlen);
  return LODE_OK;
}

int lode__sqlite_render_new(lode_sysdb *db, int64_t after, int limit,
                          int (*fn)(void *ud, int64_t rowid, const char *id, int traced), void *ud,
                          char *err, size_t errlen) {
  sqlite3_stmt *st = lode__sysdb_stmt(db, LODE__X_RENDER_NEW,
                                      "SELECT rowid, id, traced FROM workflows WHERE rowid>?1"
                                      " ORDER BY rowid LIMIT ?2");
  if (!st) return lode__sysdb_err(db, 0, "reading new workflows", err, errlen);
  sqlite3_bind_int64(st, 1, after);
  sqlite3_bind_int(st, 2, limit);
  int r;
  while ((r = sqlite3_step(st)) == SQLITE_ROW)
    if (fn(ud, sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
           sqlite3_column_int(st, 2) == 1))
      break;
  int rc = r == SQLITE_ROW || r == SQLITE_DONE
               ? LODE_OK
               : lode__sysdb_err(db, r, "reading new workflows", err, errlen);
  sqlite3_reset(st);
  return rc;
}

int lode__sqlite_render_open(lode_sysdb *db,
                           int (*fn)(void *ud, const char *id, int64_t steps_done,
                                     const char *owner),
                           void *ud, char *err, size_t errlen) {
  sqlite3_stmt *st = lode__sysdb_stmt(
      db, LODE__X_RENDER_OPEN,
      "SELECT o.workflow_id, o.steps_done, w.status='PENDING', w.executor_id"
      " FROM trace_open o JOIN workflows w ON w.id=o.workflow_id"
      " WHERE w.status<>'ENQUEUED' AND NOT (" PARKED ")");
  if (!st) return lode__sysdb_err(db, 0, "reading open workflows", err, errlen);
  int r;
  while ((r = sqlite3_step(st)) == SQLITE_ROW) {
    const char *owner = (const char *)sqlite3_column_text(st, 3);
    if (fn(ud, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1),
           sqlite3_column_int(st, 2) ? owner : NULL))
      break;
  }
  int rc = r == SQLITE_ROW || r == SQLITE_DONE
               ? LODE_OK
               : lode__sysdb_err(db, r, "reading open workflows", err, errlen);
  sqlite3_reset(st);
  return rc;
}

int lode__sqlite_render_steps(lode_sysdb *db, const char *wf_id, int64_t after, int limit,
                            int (*fn)(void *ud, const lode_step_row *r), void *ud, char *err,
                            size_t errlen) {
  /* the output is the last column (core-6): rows without a span never read it */
  sqlite3_stmt *st = lode__sysdb_stmt(
      db, LODE__X_RENDER_STEPS,
      "SELECT step_no,name,status,span_input,error,attempts,span_id,started_at,"
      "ended_at,span_id IS NOT NULL AND span_input IS NOT NULL,span_recovery,"
      "output FROM steps WHERE workflow_id=?1 AND step_no>?2 ORDER BY step_no LIMIT ?3");
  if (!st) return lode__sysdb_err(db, 0, "reading steps", err, errlen);
  sqlite3_bind_text(st, 1, wf_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, after);
  sqlite3_bind_int(st, 3, limit);
  int r;
  while ((r = sqlite3_step(st)) == SQLITE_ROW) {
    lode_step_row row;
    memset(&row, 0, sizeof row);
    row.step_no = sqlite3_column_int64(st, 0);
    if (sqlite3_column_int(st, 9)) {
      const char *status = (const char *)sqlite3_column_text(st, 2);
      row.name = (char *)sqlite3_column_text(st, 1);
      row.status = status && !strcmp(status, "ERROR") ? LODE_WF_ERROR : LODE_WF_SUCCESS;
      row.span_input = (char *)sqlite3_column_text(st, 3);
      row.error = (char *)sqlite3_column_text(st, 4);
      row.attempts = sqlite3_column_int(st, 5);
      row.span_id = (char *)sqlite3_column_text(st, 6);
      row.started_at = sqlite3_column_int64(st, 7);
      row.ended_at = sqlite3_column_int64(st, 8);
      row.span_recovery = sqlite3_column_int(st, 10);
      row.output = (uint8_t *)sqlite3_column_blob(st, 11);
      row.output_len = (size_t)sqlite3_column_bytes(st, 11);
    }
    if (fn(ud, &row)) break;
  }
  int rc = LODE_OK;
  if (r != SQLITE_ROW && r != SQLITE_DONE) {
    char what[600];
    snprintf(what, sizeof what, "reading steps of %s", wf_id);
    rc = lode__sysdb_err(db, r, what, err, errlen);
  }
  sqlite3_reset(st);
  return rc;
}

/* Runs a cached statement on (id, int or text) that returns no rows. */
static int run2(lode_sysdb *db, int slot, const char *sql, const char *id, int64_t n,
                const char *text, char *err, size_t errlen) {
  sqlite3_stmt *st = lode__sysdb_stmt(db, slot, sql);
  if (!st) return lode__sysdb_err(db, 0, "recording trace progress", err, errlen);
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  if (text) sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
  else if (sqlite3_bind_parameter_count(st) >= 2) sqlite3_bind_int64(st, 2, n);
  int r = sqlite3_step(st);
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  if (r == SQLITE_DONE) return LODE_OK;
  char what[600];
  snprintf(what, sizeof what, "recording trace progress of %s", id);
  return lode__sysdb_err(db, r, what, err, errlen);
}

int lode__sqlite_trace_open_put(lode_sysdb *db, const char *wf_id, int64_t steps_done, char *err,
                              size_t errlen) {
  return run2(db, LODE__X_OPEN_PUT,
              "INSERT OR REPLACE INTO trace_open(workflow_id, steps_done) VALUES(?1, ?2)", wf_id,
              steps_done, NULL, err, errlen);
}

int lode__sqlite_trace_open_advance(lode_sysdb *db, const char *wf_id, int64_t steps_done,
                                  char *err, size_t errlen) {
  return run2(db, LODE__X_OPEN_ADVANCE, "UPDATE trace_open SET steps_done=?2 WHERE workflow_id=?1",
              wf_id, steps_done, NULL, err, errlen);
}

int lode__sqlite_trace_open_close(lode_sysdb *db, const char *wf_id, char *err, size_t errlen) {
  return run2(db, LODE__X_OPEN_CLOSE, "DELETE FROM trace_open WHERE workflow_id=?1", wf_id, 0,
              NULL, err, errlen);
}

int lode__sqlite_trace_open_park(lode_sysdb *db, const char *wf_id, const char *owner, char *err,
                               size_t errlen) {
  return run2(db, LODE__X_OPEN_PARK,
              "UPDATE trace_open SET parked_owner=?2 WHERE workflow_id=?1", wf_id, 0, owner, err,
              errlen);
}
