/* trace_rows.c - trace_records (the local trace store and the exporter's
 * outbox) and the trace renderer's rows on PostgreSQL (state/trace_store.h,
 * state/render_rows.h).
 *
 * The outbox: exporters on several hosts claim due rows (FOR UPDATE SKIP
 * LOCKED, then their next attempt moved 30 s ahead until they are marked),
 * so each record is normally sent once.
 *
 * The renderer's cursor: PostgreSQL's sequences do not grow in commit order
 * (a workflow row numbered 5 may commit after one numbered 6), so the rows
 * are numbered for the renderer by the renderer itself (render_seq), under
 * the lock on trace_cursor's row that each pass takes first: numbers are
 * then handed out in the order passes see rows, and no row is skipped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/util.h"
#include "state/postgres/pg_int.h"

/* ---- records ------------------------------------------------------------------ */

int lode__pg_trace_put(lode_sysdb *db, const lode_trace_row *r, char *err, size_t errlen) {
  lode__pgq q = {0};
  lode__pgq_text(&q, r->id);
  lode__pgq_text(&q, r->kind);
  lode__pgq_text(&q, r->trace_id);
  lode__pgq_text(&q, r->parent_id);
  lode__pgq_text(&q, r->name);
  lode__pgq_text(&q, r->type);
  lode__pgq_i64(&q, r->start_ms);
  lode__pgq_i64(&q, r->end_ms);
  lode__pgq_text(&q, r->error);
  lode__pgq_text(&q, r->body);
  lode__pgq_text(&q, r->state ? r->state : LODE_TRACE_PENDING);
  lode__pgq_i64(&q, lode_now_ms());
  int rc = lode__pg_run(
      db, LODE__PG_TRACE_UPSERT,
      "INSERT INTO trace_records AS t(id, kind, trace_id, parent_id, name, type, start_ms,"
      " end_ms, error, body, rev, state, attempts, last_error, next_attempt_at, updated_at,"
      " otlp_state, otlp_attempts, otlp_error, otlp_next_at)"
      " VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1, $11, 0, NULL, 0, $12,"
      " CASE WHEN $2::text='span' AND $8::bigint>0 THEN $11::text END, 0, NULL, 0)"
      " ON CONFLICT(id) DO UPDATE SET kind=excluded.kind, trace_id=excluded.trace_id,"
      " parent_id=excluded.parent_id, name=excluded.name, type=excluded.type,"
      " start_ms=excluded.start_ms, end_ms=excluded.end_ms, error=excluded.error,"
      " body=excluded.body, rev=t.rev+1, state=excluded.state, attempts=0, last_error=NULL,"
      " next_attempt_at=0, updated_at=GREATEST(excluded.updated_at, t.updated_at + 1),"
      " otlp_state=excluded.otlp_state, otlp_attempts=0, otlp_error=NULL, otlp_next_at=0",
      &q, "storing a record in the trace store", err, errlen);
  if (rc == LODE_OK) lode__pg_wrote(db);
  return rc;
}

/* ---- the outbox ---------------------------------------------------------------- */

/* The outbox's columns for each destination (state/trace_store.h): Opik's
 * state, attempts, last error and next attempt, or OTLP's. The statements
 * below are written with Opik's names and given OTLP's when the connection
 * serves OTLP. */
static const char *const cols[2][4] = {
    [LODE_OUTBOX_OPIK] = {"state", "attempts", "last_error", "next_attempt_at"},
    [LODE_OUTBOX_OTLP] = {"otlp_state", "otlp_attempts", "otlp_error", "otlp_next_at"},
};

void lode__pg_outbox_use(lode_sysdb *db, enum lode_outbox_dest d) {
  db->outbox_dest = d == LODE_OUTBOX_OTLP ? LODE_OUTBOX_OTLP : LODE_OUTBOX_OPIK;
}

/* sql with each @0..@3 replaced by the destination's column name; malloc'd
 * (NULL when out of memory). */
static char *for_dest(lode_sysdb *db, const char *sql) {
  const char *const *c = cols[db->outbox_dest];
  size_t n = strlen(sql) * 2 + 64;
  char *out = malloc(n), *o = out;
  if (!out) return NULL;
  for (const char *p = sql; *p; p++) {
    if (p[0] == '@' && p[1] >= '0' && p[1] <= '3') {
      size_t k = strlen(c[p[1] - '0']);
      memcpy(o, c[p[1] - '0'], k);
      o += k;
      p++;
    } else {
      *o++ = *p;
    }
  }
  *o = 0;
  return out;
}

