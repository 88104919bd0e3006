/* queues.c - queues on PostgreSQL (claims within every limit across hosts,
 * releasing, requeueing what dead executors held, the report), fork,
 * cancelling a tree, and lode.progress records (state/sysdb.h).
 *
 * A claim is one transaction. With a global concurrency, a per-process
 * limit or a rate limit, it first takes the queue's advisory lock
 * (pg_advisory_xact_lock on the queue's name), so the counts it reads
 * (read committed: each statement sees what committed before it) cannot
 * be overtaken by another host's claim before this one commits; without
 * limits none is needed. The rows are picked FOR UPDATE SKIP LOCKED, so
 * hosts claiming at once take different rows instead of waiting. Idle
 * workers learn of new work by LISTEN lode_wake (sent by an enqueue and by
 * a queued workflow finishing); a queue found empty is not asked again
 * until such a wake, or a slow poll (1 s) as a safety net. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/codec.h"
#include "base/error.h"
#include "base/util.h"
#include "state/postgres/pg_int.h"

#define SLOW_POLL_MS 1000

static uint32_t hash(const char *s) {
  uint32_t h = 2166136261u;
  for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
  return h ? h : 1;
}

/* 1 if the queue was found empty since the last wake, less than the slow
 * poll ago (nothing to ask the server). */
static int idle_skip(lode_sysdb *db, uint32_t h) {
  lode__pg_poll(db);
  int64_t now = lode_now_ms();
  for (int i = 0; i < 16; i++)
    if (db->idle[i].hash == h)
      return db->idle[i].wakes == db->wakes && now - db->idle[i].at < SLOW_POLL_MS;
  return 0;
}

/* wakes: the count before the look that found it empty (a wake during
 * the look is not lost) */
static void idle_mark(lode_sysdb *db, uint32_t h, int empty, unsigned wakes) {
  int slot = -1;
  for (int i = 0; i < 16 && slot < 0; i++)
    if (db->idle[i].hash == h) slot = i;
  if (!empty) {
    if (slot >= 0) db->idle[slot].hash = 0;
    return;
  }
  for (int i = 0; i < 16 && slot < 0; i++)
    if (!db->idle[i].hash) slot = i;
  if (slot < 0) slot = (int)(h % 16);
  db->idle[slot].hash = h;
  db->idle[slot].wakes = wakes;
  db->idle[slot].at = lode_now_ms();
}

static int64_t count1(lode_sysdb *db, const char *sql, lode__pgq *q, char *err, size_t errlen) {
  int rc;
  PGresult *r = lode__pg_exec(db, -1, sql, q, "cannot read queue", err, errlen, &rc);
  if (!r) return -1;
  int64_t n = PQntuples(r) ? lode__pg_i64(r, 0, 0) : -1;
  PQclear(r);
  return n;
}

