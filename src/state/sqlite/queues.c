/* queues.c - the SQLite backend's queues (claims within a queue's limits,
 * releasing, requeueing what dead processes held, the report), fork,
 * cancelling a tree, and lode.progress records (state/sysdb.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/codec.h"
#include "base/error.h"
#include "base/util.h"
#include "state/sqlite/sysdb_int.h"

static int64_t count1(lode_sysdb *db, const char *sql, const char *a, const char *b, int64_t c) {
  sqlite3_stmt *s;
  if (sqlite3_prepare_v2(lode__sysdb_conn(db), sql, -1, &s, NULL) != SQLITE_OK) return -1;
  lode__bind_text(s, 1, a);
  if (b) lode__bind_text(s, 2, b);
  if (c) sqlite3_bind_int64(s, 3, c);
  int64_t n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
  sqlite3_finalize(s);
  return n;
}

int lode__sqlite_queue_claim(lode_sysdb *db, const lode_queue_limits *q, const char *executor_id,
                           int max_n, char ***ids, int *nids, char *err, size_t errlen) {
  *ids = NULL;
  *nids = 0;
  if (max_n <= 0) return LODE_OK;
  /* idle workers poll often: a read (no lock) first, the write transaction
   * only when there is something to claim */
  if (count1(db, "SELECT EXISTS(SELECT 1 FROM workflows WHERE queue=?1 AND status='ENQUEUED')",
             q->name, NULL, 0) <= 0)
    return LODE_OK;
  int rc = lode__sqlite_begin(db, err, errlen);
  if (rc != LODE_OK) return rc;
  int64_t n = max_n;
  int64_t now = lode_now_ms();
  if (q->concurrency > 0) {
    int64_t running = count1(db, "SELECT count(*) FROM workflows WHERE queue=?1 AND "
                                 "status='PENDING'", q->name, NULL, 0);
    if (running < 0) n = 0; /* cannot tell: claim nothing this time */
    else if (q->concurrency - running < n) n = q->concurrency - running;
  }
  if (q->worker_concurrency > 0 && n > 0) {
    int64_t mine = count1(db, "SELECT count(*) FROM workflows WHERE queue=?1 AND "
                              "status='PENDING' AND executor_id=?2", q->name, executor_id, 0);
    if (mine < 0) n = 0;
    else if (q->worker_concurrency - mine < n) n = q->worker_concurrency - mine;
  }
  if (q->limit > 0 && n > 0) {
    /* every start counts, finished or not: the window is about starts */
    int64_t started = count1(db, "SELECT count(*) FROM workflows WHERE queue=?1 AND "
                                 "started_at>?3",
                             q->name, NULL, now - (int64_t)(q->period_s * 1000));
    if (started < 0) n = 0;
    else if (q->limit - started < n) n = q->limit - started;
  }
  char **out = NULL;
  int got = 0;
  if (n > 0) {
    sqlite3_stmt *s;
    const char *sql =
        q->priority ? "SELECT id FROM workflows WHERE queue=?1 AND status='ENQUEUED' ORDER BY "
                      "priority<>0, priority, created_at, rowid LIMIT ?2"
                    : "SELECT id FROM workflows WHERE queue=?1 AND status='ENQUEUED' ORDER BY "
                      "created_at, rowid LIMIT ?2";
    if (sqlite3_prepare_v2(lode__sysdb_conn(db), sql, -1, &s, NULL) != SQLITE_OK) {
      rc = lode__sysdb_err(db, 0, "cannot read queue", err, errlen);
    } else {
      lode__bind_text(s, 1, q->name);
      sqlite3_bind_int64(s, 2, n);
      out = calloc((size_t)n, sizeof *out);
      while (out && sqlite3_step(s) == SQLITE_ROW) out[got++] = lode__col_text(s, 0);
      sqlite3_finalize(s);
    }
    sqlite3_stmt *u = NULL;
    if (rc == LODE_OK &&
        sqlite3_prepare_v2(lode__sysdb_conn(db), "UPDATE workflows SET status='PENDING', executor_id=?1, "
                                   "started_at=?2, updated_at=?2 WHERE id=?3 AND "
                                   "status='ENQUEUED'", -1, &u, NULL) != SQLITE_OK)
      rc = lode__sysdb_err(db, 0, "cannot claim", err, errlen);
    for (int i = 0; i < got && rc == LODE_OK; i++) {
      lode__bind_text(u, 1, executor_id);
      sqlite3_bind_int64(u, 2, now);
      lode__bind_text(u, 3, out[i]);
      if (sqlite3_step(u) != SQLITE_DONE) rc = lode__sysdb_err(db, 0, "cannot claim", err, errlen);
      sqlite3_reset(u);
    }
    sqlite3_finalize(u);
  }
  if (rc == LODE_OK) rc = lode__sqlite_commit(db, err, errlen);
  if (rc != LODE_OK) {
    lode__sqlite_rollback(db);
    for (int i = 0; i < got; i++) free(out[i]);
    free(out);
    return rc;
  }
  *ids = out;
  *nids = got;
  return LODE_OK;
}

