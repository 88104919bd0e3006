/* workflows.c - workflows, steps and executors on PostgreSQL (state/sysdb.h,
 * docs/postgres.md). Checkpoints and outcomes are fenced: on a connection
 * whose executor is registered, they are recorded only while the workflow
 * is still that executor's (another host may have taken it over after this
 * one's lease ran out). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"
#include "base/log.h"
#include "base/util.h"
#include "state/postgres/pg_int.h"

#define WF_COLS                                                                          \
  "id,name,status,parent_id,parent_step,input,output,error,pipeline,version,"           \
  "executor_id,recovery_attempts,max_recovery_attempts,trace_id,span_id,parent_span_id," \
  "queue,created_at,updated_at,started_at,ended_at,deadline_ms,traced,trace_extra"

/* The workflow is another executor's now: said here too, since a worker
 * does not print a failed child's error (the process must be seen to have
 * stopped it). */
static int fenced_err(lode_sysdb *db, const char *id, char *err, size_t errlen) {
  lode_warn("workflow '%s' is no longer this process's (its lease ran out and another "
            "process took it over); this process stops it and records nothing more of it",
            id);
  snprintf(err, errlen,
           "workflow '%s' is no longer this process's (executor %s): its lease ran out and "
           "another process took it over (docs/postgres.md, \"Leases and fencing\"); nothing "
           "more of it is recorded here",
           id, db->me ? db->me : "?");
  return LODE_EBUSY;
}

/* ---- workflows ----------------------------------------------------------- */

static int insert_row(lode_sysdb *db, const lode_wf_row *r, int priority, const char *dedup_id,
                      int *existed, char *err, size_t errlen) {
  int64_t now = lode_now_ms();
  int queued = r->status == LODE_WF_ENQUEUED;
  lode__pgq q = {0};
  lode__pgq_text(&q, r->id);
  lode__pgq_text(&q, r->name);
  lode__pgq_text(&q, lode_wf_status_name(r->status));
  lode__pgq_text(&q, r->parent_id);
  if (r->parent_id) lode__pgq_i64(&q, r->parent_step);
  else lode__pgq_null(&q);
  lode__pgq_blob(&q, r->input, r->input_len);
  lode__pgq_text(&q, r->pipeline);
  lode__pgq_text(&q, r->version);
  lode__pgq_text(&q, queued ? NULL : r->executor_id);
  lode__pgq_i64(&q, r->recovery_attempts);
  lode__pgq_i64(&q, r->max_recovery_attempts);
  lode__pgq_text(&q, r->trace_id);
  lode__pgq_text(&q, r->span_id);
  lode__pgq_text(&q, r->parent_span_id);
  lode__pgq_text(&q, r->queue);
  lode__pgq_i64(&q, r->created_at ? r->created_at : now);
  lode__pgq_i64(&q, now);
  if (queued) lode__pgq_null(&q);
  else lode__pgq_i64(&q, r->started_at ? r->started_at : now);
  if (r->deadline_ms) lode__pgq_i64(&q, r->deadline_ms);
  else lode__pgq_null(&q);
  lode__pgq_i64(&q, priority);
  lode__pgq_text(&q, dedup_id);
  if (r->traced) lode__pgq_i64(&q, 1);
  else lode__pgq_null(&q);
  lode__pgq_text(&q, r->trace_extra);
  int rc;
  /* an enqueue wakes idle workers (they LISTEN lode_wake) when it commits */
  PGresult *res = lode__pg_exec(
      db, LODE__PG_WF_INSERT,
      "WITH ins AS (INSERT INTO workflows(id,name,status,parent_id,parent_step,input,pipeline,"
      "version,executor_id,recovery_attempts,max_recovery_attempts,trace_id,span_id,"
      "parent_span_id,queue,created_at,updated_at,started_at,deadline_ms,priority,dedup_id,"
      "traced,trace_extra) VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,"
      "$18,$19,$20,$21,$22,$23) ON CONFLICT(id) DO NOTHING RETURNING status)"
      " SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM (SELECT pg_notify('lode_wake',"
      " '') FROM ins WHERE status='ENQUEUED') n)",
      &q, "cannot record workflow", err, errlen, &rc);
  if (!res) {
    if (rc == LODE_ECONFLICT) {
      snprintf(err, errlen,
               "cannot enqueue workflow '%s' on queue '%s': dedup id '%s' is already used by a "
               "workflow that is queued or running",
               r->name, r->queue ? r->queue : "?", dedup_id ? dedup_id : "?");
    }
    return rc;
  }
  *existed = lode__pg_i64(res, 0, 0) == 0;
  PQclear(res);
  lode__pg_wrote(db);
  return LODE_OK;
}