static int exec0(lode_sysdb *db, const char *tmpl, const char *what, char *err, size_t errlen) {
  char *sql = for_dest(db, tmpl);
  if (!sql) {
    snprintf(err, errlen, "%s: out of memory", what);
    return LODE_ENOMEM;
  }
  int rc = lode__pg_run(db, -1, sql, NULL, what, err, errlen);
  free(sql);
  if (rc == LODE_OK) lode__pg_wrote(db);
  return rc;
}

int lode__pg_outbox_start(lode_sysdb *db, char *err, size_t errlen) {
  return exec0(db,
               "UPDATE trace_records SET @3=0"
               " WHERE @0='pending' AND @3>0;"
               "UPDATE trace_records SET @0='failed',"
               " @2='the stored record is not a JSON object; it cannot be sent'"
               " WHERE @0='pending' AND (body IS NULL OR substr(body,1,1)<>'{')",
               "preparing the trace outbox", err, errlen);
}

int lode__pg_outbox_undelay(lode_sysdb *db, char *err, size_t errlen) {
  return exec0(db,
               "UPDATE trace_records SET @3=0 WHERE @0='pending'"
               " AND @3>0",
               "making delayed trace records due", err, errlen);
}

int lode__pg_outbox_retry_failed(lode_sysdb *db, char *err, size_t errlen) {
  return exec0(db,
               "UPDATE trace_records SET @0='pending', @3=0 WHERE @0='failed'",
               "requeueing failed trace records", err, errlen);
}

int lode__pg_outbox_keep_local(lode_sysdb *db, int64_t before_ms, int *n, char *err,
                               size_t errlen) {
  lode__pgq q = {0};
  lode__pgq_i64(&q, before_ms);
  int rc;
  PGresult *r = lode__pg_exec(db, -1,
                              db->outbox_dest == LODE_OUTBOX_OTLP
                                  ? "UPDATE trace_records SET otlp_state='disabled'"
                                    " WHERE otlp_state='pending' AND COALESCE(NULLIF(start_ms, 0), updated_at)<$1"
                                  : "UPDATE trace_records SET state='disabled'"
                                    " WHERE state='pending' AND COALESCE(NULLIF(start_ms, 0), updated_at)<$1",
                              &q, "keeping older trace records local", err, errlen, &rc);
  if (!r) return rc;
  *n = atoi(PQcmdTuples(r));
  PQclear(r);
  lode__pg_wrote(db);
  return LODE_OK;
}

/* A loaded row is claimed for this long (its next_attempt_at moves past
 * it): other exporters skip it meanwhile, and it is due again if this one
 * dies before marking it. */
#define OUTBOX_CLAIM_MS 30000

int lode__pg_outbox_load(lode_sysdb *db, const char *kind, int64_t now_ms, int limit,
                         lode_outbox_fn fn, void *ud, char *err, size_t errlen) {
  lode__pgq q = {0};
  lode__pgq_text(&q, kind);
  lode__pgq_i64(&q, now_ms);
  lode__pgq_i64(&q, limit);
  lode__pgq_i64(&q, now_ms + OUTBOX_CLAIM_MS);
  int rc;
  /* rows another exporter is claiming are skipped, rows it claimed are not
   * due: each record goes to one exporter */
  char *sql = for_dest(db, "WITH c AS (UPDATE trace_records SET @3=$4 WHERE id IN"
                           " (SELECT id FROM trace_records WHERE @0='pending' AND kind=$1"
                           " AND @3<=$2 ORDER BY updated_at LIMIT $3"
                           " FOR UPDATE SKIP LOCKED) RETURNING id, rev, updated_at, body)"
                           " SELECT * FROM c ORDER BY updated_at");
  if (!sql) {
    snprintf(err, errlen, "reading the outbox: out of memory");
    return LODE_ENOMEM;
  }
  PGresult *r = lode__pg_exec(db, -1, sql, &q, "reading the outbox", err, errlen, &rc);
  free(sql);
  if (!r) return rc;
  lode__pg_wrote(db);
  int i, nt = PQntuples(r);
  for (i = 0; i < nt; i++)
    if (fn(ud, PQgetvalue(r, i, 0), lode__pg_i64(r, i, 1), lode__pg_i64(r, i, 2),
           PQgetvalue(r, i, 3), (size_t)PQgetlength(r, i, 3)))
      break;
  /* the rows after an early stop were not taken: due again at once */
  for (int k = i + 1; k < nt && rc == LODE_OK; k++) {
    lode__pgq u = {0};
    lode__pgq_text(&u, PQgetvalue(r, k, 0));
    lode__pgq_text(&u, PQgetvalue(r, k, 1));
    rc = lode__pg_run(db, -1,
                      db->outbox_dest == LODE_OUTBOX_OTLP
                          ? "UPDATE trace_records SET otlp_next_at=0 WHERE id=$1 AND rev=$2"
                          : "UPDATE trace_records SET next_attempt_at=0 WHERE id=$1 AND rev=$2",
                      &u, "reading the outbox", err, errlen);
  }
  PQclear(r);
  return rc;
}