int lode__pg_queue_claim(lode_sysdb *db, const lode_queue_limits *ql, const char *executor_id,
                         int max_n, char ***ids, int *nids, char *err, size_t errlen) {
  *ids = NULL;
  *nids = 0;
  if (max_n <= 0) return LODE_OK;
  uint32_t h = hash(ql->name);
  if (idle_skip(db, h)) return LODE_OK;
  /* a read first: the transaction only when there is something to claim */
  lode__pgq q1 = {0};
  lode__pgq_text(&q1, ql->name);
  unsigned wakes_before = db->wakes;
  int64_t any = count1(db,
                       "SELECT count(*) FROM (SELECT 1 FROM workflows WHERE queue=$1 AND"
                       " status='ENQUEUED' LIMIT 1) x",
                       &q1, err, errlen);
  if (any < 0) return LODE_EDB;
  if (any == 0) {
    idle_mark(db, h, 1, wakes_before);
    return LODE_OK;
  }
  int rc = lode__pg_begin(db, err, errlen);
  if (rc != LODE_OK) return rc;
  db->no_replay = 1;
  int64_t n = max_n;
  int limited = ql->concurrency > 0 || ql->worker_concurrency > 0 || ql->limit > 0;
  if (limited)
    rc = lode__pg_run(db, -1, "SELECT pg_advisory_xact_lock(hashtext('lode.queue.' || $1))", &q1,
                      "cannot lock the queue", err, errlen);
  int64_t now = lode_now_ms();
  if (rc == LODE_OK && ql->concurrency > 0) {
    int64_t running = count1(db,
                             "SELECT count(*) FROM workflows WHERE queue=$1 AND status='PENDING'",
                             &q1, err, errlen);
    if (running < 0) rc = LODE_EDB;
    else if (ql->concurrency - running < n) n = ql->concurrency - running;
  }
  if (rc == LODE_OK && ql->worker_concurrency > 0 && n > 0) {
    lode__pgq q2 = {0};
    lode__pgq_text(&q2, ql->name);
    lode__pgq_text(&q2, executor_id);
    int64_t mine = count1(db,
                          "SELECT count(*) FROM workflows WHERE queue=$1 AND status='PENDING'"
                          " AND executor_id=$2",
                          &q2, err, errlen);
    if (mine < 0) rc = LODE_EDB;
    else if (ql->worker_concurrency - mine < n) n = ql->worker_concurrency - mine;
  }
  if (rc == LODE_OK && ql->limit > 0 && n > 0) {
    lode__pgq q3 = {0};
    lode__pgq_text(&q3, ql->name);
    lode__pgq_i64(&q3, now - (int64_t)(ql->period_s * 1000));
    /* every start counts, finished or not: the window is about starts */
    int64_t started = count1(db,
                             "SELECT count(*) FROM workflows WHERE queue=$1 AND started_at>$2",
                             &q3, err, errlen);
    if (started < 0) rc = LODE_EDB;
    else if (ql->limit - started < n) n = ql->limit - started;
  }
  char **out = NULL;
  int got = 0;
  /* the start time is taken after the counts: an outcome they saw was
   * stamped before it committed, so the recorded starts and ends of one
   * queue never overlap beyond its limits */
  now = lode_now_ms();
  if (rc == LODE_OK && n > 0) {
    lode__pgq q = {0};
    lode__pgq_text(&q, ql->name);
    lode__pgq_i64(&q, n);
    lode__pgq_text(&q, executor_id);
    lode__pgq_i64(&q, now);
    PGresult *r = lode__pg_exec(
        db, ql->priority ? LODE__PG_QUEUE_PICK_PRIO : LODE__PG_QUEUE_PICK,
        ql->priority
            ? "UPDATE workflows SET status='PENDING', executor_id=$3, started_at=$4,"
              " updated_at=$4 WHERE id IN (SELECT id FROM workflows WHERE queue=$1 AND"
              " status='ENQUEUED' ORDER BY priority<>0, priority, created_at, seq LIMIT $2"
              " FOR UPDATE SKIP LOCKED) RETURNING id"
            : "UPDATE workflows SET status='PENDING', executor_id=$3, started_at=$4,"
              " updated_at=$4 WHERE id IN (SELECT id FROM workflows WHERE queue=$1 AND"
              " status='ENQUEUED' ORDER BY created_at, seq LIMIT $2"
              " FOR UPDATE SKIP LOCKED) RETURNING id",
        &q, "cannot claim", err, errlen, &rc);
    if (r) {
      int nt = PQntuples(r);
      out = nt ? calloc((size_t)nt, sizeof *out) : NULL;
      for (int i = 0; i < nt && out; i++) out[got++] = lode__pg_text(r, i, 0);
      if (nt && !out) rc = LODE_ENOMEM;
      PQclear(r);
    }
  }
  if (rc == LODE_OK) rc = lode__pg_commit(db, err, errlen);
  db->no_replay = 0;
  if (rc != LODE_OK) {
    lode__pg_rollback(db);
    /* a commit whose answer was lost may have happened: what it claimed
     * goes back to the queue (nothing was started), to be claimed again */
    char e2[256];
    for (int i = 0; i < got; i++) {
      lode__pg_release(db, executor_id, out[i], e2, sizeof e2);
      free(out[i]);
    }
    free(out);
    return rc;
  }
  /* nothing claimable (all taken, or limits full): wait for a wake; a rate
   * limit frees itself with time, so such a queue is asked again at once */
  idle_mark(db, h, got == 0 && ql->limit <= 0, wakes_before);
  *ids = out;
  *nids = got;
  return LODE_OK;
}