int lode__pg_wf_insert(lode_sysdb *db, const lode_wf_row *r, int *existed, char *err,
                       size_t errlen) {
  return insert_row(db, r, 0, NULL, existed, err, errlen);
}

int lode__pg_wf_enqueue(lode_sysdb *db, const lode_wf_row *r, int priority, const char *dedup_id,
                        int *existed, char *err, size_t errlen) {
  lode_wf_row q = *r;
  q.status = LODE_WF_ENQUEUED;
  return insert_row(db, &q, priority, dedup_id, existed, err, errlen);
}

static void fill_row(const PGresult *s, int i, lode_wf_row *r) {
  r->id = lode__pg_text(s, i, 0);
  r->name = lode__pg_text(s, i, 1);
  r->status = lode_wf_status_parse(PQgetvalue(s, i, 2));
  r->parent_id = lode__pg_text(s, i, 3);
  r->parent_step = lode__pg_i64(s, i, 4);
  r->input = lode__pg_blob(s, i, 5, &r->input_len);
  r->output = lode__pg_blob(s, i, 6, &r->output_len);
  r->error = lode__pg_text(s, i, 7);
  r->pipeline = lode__pg_text(s, i, 8);
  r->version = lode__pg_text(s, i, 9);
  r->executor_id = lode__pg_text(s, i, 10);
  r->recovery_attempts = (int)lode__pg_i64(s, i, 11);
  r->max_recovery_attempts = (int)lode__pg_i64(s, i, 12);
  r->trace_id = lode__pg_text(s, i, 13);
  r->span_id = lode__pg_text(s, i, 14);
  r->parent_span_id = lode__pg_text(s, i, 15);
  r->queue = lode__pg_text(s, i, 16);
  r->created_at = lode__pg_i64(s, i, 17);
  r->updated_at = lode__pg_i64(s, i, 18);
  r->started_at = lode__pg_i64(s, i, 19);
  r->ended_at = lode__pg_i64(s, i, 20);
  r->deadline_ms = lode__pg_i64(s, i, 21);
  r->traced = (int)lode__pg_i64(s, i, 22);
  r->trace_extra = lode__pg_text(s, i, 23);
}

int lode__pg_wf_get(lode_sysdb *db, const char *id, lode_wf_row *r, char *err, size_t errlen) {
  memset(r, 0, sizeof *r);
  lode__pgq q = {0};
  lode__pgq_text(&q, id);
  int rc;
  PGresult *s = lode__pg_exec(db, LODE__PG_WF_GET, "SELECT " WF_COLS " FROM workflows WHERE id=$1",
                              &q, "cannot read workflow", err, errlen, &rc);
  if (!s) return rc;
  if (PQntuples(s) == 0) {
    PQclear(s);
    snprintf(err, errlen, "no workflow with id '%s' in %s", id, db->shown);
    return LODE_ENOTFOUND;
  }
  fill_row(s, 0, r);
  PQclear(s);
  return LODE_OK;
}