int lode__pg_outbox_mark(lode_sysdb *db, enum lode_outbox_mark how, const lode_outbox_ref *refs,
                         int n, const char *text, int64_t when, int *changed, char *err,
                         size_t errlen) {
  static const char *const tmpl[] = {
      [LODE_OUTBOX_SENT] = "UPDATE trace_records SET @0='sent', @1=@1+1,"
                           " @2=NULL WHERE id=$1 AND rev=$2 AND @0='pending'",
      [LODE_OUTBOX_FAILED] = "UPDATE trace_records SET @0='failed', @1=@1+1,"
                             " @2=$3 WHERE id=$1 AND rev=$2 AND @0='pending'",
      [LODE_OUTBOX_RETRY] = "UPDATE trace_records SET @1=@1+1, @2=$3,"
                            " @3=$4 WHERE id=$1 AND rev=$2 AND @0='pending'",
  };
  char *sqlbuf = for_dest(db, tmpl[how]);
  if (!sqlbuf) {
    snprintf(err, errlen, "updating the outbox: out of memory");
    return LODE_ENOMEM;
  }
  const char *sql[3];
  sql[how] = sqlbuf;
  int own = !db->in_tx;
  int rc = own ? lode__pg_begin(db, err, errlen) : LODE_OK;
  for (int i = 0; i < n && rc == LODE_OK; i++) {
    lode__pgq q = {0};
    lode__pgq_text(&q, refs[i].id);
    lode__pgq_i64(&q, refs[i].rev);
    if (how != LODE_OUTBOX_SENT) lode__pgq_text(&q, text);
    if (how == LODE_OUTBOX_RETRY) lode__pgq_i64(&q, when);
    PGresult *r = lode__pg_exec(db, -1, sql[how], &q, "updating the outbox", err, errlen, &rc);
    if (r && changed) *changed += atoi(PQcmdTuples(r));
    PQclear(r);
  }
  if (own) {
    if (rc == LODE_OK) rc = lode__pg_commit(db, err, errlen);
    if (rc != LODE_OK) lode__pg_rollback(db);
  }
  free(sqlbuf);
  return rc;
}

int lode__pg_outbox_pending(lode_sysdb *db) {
  char e[256];
  int rc;
  PGresult *r = lode__pg_exec(db, -1,
                              db->outbox_dest == LODE_OUTBOX_OTLP
                                  ? "SELECT count(*) FROM trace_records WHERE otlp_state='pending'"
                                  : "SELECT count(*) FROM trace_records WHERE state='pending'",
                              NULL, "outbox", e, sizeof e, &rc);
  if (!r) return -1;
  int n = (int)lode__pg_i64(r, 0, 0);
  PQclear(r);
  return n;
}

int lode__pg_outbox_failed(lode_sysdb *db, void (*fn)(void *ud, const lode_outbox_failure *f),
                           void *ud, char *err, size_t errlen) {
  int rc;
  PGresult *r = lode__pg_exec(db, -1,
                              db->outbox_dest == LODE_OUTBOX_OTLP
                                  ? "SELECT id, kind, trace_id, name, otlp_attempts, otlp_error"
                                    " FROM trace_records WHERE otlp_state='failed'"
                                    " ORDER BY updated_at"
                                  : "SELECT id, kind, trace_id, name, attempts, last_error FROM"
                                    " trace_records WHERE state='failed' ORDER BY updated_at",
                              NULL, "reading failed trace records", err, errlen, &rc);
  if (!r) return rc;
  for (int i = 0; i < PQntuples(r); i++) {
    const char *t[6];
    for (int k = 0; k < 6; k++) t[k] = PQgetisnull(r, i, k) ? NULL : PQgetvalue(r, i, k);
    lode_outbox_failure f = {t[0], t[1], t[2], t[3], t[5], atoi(PQgetvalue(r, i, 4))};
    fn(ud, &f);
  }
  PQclear(r);
  return LODE_OK;
}