int lode__pg_release(lode_sysdb *db, const char *executor_id, const char *id, char *err,
                     size_t errlen) {
  lode__pgq q = {0};
  lode__pgq_text(&q, executor_id);
  if (id) lode__pgq_text(&q, id);
  int rc = lode__pg_run(
      db, -1,
      id ? "WITH up AS (UPDATE workflows SET status='ENQUEUED', executor_id=NULL, started_at=NULL"
           " WHERE executor_id=$1 AND status='PENDING' AND queue IS NOT NULL AND id=$2"
           " RETURNING 1) SELECT count(*) FROM (SELECT pg_notify('lode_wake','') FROM up) n"
         : "WITH up AS (UPDATE workflows SET status='ENQUEUED', executor_id=NULL, started_at=NULL"
           " WHERE executor_id=$1 AND status='PENDING' AND queue IS NOT NULL"
           " RETURNING 1) SELECT count(*) FROM (SELECT pg_notify('lode_wake','') FROM up) n",
      &q, "cannot release workflows", err, errlen);
  if (rc == LODE_OK) lode__pg_wrote(db);
  return rc;
}

int lode__pg_requeue_dead(lode_sysdb *db, char *err, size_t errlen) {
  int rc;
  PGresult *r = lode__pg_exec(db, -1,
                              "SELECT DISTINCT executor_id FROM workflows WHERE status='PENDING'"
                              " AND queue IS NOT NULL AND executor_id IS NOT NULL",
                              NULL, "cannot read queues", err, errlen, &rc);
  if (!r) return rc;
  for (int i = 0; i < PQntuples(r) && rc == LODE_OK; i++) {
    const char *e = PQgetvalue(r, i, 0);
    if (!lode__pg_executor_alive(db, e)) rc = lode__pg_release(db, e, NULL, err, errlen);
  }
  PQclear(r);
  return rc;
}

int lode__pg_wf_fork(lode_sysdb *db, const char *src, const char *new_id, int64_t step,
                     const char *trace_id, const char *span_id, char *err, size_t errlen) {
  int rc = lode__pg_begin(db, err, errlen);
  if (rc != LODE_OK) return rc;
  lode__pgq q = {0};
  lode__pgq_text(&q, src);
  lode__pgq_text(&q, new_id);
  lode__pgq_text(&q, trace_id);
  lode__pgq_text(&q, span_id);
  lode__pgq_i64(&q, lode_now_ms());
  PGresult *r = lode__pg_exec(
      db, -1,
      "INSERT INTO workflows(id,name,status,input,pipeline,version,recovery_attempts,"
      "max_recovery_attempts,trace_id,span_id,created_at,updated_at,started_at,traced,"
      "trace_extra) SELECT $2,name,'PENDING',input,pipeline,version,0,max_recovery_attempts,"
      "$3,$4,$5::bigint,$5::bigint,$5::bigint,traced,trace_extra FROM workflows WHERE id=$1",
      &q, "cannot fork (does the id exist, is the new id free?)", err, errlen, &rc);
  if (r && atoi(PQcmdTuples(r)) != 1) {
    snprintf(err, errlen, "%s: cannot fork: no workflow '%s'", db->shown, src);
    rc = LODE_EDB;
  }
  PQclear(r);
  if (rc == LODE_OK) {
    lode__pgq q2 = {0};
    lode__pgq_text(&q2, src);
    lode__pgq_text(&q2, new_id);
    lode__pgq_i64(&q2, step);
    rc = lode__pg_run(db, -1,
                      "INSERT INTO steps(workflow_id,step_no,name,status,output,error,attempts,"
                      "child_id,span_id,started_at,ended_at) SELECT $2,step_no,name,status,"
                      "output,error,attempts,child_id,span_id,started_at,ended_at FROM steps "
                      "WHERE workflow_id=$1 AND step_no<$3",
                      &q2, "cannot copy steps", err, errlen);
  }
  if (rc == LODE_OK) rc = lode__pg_commit(db, err, errlen);
  if (rc != LODE_OK) lode__pg_rollback(db);
  return rc;
}