int lode__pg_wf_status(lode_sysdb *db, const char *id, int *status, char *err, size_t errlen) {
  lode__pgq q = {0};
  lode__pgq_text(&q, id);
  int rc;
  PGresult *s = lode__pg_exec(db, LODE__PG_WF_STATUS, "SELECT status FROM workflows WHERE id=$1",
                              &q, "cannot read workflow status", err, errlen, &rc);
  if (!s) return rc;
  if (PQntuples(s) == 0) {
    PQclear(s);
    snprintf(err, errlen, "no workflow with id '%s'", id);
    return LODE_ENOTFOUND;
  }
  *status = lode_wf_status_parse(PQgetvalue(s, 0, 0));
  PQclear(s);
  return LODE_OK;
}

int lode__pg_wf_finish(lode_sysdb *db, const char *id, int status, const uint8_t *out,
                       size_t out_len, const char *error, char *err, size_t errlen) {
  int64_t now = lode_now_ms();
  lode__pgq q = {0};
  lode__pgq_text(&q, lode_wf_status_name(status));
  lode__pgq_blob(&q, out, out_len);
  lode__pgq_text(&q, error);
  lode__pgq_i64(&q, now);
  lode__pgq_text(&q, id);
  lode__pgq_text(&q, db->me);
  int rc;
  /* a finished queued workflow frees a slot: idle workers are woken. The
   * second column tells a fenced outcome from a cancel that won. */
  PGresult *s = lode__pg_exec(
      db, LODE__PG_WF_FINISH,
      "WITH up AS (UPDATE workflows SET status=$1,output=$2,error=$3,updated_at=$4,ended_at=$4"
      " WHERE id=$5 AND status='PENDING' AND ($6::text IS NULL OR executor_id=$6)"
      " RETURNING queue)"
      " SELECT (SELECT count(*) FROM up),"
      " (SELECT count(*) FROM (SELECT pg_notify('lode_wake', '') FROM up WHERE queue IS NOT NULL)"
      " n),"
      " (SELECT status='PENDING' FROM workflows WHERE id=$5)",
      &q, "cannot record workflow outcome", err, errlen, &rc);
  if (!s) return rc;
  int changed = lode__pg_i64(s, 0, 0) > 0;
  /* the row as it was before the update: PENDING and unchanged means
   * another executor's */
  int still_pending = !strcmp(PQgetvalue(s, 0, 2), "t");
  PQclear(s);
  lode__pg_wrote(db);
  if (!changed && still_pending && db->me) return fenced_err(db, id, err, errlen);
  return LODE_OK;
}

int lode__pg_wf_set_status(lode_sysdb *db, const char *id, int status, unsigned from_mask,
                           int *changed, char *err, size_t errlen) {
  char sql[512];
  int n = snprintf(sql, sizeof sql,
                   "WITH up AS (UPDATE workflows SET status=$1, updated_at=$2 WHERE id=$3 AND "
                   "status IN (");
  int first = 1;
  for (int i = 0; i < LODE_WF_NSTATUS; i++)
    if (from_mask & (1u << i)) {
      n += snprintf(sql + n, sizeof sql - (size_t)n, "%s'%s'", first ? "" : ",",
                    lode_wf_status_name(i));
      first = 0;
    }
  if (first) n += snprintf(sql + n, sizeof sql - (size_t)n, "NULL");
  /* every process running it learns of the change at its next checkpoint */
  snprintf(sql + n, sizeof sql - (size_t)n,
           ") RETURNING 1) SELECT (SELECT count(*) FROM up),"
           " (SELECT count(*) FROM (SELECT pg_notify('lode_status', $3) FROM up) n)");
  lode__pgq q = {0};
  lode__pgq_text(&q, lode_wf_status_name(status));
  lode__pgq_i64(&q, lode_now_ms());
  lode__pgq_text(&q, id);
  int rc;
  PGresult *s = lode__pg_exec(db, -1, sql, &q, "cannot change workflow status", err, errlen, &rc);
  if (!s) return rc;
  if (changed) *changed = lode__pg_i64(s, 0, 0) > 0;
  PQclear(s);
  lode__pg_wrote(db);
  return LODE_OK;
}