/* ---- reading a trace ------------------------------------------------------------- */

int lode__pg_trace_spans(lode_sysdb *db, const char *trace_id,
                         int (*fn)(void *ud, const lode_trace_span_row *r), void *ud, char *err,
                         size_t errlen) {
  lode__pgq q = {0};
  lode__pgq_text(&q, trace_id);
  int rc;
  PGresult *r = lode__pg_exec(db, -1,
                              "SELECT id, parent_id, name, type, error, state, start_ms, end_ms,"
                              " body FROM trace_records WHERE trace_id=$1 AND kind='span'"
                              " ORDER BY start_ms, id COLLATE \"C\"",
                              &q, "reading a trace", err, errlen, &rc);
  if (!r) return rc;
  for (int i = 0; i < PQntuples(r) && rc == LODE_OK; i++) {
    const char *t[6];
    for (int k = 0; k < 6; k++) t[k] = PQgetisnull(r, i, k) ? NULL : PQgetvalue(r, i, k);
    lode_trace_span_row row = {t[0], t[1], t[2], t[3], t[4], t[5], lode__pg_i64(r, i, 6),
                               lode__pg_i64(r, i, 7),
                               PQgetisnull(r, i, 8) ? NULL : PQgetvalue(r, i, 8)};
    if (fn(ud, &row) != 0) {
      snprintf(err, errlen, "out of memory reading trace %s", trace_id);
      rc = LODE_ENOMEM;
    }
  }
  PQclear(r);
  return rc;
}

static int two_texts(lode_sysdb *db, const char *sql, const char *key, char **a, char **b,
                     char *err, size_t errlen) {
  *a = *b = NULL;
  lode__pgq q = {0};
  lode__pgq_text(&q, key);
  int rc;
  PGresult *r = lode__pg_exec(db, -1, sql, &q, "reading a trace", err, errlen, &rc);
  if (!r) return rc;
  rc = LODE_ENOTFOUND;
  if (PQntuples(r) > 0) {
    *a = lode__pg_text(r, 0, 0);
    *b = lode__pg_text(r, 0, 1);
    rc = LODE_OK;
  }
  PQclear(r);
  return rc;
}

int lode__pg_trace_head(lode_sysdb *db, const char *trace_id, char **name, char **body,
                        char *err, size_t errlen) {
  return two_texts(db, "SELECT name, body FROM trace_records WHERE id=$1 AND kind='trace'",
                   trace_id, name, body, err, errlen);
}

int lode__pg_has_trace_store(lode_sysdb *db) {
  (void)db;
  return 1; /* created with the schema (pg-1) */
}

int lode__pg_wf_trace_ref(lode_sysdb *db, const char *wf_id, char **trace_id, char **span_id,
                          char *err, size_t errlen) {
  int rc = two_texts(db, "SELECT trace_id, span_id FROM workflows WHERE id=$1", wf_id, trace_id,
                     span_id, err, errlen);
  if (rc == LODE_OK && !*trace_id) {
    free(*span_id);
    *span_id = NULL;
    rc = LODE_ENOTFOUND;
  }
  return rc;
}

int lode__pg_latest_trace(lode_sysdb *db, char **trace_id, char *err, size_t errlen) {
  char *unused = NULL;
  int rc = two_texts(db,
                     "SELECT trace_id, NULL FROM workflows WHERE parent_id IS NULL AND"
                     " trace_id IS NOT NULL AND $1::text IS NOT NULL ORDER BY created_at DESC,"
                     " seq DESC LIMIT 1",
                     "latest", trace_id, &unused, err, errlen);
  free(unused);
  if (rc == LODE_OK && !*trace_id) rc = LODE_ENOTFOUND;
  return rc;
}

/* ---- the renderer's rows -------------------------------------------------------- */

#define PARKED                                                                   \
  "w.status='PENDING' AND o.parked_owner IS NOT NULL AND o.parked_owner IS NOT DISTINCT " \
  "FROM w.executor_id"