int lode__pg_cancel_tree(lode_sysdb *db, const char *id, int *n, char *err, size_t errlen) {
  lode__pgq q = {0};
  lode__pgq_text(&q, id);
  lode__pgq_i64(&q, lode_now_ms());
  int rc;
  PGresult *r = lode__pg_exec(
      db, -1,
      "WITH RECURSIVE tree(id) AS (SELECT $1::text UNION ALL SELECT w.id FROM workflows w JOIN"
      " tree t ON w.parent_id=t.id),"
      " up AS (UPDATE workflows SET status='CANCELLED', updated_at=$2 WHERE id IN"
      " (SELECT id FROM tree) AND status IN ('PENDING','ENQUEUED') RETURNING id)"
      " SELECT (SELECT count(*) FROM up),"
      " (SELECT count(*) FROM (SELECT pg_notify('lode_status', id) FROM up) a),"
      " (SELECT count(*) FROM (SELECT pg_notify('lode_wake', '') FROM up LIMIT 1) b)",
      &q, "cannot cancel", err, errlen, &rc);
  if (!r) return rc;
  *n = (int)lode__pg_i64(r, 0, 0);
  PQclear(r);
  lode__pg_wrote(db);
  return LODE_OK;
}

int lode__pg_queue_report(lode_sysdb *db, lode_buf *out, int json, char *err, size_t errlen) {
  int rc;
  PGresult *s = lode__pg_exec(db, -1,
                              "SELECT queue, status, id, name, priority FROM workflows WHERE queue"
                              " IS NOT NULL AND status IN ('ENQUEUED','PENDING') ORDER BY queue,"
                              " status DESC, priority, created_at",
                              NULL, "cannot read queues", err, errlen, &rc);
  if (!s) return rc;
  lode__queue_report_head(out, json);
  for (int i = 0; i < PQntuples(s); i++) {
    const char *q = PQgetvalue(s, i, 0), *st = PQgetvalue(s, i, 1), *id = PQgetvalue(s, i, 2),
               *name = PQgetvalue(s, i, 3);
    int prio = atoi(PQgetvalue(s, i, 4));
    lode__queue_report_row(out, json, i > 0, q, st, id, name, prio);
  }
  PQclear(s);
  if (json) lode_buf_puts(out, "]\n");
  return LODE_OK;
}

int lode__pg_progress_put(lode_sysdb *db, const char *wf_id, const char *json, char *err,
                          size_t errlen) {
  lode__pgq q = {0};
  lode__pgq_text(&q, wf_id);
  lode__pgq_text(&q, json);
  lode__pgq_i64(&q, lode_now_ms());
  int rc = lode__pg_run(db, -1,
                        "INSERT INTO workflow_progress(workflow_id,progress,updated_at)"
                        " VALUES($1,$2,$3) ON CONFLICT(workflow_id) DO UPDATE SET"
                        " progress=excluded.progress, updated_at=excluded.updated_at",
                        &q, "cannot record progress", err, errlen);
  if (rc == LODE_OK) lode__pg_wrote(db);
  return rc;
}

int lode__pg_progress_get(lode_sysdb *db, const char *wf_id, char **json, int64_t *updated_at,
                          char *err, size_t errlen) {
  *json = NULL;
  lode__pgq q = {0};
  lode__pgq_text(&q, wf_id);
  int rc;
  PGresult *s = lode__pg_exec(db, -1,
                              "SELECT progress, updated_at FROM workflow_progress WHERE"
                              " workflow_id=$1",
                              &q, "cannot read progress", err, errlen, &rc);
  if (!s) return rc;
  rc = LODE_ENOTFOUND;
  if (PQntuples(s) == 1) {
    *json = lode__pg_text(s, 0, 0);
    if (updated_at) *updated_at = lode__pg_i64(s, 0, 1);
    rc = *json ? LODE_OK : LODE_ENOMEM;
  }
  PQclear(s);
  return rc;
}