int lode__pg_wf_claim(lode_sysdb *db, const char *id, const char *expect_executor,
                      const char *executor_id, int bump, int *claimed, char *err,
                      size_t errlen) {
  lode__pgq q = {0};
  lode__pgq_text(&q, executor_id);
  lode__pgq_i64(&q, bump ? 1 : 0);
  lode__pgq_i64(&q, lode_now_ms());
  lode__pgq_text(&q, id);
  lode__pgq_text(&q, expect_executor);
  int rc;
  PGresult *s = lode__pg_exec(
      db, LODE__PG_WF_CLAIM,
      "UPDATE workflows SET executor_id=$1,recovery_attempts=recovery_attempts+$2,"
      "updated_at=$3 WHERE id=$4 AND status='PENDING' AND executor_id IS NOT DISTINCT FROM $5",
      &q, "cannot claim workflow", err, errlen, &rc);
  if (!s) return rc;
  *claimed = atoi(PQcmdTuples(s)) > 0;
  PQclear(s);
  lode__pg_wrote(db);
  return LODE_OK;
}

int lode__pg_wf_reset_attempts(lode_sysdb *db, const char *id, char *err, size_t errlen) {
  lode__pgq q = {0};
  lode__pgq_text(&q, id);
  int rc = lode__pg_run(db, -1, "UPDATE workflows SET recovery_attempts=0 WHERE id=$1", &q,
                        "cannot reset attempts", err, errlen);
  if (rc == LODE_OK) lode__pg_wrote(db);
  return rc;
}

int lode__pg_wf_list(lode_sysdb *db, const lode_wf_filter *f,
                     int (*fn)(void *ud, const lode_wf_row *r), void *ud, char *err,
                     size_t errlen) {
  char sql[1024];
  lode__pgq q = {0};
  int n = snprintf(sql, sizeof sql, "SELECT id FROM workflows WHERE true");
  if (f->status >= 0)
    n += snprintf(sql + n, sizeof sql - (size_t)n, " AND status='%s'",
                  lode_wf_status_name(f->status));
  if (f->name) {
    lode__pgq_text(&q, f->name);
    n += snprintf(sql + n, sizeof sql - (size_t)n, " AND name=$%d", q.n);
  }
  if (f->pipeline) {
    lode__pgq_text(&q, f->pipeline);
    n += snprintf(sql + n, sizeof sql - (size_t)n, " AND pipeline=$%d", q.n);
  }
  if (f->roots_only) n += snprintf(sql + n, sizeof sql - (size_t)n, " AND parent_id IS NULL");
  if (f->since_ms) {
    lode__pgq_i64(&q, f->since_ms);
    n += snprintf(sql + n, sizeof sql - (size_t)n, " AND created_at>=$%d", q.n);
  }
  if (f->until_ms) {
    lode__pgq_i64(&q, f->until_ms);
    n += snprintf(sql + n, sizeof sql - (size_t)n, " AND created_at<=$%d", q.n);
  }
  n += snprintf(sql + n, sizeof sql - (size_t)n, " ORDER BY seq %s",
                f->oldest_first ? "ASC" : "DESC");
  if (f->limit > 0) snprintf(sql + n, sizeof sql - (size_t)n, " LIMIT %d", f->limit);
  int rc;
  PGresult *s = lode__pg_exec(db, -1, sql, &q, "cannot list workflows", err, errlen, &rc);
  if (!s) return rc;
  /* ids first: fn may write to the database */
  for (int i = 0; i < PQntuples(s); i++) {
    lode_wf_row r;
    if (lode__pg_wf_get(db, PQgetvalue(s, i, 0), &r, err, errlen) != LODE_OK) continue;
    int stop = fn(ud, &r);
    lode_wf_row_clear(&r);
    if (stop) break;
  }
  PQclear(s);
  return LODE_OK;
}

/* ---- steps --------------------------------------------------------------- */