int lode__pg_render_pending(lode_sysdb *db) {
  char e[256];
  int rc;
  PGresult *r = lode__pg_exec(
      db, LODE__PG_RENDER_PENDING,
      "SELECT EXISTS(SELECT 1 FROM workflows WHERE render_seq IS NULL)"
      " OR EXISTS(SELECT 1 FROM workflows WHERE render_seq >"
      "  (SELECT value FROM trace_cursor WHERE name='workflows'))"
      " OR EXISTS(SELECT 1 FROM trace_open o JOIN workflows w ON w.id=o.workflow_id"
      "  WHERE NOT (" PARKED ") AND (w.status NOT IN ('PENDING','ENQUEUED')"
      "  OR EXISTS(SELECT 1 FROM steps p WHERE p.workflow_id=o.workflow_id"
      "  AND p.step_no>o.steps_done AND p.span_input IS NOT NULL)))",
      NULL, "render", e, sizeof e, &rc);
  if (!r) return 1;
  int yes = !strcmp(PQgetvalue(r, 0, 0), "t");
  PQclear(r);
  return yes;
}

int lode__pg_render_cursor(lode_sysdb *db, int64_t *cursor, char *err, size_t errlen) {
  *cursor = 0;
  int rc;
  /* in a pass's transaction, the row's lock orders the passes of all hosts */
  PGresult *r = lode__pg_exec(db, -1,
                              db->in_tx ? "SELECT value FROM trace_cursor WHERE name='workflows'"
                                          " FOR UPDATE"
                                        : "SELECT value FROM trace_cursor WHERE name='workflows'",
                              NULL, "reading the trace cursor", err, errlen, &rc);
  if (!r) return rc;
  if (PQntuples(r)) *cursor = lode__pg_i64(r, 0, 0);
  PQclear(r);
  return LODE_OK;
}

int lode__pg_render_set_cursor(lode_sysdb *db, int64_t cursor, char *err, size_t errlen) {
  lode__pgq q = {0};
  lode__pgq_i64(&q, cursor);
  int rc = lode__pg_run(db, -1, "UPDATE trace_cursor SET value=$1 WHERE name='workflows'", &q,
                        "moving the trace cursor", err, errlen);
  if (rc == LODE_OK) lode__pg_wrote(db);
  return rc;
}

int lode__pg_render_new(lode_sysdb *db, int64_t after, int limit,
                        int (*fn)(void *ud, int64_t rowid, const char *id, int traced), void *ud,
                        char *err, size_t errlen) {
  lode__pgq q = {0};
  lode__pgq_i64(&q, after);
  lode__pgq_i64(&q, limit);
  int rc;
  /* number the rows not numbered yet (committed ones; a row another
   * transaction holds is numbered by a later pass), then read past `after` */
  PGresult *r = lode__pg_exec(
      db, -1,
      "UPDATE workflows SET render_seq=nextval('lode.render_seq') WHERE id IN (SELECT id FROM"
      " workflows WHERE render_seq IS NULL ORDER BY seq LIMIT $2 FOR UPDATE SKIP LOCKED)"
      " AND $1::bigint IS NOT NULL",
      &q, "numbering new workflows", err, errlen, &rc);
  if (!r) return rc;
  PQclear(r);
  r = lode__pg_exec(db, -1,
                    "SELECT render_seq, id, traced FROM workflows WHERE render_seq>$1"
                    " ORDER BY render_seq LIMIT $2",
                    &q, "reading new workflows", err, errlen, &rc);
  if (!r) return rc;
  for (int i = 0; i < PQntuples(r); i++)
    if (fn(ud, lode__pg_i64(r, i, 0), PQgetvalue(r, i, 1), lode__pg_i64(r, i, 2) == 1)) break;
  PQclear(r);
  return LODE_OK;
}

int lode__pg_render_open(lode_sysdb *db,
                         int (*fn)(void *ud, const char *id, int64_t steps_done,
                                   const char *owner),
                         void *ud, char *err, size_t errlen) {
  int rc;
  PGresult *r = lode__pg_exec(db, -1,
                              "SELECT o.workflow_id, o.steps_done, w.status='PENDING', w.executor_id"
                              " FROM trace_open o JOIN workflows w ON w.id=o.workflow_id"
                              " WHERE w.status<>'ENQUEUED' AND NOT (" PARKED ")",
                              NULL, "reading open workflows", err, errlen, &rc);
  if (!r) return rc;
  for (int i = 0; i < PQntuples(r); i++) {
    const char *owner = PQgetisnull(r, i, 3) ? NULL : PQgetvalue(r, i, 3);
    if (fn(ud, PQgetvalue(r, i, 0), lode__pg_i64(r, i, 1),
           !strcmp(PQgetvalue(r, i, 2), "t") ? owner : NULL))
      break;
  }
  PQclear(r);
  return LODE_OK;
}