int lode__sqlite_release(lode_sysdb *db, const char *executor_id, const char *id, char *err,
                       size_t errlen) {
  sqlite3_stmt *s;
  const char *sql = id ? "UPDATE workflows SET status='ENQUEUED', executor_id=NULL, "
                         "started_at=NULL WHERE executor_id=?1 AND status='PENDING' AND "
                         "queue IS NOT NULL AND id=?2"
                       : "UPDATE workflows SET status='ENQUEUED', executor_id=NULL, "
                         "started_at=NULL WHERE executor_id=?1 AND status='PENDING' AND "
                         "queue IS NOT NULL";
  if (sqlite3_prepare_v2(lode__sysdb_conn(db), sql, -1, &s, NULL) != SQLITE_OK)
    return lode__sysdb_err(db, 0, "prepare", err, errlen);
  lode__bind_text(s, 1, executor_id);
  if (id) lode__bind_text(s, 2, id);
  int rc = sqlite3_step(s);
  sqlite3_finalize(s);
  if (rc != SQLITE_DONE) return lode__sysdb_err(db, rc, "cannot release workflows", err, errlen);
  return LODE_OK;
}

int lode__sqlite_requeue_dead(lode_sysdb *db, char *err, size_t errlen) {
  /* queued workflows whose process died go back to their queue */
  sqlite3_stmt *s;
  if (sqlite3_prepare_v2(lode__sysdb_conn(db), "SELECT DISTINCT executor_id FROM workflows WHERE "
                                 "status='PENDING' AND queue IS NOT NULL", -1, &s, NULL) != SQLITE_OK)
    return lode__sysdb_err(db, 0, "prepare", err, errlen);
  char *dead[64];
  int n = 0;
  while (sqlite3_step(s) == SQLITE_ROW && n < 64) {
    const char *e = (const char *)sqlite3_column_text(s, 0);
    if (!e || !lode__sqlite_executor_alive(db, e)) dead[n++] = e ? strdup(e) : NULL;
  }
  sqlite3_finalize(s);
  int rc = LODE_OK;
  for (int i = 0; i < n; i++) {
    if (dead[i] && rc == LODE_OK) rc = lode__sqlite_release(db, dead[i], NULL, err, errlen);
    free(dead[i]);
  }
  return rc;
}

int lode__sqlite_wf_fork(lode_sysdb *db, const char *src, const char *new_id, int64_t step,
                       const char *trace_id, const char *span_id, char *err, size_t errlen) {
  int rc = lode__sqlite_begin(db, err, errlen);
  if (rc != LODE_OK) return rc;
  sqlite3_stmt *s = NULL;
  int64_t now = lode_now_ms();
  if (sqlite3_prepare_v2(lode__sysdb_conn(db),
                         "INSERT INTO workflows(id,name,status,input,pipeline,version,"
                         "recovery_attempts,max_recovery_attempts,trace_id,span_id,created_at,"
                         "updated_at,started_at,traced,trace_extra) SELECT ?2,name,'PENDING',"
                         "input,pipeline,version,0,max_recovery_attempts,?3,?4,?5,?5,?5,traced,"
                         "trace_extra FROM workflows WHERE id=?1",
                         -1, &s, NULL) != SQLITE_OK) {
    rc = lode__sysdb_err(db, 0, "cannot fork", err, errlen);
    goto done;
  }
  lode__bind_text(s, 1, src);
  lode__bind_text(s, 2, new_id);
  lode__bind_text(s, 3, trace_id);
  lode__bind_text(s, 4, span_id);
  sqlite3_bind_int64(s, 5, now);
  if (sqlite3_step(s) != SQLITE_DONE || sqlite3_changes(lode__sysdb_conn(db)) != 1) {
    rc = lode__sysdb_err(db, 0, "cannot fork (does the id exist, is the new id free?)", err, errlen);
    goto done;
  }
  sqlite3_finalize(s);
  s = NULL;
  if (sqlite3_prepare_v2(lode__sysdb_conn(db),
                         "INSERT INTO steps(workflow_id,step_no,name,status,output,error,attempts,"
                         "child_id,span_id,started_at,ended_at) SELECT ?2,step_no,name,status,"
                         "output,error,attempts,child_id,span_id,started_at,ended_at FROM steps "
                         "WHERE workflow_id=?1 AND step_no<?3",
                         -1, &s, NULL) != SQLITE_OK) {
    rc = lode__sysdb_err(db, 0, "cannot fork", err, errlen);
    goto done;
  }
  lode__bind_text(s, 1, src);
  lode__bind_text(s, 2, new_id);
  sqlite3_bind_int64(s, 3, step);
  if (sqlite3_step(s) != SQLITE_DONE) rc = lode__sysdb_err(db, 0, "cannot copy steps", err, errlen);
done:
  sqlite3_finalize(s);
  if (rc == LODE_OK) rc = lode__sqlite_commit(db, err, errlen);
  if (rc != LODE_OK) lode__sqlite_rollback(db);
  return rc;
}