int lode__pg_steps_load(lode_sysdb *db, const char *wf_id, lode_step_row **rows, size_t *n,
                        char *err, size_t errlen) {
  *rows = NULL;
  *n = 0;
  lode__pgq q = {0};
  lode__pgq_text(&q, wf_id);
  int rc;
  PGresult *s = lode__pg_exec(db, LODE__PG_STEPS_LOAD,
                              "SELECT step_no,name,status,output,error,attempts,child_id,span_id,"
                              "started_at,ended_at FROM steps WHERE workflow_id=$1 ORDER BY step_no",
                              &q, "cannot load steps", err, errlen, &rc);
  if (!s) return rc;
  int nt = PQntuples(s);
  if (nt > 0) {
    *rows = calloc((size_t)nt, sizeof **rows);
    if (!*rows) {
      PQclear(s);
      snprintf(err, errlen, "out of memory loading steps of %s", wf_id);
      return LODE_ENOMEM;
    }
  }
  for (int i = 0; i < nt; i++) {
    lode_step_row *r = &(*rows)[i];
    r->step_no = lode__pg_i64(s, i, 0);
    r->name = lode__pg_text(s, i, 1);
    r->status = lode_wf_status_parse(PQgetvalue(s, i, 2));
    r->output = lode__pg_blob(s, i, 3, &r->output_len);
    r->error = lode__pg_text(s, i, 4);
    r->attempts = (int)lode__pg_i64(s, i, 5);
    r->child_id = lode__pg_text(s, i, 6);
    r->span_id = lode__pg_text(s, i, 7);
    r->started_at = lode__pg_i64(s, i, 8);
    r->ended_at = lode__pg_i64(s, i, 9);
  }
  *n = (size_t)nt;
  PQclear(s);
  return LODE_OK;
}

int lode__pg_step_put(lode_sysdb *db, const char *wf_id, const lode_step_row *r, char *err,
                      size_t errlen) {
  lode__pgq q = {0};
  lode__pgq_text(&q, wf_id);
  lode__pgq_i64(&q, r->step_no);
  lode__pgq_text(&q, r->name);
  lode__pgq_text(&q, lode_wf_status_name(r->status));
  lode__pgq_blob(&q, r->output, r->output_len);
  lode__pgq_text(&q, r->error);
  lode__pgq_i64(&q, r->attempts);
  lode__pgq_text(&q, r->child_id);
  lode__pgq_text(&q, r->span_id);
  lode__pgq_i64(&q, r->started_at);
  lode__pgq_i64(&q, r->ended_at);
  lode__pgq_text(&q, r->span_input);
  if (r->span_input) lode__pgq_i64(&q, r->span_recovery);
  else lode__pgq_null(&q);
  lode__pgq_text(&q, db->me);
  int rc;
  /* fenced: written only while the workflow is this executor's */
  PGresult *s = lode__pg_exec(
      db, LODE__PG_STEP_PUT,
      "INSERT INTO steps(workflow_id,step_no,name,status,output,error,attempts,child_id,span_id,"
      "started_at,ended_at,span_input,span_recovery)"
      " SELECT $1,$2::bigint,$3,$4,$5::bytea,$6,$7::int,$8,$9,$10::bigint,$11::bigint,$12,"
      "$13::int"
      " WHERE $14::text IS NULL OR EXISTS(SELECT 1 FROM workflows WHERE id=$1 AND"
      " executor_id=$14)"
      " ON CONFLICT(workflow_id,step_no) DO UPDATE SET name=excluded.name,"
      "status=excluded.status,output=excluded.output,error=excluded.error,"
      "attempts=excluded.attempts,child_id=excluded.child_id,span_id=excluded.span_id,"
      "started_at=excluded.started_at,ended_at=excluded.ended_at,span_input=excluded.span_input,"
      "span_recovery=excluded.span_recovery",
      &q, "cannot checkpoint step", err, errlen, &rc);
  if (!s) return rc;
  int n = atoi(PQcmdTuples(s));
  PQclear(s);
  if (n == 0) return fenced_err(db, wf_id, err, errlen);
  lode__pg_wrote(db);
  return LODE_OK;
}