int lode__pg_render_steps(lode_sysdb *db, const char *wf_id, int64_t after, int limit,
                          int (*fn)(void *ud, const lode_step_row *r), void *ud, char *err,
                          size_t errlen) {
  lode__pgq q = {0};
  lode__pgq_text(&q, wf_id);
  lode__pgq_i64(&q, after);
  lode__pgq_i64(&q, limit);
  int rc;
  /* the output only of rows with a span (CASE: the others' is not sent) */
  PGresult *r = lode__pg_exec(
      db, LODE__PG_RENDER_STEPS,
      "SELECT step_no,name,status,span_input,error,attempts,span_id,started_at,ended_at,"
      "span_id IS NOT NULL AND span_input IS NOT NULL,span_recovery,"
      "CASE WHEN span_id IS NOT NULL AND span_input IS NOT NULL THEN output END"
      " FROM steps WHERE workflow_id=$1 AND step_no>$2 ORDER BY step_no LIMIT $3",
      &q, "reading steps", err, errlen, &rc);
  if (!r) return rc;
  for (int i = 0; i < PQntuples(r) && rc == LODE_OK; i++) {
    lode_step_row row;
    memset(&row, 0, sizeof row);
    row.step_no = lode__pg_i64(r, i, 0);
    uint8_t *out = NULL;
    if (!strcmp(PQgetvalue(r, i, 9), "t")) {
      row.name = PQgetvalue(r, i, 1);
      row.status = !strcmp(PQgetvalue(r, i, 2), "ERROR") ? LODE_WF_ERROR : LODE_WF_SUCCESS;
      row.span_input = PQgetvalue(r, i, 3);
      row.error = PQgetisnull(r, i, 4) ? NULL : PQgetvalue(r, i, 4);
      row.attempts = (int)lode__pg_i64(r, i, 5);
      row.span_id = PQgetvalue(r, i, 6);
      row.started_at = lode__pg_i64(r, i, 7);
      row.ended_at = lode__pg_i64(r, i, 8);
      row.span_recovery = (int)lode__pg_i64(r, i, 10);
      out = lode__pg_blob(r, i, 11, &row.output_len);
      row.output = out;
    }
    int stop = fn(ud, &row);
    free(out);
    if (stop) break;
  }
  PQclear(r);
  return rc;
}

static int run_open(lode_sysdb *db, const char *sql, const char *id, int64_t n, const char *text,
                    int nparams, char *err, size_t errlen) {
  lode__pgq q = {0};
  lode__pgq_text(&q, id);
  if (nparams > 1) {
    if (text) lode__pgq_text(&q, text);
    else lode__pgq_i64(&q, n);
  }
  char what[600];
  snprintf(what, sizeof what, "recording trace progress of %.500s", id);
  int rc = lode__pg_run(db, -1, sql, &q, what, err, errlen);
  if (rc == LODE_OK) lode__pg_wrote(db);
  return rc;
}

int lode__pg_trace_open_put(lode_sysdb *db, const char *wf_id, int64_t steps_done, char *err,
                            size_t errlen) {
  return run_open(db,
                  "INSERT INTO trace_open(workflow_id, steps_done) VALUES($1, $2)"
                  " ON CONFLICT(workflow_id) DO UPDATE SET steps_done=excluded.steps_done,"
                  " parked_owner=NULL",
                  wf_id, steps_done, NULL, 2, err, errlen);
}

int lode__pg_trace_open_advance(lode_sysdb *db, const char *wf_id, int64_t steps_done,
                                char *err, size_t errlen) {
  return run_open(db, "UPDATE trace_open SET steps_done=$2 WHERE workflow_id=$1", wf_id,
                  steps_done, NULL, 2, err, errlen);
}

int lode__pg_trace_open_close(lode_sysdb *db, const char *wf_id, char *err, size_t errlen) {
  return run_open(db, "DELETE FROM trace_open WHERE workflow_id=$1", wf_id, 0, NULL, 1, err,
                  errlen);
}

int lode__pg_trace_open_park(lode_sysdb *db, const char *wf_id, const char *owner, char *err,
                             size_t errlen) {
  return run_open(db, "UPDATE trace_open SET parked_owner=$2 WHERE workflow_id=$1", wf_id, 0,
                  owner, 2, err, errlen);
}

const lode__sysdb_ops lode__pg_ops = {
#define X(ret, name, params, args) .name = lode__pg_##name,
    LODE__SYSDB_OPS(X)
#undef X
};