int lode__sqlite_cancel_tree(lode_sysdb *db, const char *id, int *n, char *err, size_t errlen) {
  sqlite3_stmt *s;
  if (sqlite3_prepare_v2(lode__sysdb_conn(db),
                         "WITH RECURSIVE tree(id) AS (SELECT ?1 UNION ALL SELECT w.id FROM "
                         "workflows w JOIN tree t ON w.parent_id=t.id) UPDATE workflows SET "
                         "status='CANCELLED', updated_at=?2 WHERE id IN (SELECT id FROM tree) "
                         "AND status IN ('PENDING','ENQUEUED')",
                         -1, &s, NULL) != SQLITE_OK)
    return lode__sysdb_err(db, 0, "cannot cancel", err, errlen);
  lode__bind_text(s, 1, id);
  sqlite3_bind_int64(s, 2, lode_now_ms());
  int rc = sqlite3_step(s);
  sqlite3_finalize(s);
  if (rc != SQLITE_DONE) return lode__sysdb_err(db, rc, "cannot cancel", err, errlen);
  *n = sqlite3_changes(lode__sysdb_conn(db));
  return LODE_OK;
}

int lode__sqlite_queue_report(lode_sysdb *db, lode_buf *out, int json, char *err, size_t errlen) {
  sqlite3_stmt *s;
  if (sqlite3_prepare_v2(lode__sysdb_conn(db),
                         "SELECT queue, status, id, name, priority, created_at, started_at, "
                         "executor_id FROM workflows WHERE queue IS NOT NULL AND status IN "
                         "('ENQUEUED','PENDING') ORDER BY queue, status DESC, priority, "
                         "created_at",
                         -1, &s, NULL) != SQLITE_OK)
    return lode__sysdb_err(db, 0, "cannot read queues", err, errlen);
  int first = 1;
  lode__queue_report_head(out, json);
  while (sqlite3_step(s) == SQLITE_ROW) {
    const char *q = (const char *)sqlite3_column_text(s, 0);
    const char *st = (const char *)sqlite3_column_text(s, 1);
    const char *id = (const char *)sqlite3_column_text(s, 2);
    const char *name = (const char *)sqlite3_column_text(s, 3);
    int prio = sqlite3_column_int(s, 4);
    lode__queue_report_row(out, json, !first, q, st, id, name, prio);
    first = 0;
  }
  sqlite3_finalize(s);
  if (json) lode_buf_puts(out, "]\n");
  return LODE_OK;
}

/* ---- progress (lode.progress) ------------------------------------------------ */

int lode__sqlite_progress_put(lode_sysdb *db, const char *wf_id, const char *json, char *err,
                            size_t errlen) {
  sqlite3_stmt *s = NULL;
  if (sqlite3_prepare_v2(lode__sysdb_conn(db),
                         "INSERT INTO workflow_progress(workflow_id,progress,updated_at)"
                         " VALUES(?1,?2,?3) ON CONFLICT(workflow_id) DO UPDATE SET"
                         " progress=excluded.progress, updated_at=excluded.updated_at",
                         -1, &s, NULL) != SQLITE_OK)
    return lode__sysdb_err(db, 0, "cannot record progress", err, errlen);
  lode__bind_text(s, 1, wf_id);
  lode__bind_text(s, 2, json);
  sqlite3_bind_int64(s, 3, lode_now_ms());
  int r = sqlite3_step(s);
  int rc = r == SQLITE_DONE ? LODE_OK : lode__sysdb_err(db, r, "cannot record progress", err, errlen);
  sqlite3_finalize(s);
  return rc;
}

int lode__sqlite_progress_get(lode_sysdb *db, const char *wf_id, char **json, int64_t *updated_at,
                            char *err, size_t errlen) {
  sqlite3_stmt *s = NULL;
  *json = NULL;
  if (sqlite3_prepare_v2(lode__sysdb_conn(db),
                         "SELECT progress, updated_at FROM workflow_progress WHERE workflow_id=?1",
                         -1, &s, NULL) != SQLITE_OK) {
    /* a read-only database from before schema 7 has no progress */
    sqlite3_finalize(s);
    return LODE_ENOTFOUND;
  }
  lode__bind_text(s, 1, wf_id);
  int r = sqlite3_step(s), rc = LODE_ENOTFOUND;
  if (r == SQLITE_ROW) {
    *json = lode__col_text(s, 0);
    if (updated_at) *updated_at = sqlite3_column_int64(s, 1);
    rc = *json ? LODE_OK : LODE_ENOMEM;
  } else if (r != SQLITE_DONE) {
    rc = lode__sysdb_err(db, r, "cannot read progress", err, errlen);
  }
  sqlite3_finalize(s);
  return rc;
}