int lode__pg_trace_reopen(lode_sysdb *db, const char *id, char *err, size_t errlen) {
  lode__pgq q = {0};
  lode__pgq_text(&q, id);
  int rc = lode__pg_run(db, -1,
                        "UPDATE workflows SET traced=1 WHERE id=$1 AND traced IS DISTINCT FROM 1",
                        &q, "cannot reopen the workflow's trace", err, errlen);
  if (rc == LODE_OK)
    rc = lode__pg_run(db, -1,
                      "INSERT INTO trace_open(workflow_id, steps_done)"
                      " SELECT $1, coalesce(max(step_no), 0) FROM steps WHERE workflow_id=$1"
                      " ON CONFLICT DO NOTHING",
                      &q, "cannot reopen the workflow's trace", err, errlen);
  if (rc == LODE_OK) lode__pg_wrote(db);
  return rc;
}

int lode__pg_wf_set_trace_extra(lode_sysdb *db, const char *id, const char *extra, char *err,
                                size_t errlen) {
  lode__pgq q = {0};
  lode__pgq_text(&q, extra);
  lode__pgq_text(&q, id);
  int rc = lode__pg_run(db, -1, "UPDATE workflows SET trace_extra=$1 WHERE id=$2", &q,
                        "cannot record trace attributes", err, errlen);
  if (rc == LODE_OK) lode__pg_wrote(db);
  return rc;
}

/* ---- executors ----------------------------------------------------------- */

/* An executor is its pid, host and process start (lode_proc_start): with
 * the three it names one process. */
int lode__pg_executor_register(lode_sysdb *db, const char *id, char *err, size_t errlen) {
  char host[256], start[64] = "";
  lode_hostname(host, sizeof host);
  lode_proc_start((long)getpid(), start, sizeof start);
  lode__pgq q = {0};
  lode__pgq_text(&q, id);
  lode__pgq_i64(&q, (int64_t)getpid());
  lode__pgq_text(&q, host);
  lode__pgq_text(&q, start);
  lode__pgq_i64(&q, lode_now_ms());
  lode__pgq_i64(&q, lode__pg_lease_ms());
  int rc = lode__pg_run(db, -1,
                        "INSERT INTO executors VALUES($1,$2,$3,$4,$5,now_ms()+$6,$6)"
                        " ON CONFLICT(id) DO UPDATE SET lease_until=excluded.lease_until,"
                        " lease_ms=excluded.lease_ms",
                        &q, "cannot register executor", err, errlen);
  if (rc != LODE_OK) return rc;
  free(db->me);
  db->me = strdup(id);
  return lode__pg_lease_start(db, id, err, errlen);
}

void lode__pg_executor_unregister(lode_sysdb *db, const char *id) {
  char e[256];
  lode__pg_lease_stop(id);
  lode__pgq q = {0};
  lode__pgq_text(&q, id);
  lode__pg_run(db, -1, "DELETE FROM executors WHERE id=$1", &q, "unregister", e, sizeof e);
}

/* Alive: its lease has not run out (server clock), and, on this host, its
 * process is still the one that registered (a killed process is seen dead
 * at once rather than after its lease). */
int lode__pg_executor_alive(lode_sysdb *db, const char *id) {
  if (!id) return 0;
  lode__pgq q = {0};
  lode__pgq_text(&q, id);
  char e[256];
  int rc;
  PGresult *s = lode__pg_exec(db, -1,
                              "SELECT pid, host, proc_start, lease_until > now_ms()"
                              " FROM executors WHERE id=$1",
                              &q, "executor", e, sizeof e, &rc);
  if (!s) return 1; /* cannot tell: do not take its work */
  int alive = 0;
  if (PQntuples(s) == 1) {
    alive = !strcmp(PQgetvalue(s, 0, 3), "t");
    char host[256], start[64];
    lode_hostname(host, sizeof host);
    if (alive && !strcmp(PQgetvalue(s, 0, 1), host)) {
      long pid = (long)lode__pg_i64(s, 0, 0);
      alive = lode_proc_start(pid, start, sizeof start) == 0 && !strcmp(start, PQgetvalue(s, 0, 2));
    }
  }
  PQclear(s);
  return alive;
}
