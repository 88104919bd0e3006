/* schema.c - the PostgreSQL backend's schema (docs/postgres.md, "The
 * schema"): every table lives in the PostgreSQL schema `lode`, so a
 * database can hold lode's state next to a user's own tables. Migrations
 * apply in order, each once, inside one transaction holding an advisory
 * lock, so several hosts starting at once do not race. */
#include <stdio.h>

#include "base/error.h"
#include "base/util.h"
#include "state/postgres/pg_int.h"

/* pg_advisory_xact_lock's key for migrations: "lode" in ASCII */
#define MIGRATION_LOCK "1819239525"

static const char *const pg1 =
    "CREATE TABLE lode.workflows("
    " seq bigserial UNIQUE, id text PRIMARY KEY, name text NOT NULL, status text NOT NULL,"
    " parent_id text, parent_step bigint, input bytea, output bytea, error text,"
    " pipeline text, version text, executor_id text,"
    " recovery_attempts int NOT NULL DEFAULT 0, max_recovery_attempts int,"
    " trace_id text, span_id text, parent_span_id text,"
    " queue text, priority int NOT NULL DEFAULT 0, dedup_id text, deadline_ms bigint,"
    " created_at bigint NOT NULL, updated_at bigint NOT NULL, started_at bigint, ended_at bigint,"
    " wake_at bigint, traced int, trace_extra text, render_seq bigint);"
    "CREATE INDEX workflows_queue ON lode.workflows(queue, status, priority, created_at)"
    " WHERE queue IS NOT NULL;"
    "CREATE UNIQUE INDEX workflows_dedup ON lode.workflows(queue, dedup_id)"
    " WHERE dedup_id IS NOT NULL AND status IN ('ENQUEUED','PENDING');"
    "CREATE INDEX workflows_parent ON lode.workflows(parent_id) WHERE parent_id IS NOT NULL;"
    "CREATE INDEX workflows_pending ON lode.workflows(executor_id) WHERE status='PENDING';"
    "CREATE INDEX workflows_unrendered ON lode.workflows(seq) WHERE render_seq IS NULL;"
    "CREATE INDEX workflows_rendered ON lode.workflows(render_seq) WHERE render_seq IS NOT NULL;"
    "CREATE SEQUENCE lode.render_seq;"
    "CREATE TABLE lode.steps("
    " workflow_id text NOT NULL, step_no bigint NOT NULL, name text NOT NULL,"
    " status text NOT NULL, error text, attempts int NOT NULL DEFAULT 1,"
    " child_id text, span_id text, started_at bigint, ended_at bigint,"
    " span_input text, span_recovery int, output bytea,"
    " PRIMARY KEY(workflow_id, step_no));"
    "CREATE TABLE lode.executors("
    " id text PRIMARY KEY, pid bigint NOT NULL, host text NOT NULL, proc_start text,"
    " started_at bigint NOT NULL, lease_until bigint NOT NULL, lease_ms bigint NOT NULL);"
    "CREATE TABLE lode.trace_records("
    " id text PRIMARY KEY, kind text NOT NULL, trace_id text, parent_id text, name text,"
    " type text, start_ms bigint, end_ms bigint, error text, body text NOT NULL,"
    " rev bigint NOT NULL, state text NOT NULL, attempts int NOT NULL DEFAULT 0,"
    " last_error text, next_attempt_at bigint NOT NULL DEFAULT 0, updated_at bigint NOT NULL);"
    "CREATE INDEX trace_records_outbox ON lode.trace_records(state, kind, next_attempt_at);"
    "CREATE INDEX trace_records_by_trace ON lode.trace_records(trace_id, start_ms);"
    "CREATE TABLE lode.trace_cursor(name text PRIMARY KEY, value bigint NOT NULL);"
    "INSERT INTO lode.trace_cursor VALUES('workflows', 0);"
    "CREATE TABLE lode.trace_open(workflow_id text PRIMARY KEY,"
    " steps_done bigint NOT NULL DEFAULT 0, parked_owner text);"
    "CREATE TABLE lode.workflow_progress(workflow_id text PRIMARY KEY,"
    " progress text NOT NULL, updated_at bigint NOT NULL);"
    "CREATE FUNCTION lode.now_ms() RETURNS bigint LANGUAGE sql VOLATILE AS"
    " $$ SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint $$;";

/* pg-2: OTLP's delivery state beside Opik's (state/trace_store.h, as the
 * SQLite backend's trace-2). */
static const char *const pg2 =
    "ALTER TABLE lode.trace_records ADD COLUMN otlp_state text;"
    "ALTER TABLE lode.trace_records ADD COLUMN otlp_attempts int NOT NULL DEFAULT 0;"
    "ALTER TABLE lode.trace_records ADD COLUMN otlp_error text;"
    "ALTER TABLE lode.trace_records ADD COLUMN otlp_next_at bigint NOT NULL DEFAULT 0;"
    "CREATE INDEX trace_records_otlp ON lode.trace_records(otlp_state, otlp_next_at)"
    " WHERE otlp_state IS NOT NULL;";

/* Every migration, in order; a new one goes at the end. */
static const struct {
  const char *name, *sql;
} migrations[] = {{"pg-1", pg1}, {"pg-2", pg2}};
static const int n_migrations = (int)(sizeof migrations / sizeof migrations[0]);

/* 0: every migration applied and none unknown; 1: some to apply; -1: a
 * newer lode's (err filled); -2: cannot tell (err filled). */
static int look(lode_sysdb *db, char *err, size_t errlen, int *rc) {
  PGresult *r = lode__pg_exec(db, -1,
                              "SELECT name FROM lode.migrations WHERE"
                              " to_regclass('lode.migrations') IS NOT NULL",
                              NULL, "reading lode.migrations", err, errlen, rc);
  if (!r) {
    /* no table yet: the schema (or the table) is missing */
    if (strstr(err, "does not exist")) return 1;
    return -2;
  }
  int have = 0;
  char unknown[128] = "";
  for (int i = 0; i < PQntuples(r); i++) {
    const char *name = PQgetvalue(r, i, 0);
    int known = 0;
    for (int j = 0; j < n_migrations; j++) known |= !strcmp(name, migrations[j].name);
    if (known) have++;
    else if (!unknown[0]) snprintf(unknown, sizeof unknown, "%.100s", name);
  }
  PQclear(r);
  if (unknown[0]) {
    snprintf(err, errlen,
             "%s was written by a newer lode (its schema has migration %s), this lode knows "
             "migrations up to %s: use that newer lode, or another --db; nothing was changed "
             "(docs/postgres.md, \"The schema\")",
             db->shown, unknown, migrations[n_migrations - 1].name);
    *rc = LODE_EUSAGE;
    return -1;
  }
  return have == n_migrations ? 0 : 1;
}

int lode__pg_migrate(lode_sysdb *db, char *err, size_t errlen) {
  int rc = LODE_OK;
  int st = look(db, err, errlen, &rc);
  if (st == 0) return LODE_OK;
  if (st < 0) return rc;
  /* some to apply: under the lock, looked at again (another host may have
   * applied them while this one waited) */
  if ((rc = lode__pg_begin(db, err, errlen)) != LODE_OK) return rc;
  rc = lode__pg_run(db, -1,
                    "SELECT pg_advisory_xact_lock(" MIGRATION_LOCK ");"
                    , NULL, "taking the migration lock", err, errlen);
  if (rc == LODE_OK)
    rc = lode__pg_run(db, -1,
                      "CREATE SCHEMA IF NOT EXISTS lode;"
                      "CREATE TABLE IF NOT EXISTS lode.migrations("
                      " name text PRIMARY KEY, applied_at bigint NOT NULL)",
                      NULL, "creating the schema lode", err, errlen);
  PGresult *r = NULL;
  if (rc == LODE_OK) {
    st = look(db, err, errlen, &rc);
    if (st == -2) rc = rc ? rc : LODE_EDB;
  }
  if (rc == LODE_OK && st == 1) {
    r = lode__pg_exec(db, -1, "SELECT name FROM lode.migrations", NULL,
                      "reading lode.migrations", err, errlen, &rc);
    for (int i = 0; i < n_migrations && r && rc == LODE_OK; i++) {
      int done = 0;
      for (int k = 0; k < PQntuples(r); k++) done |= !strcmp(PQgetvalue(r, k, 0), migrations[i].name);
      if (done) continue;
      char what[64];
      snprintf(what, sizeof what, "migration %s", migrations[i].name);
      rc = lode__pg_run(db, -1, migrations[i].sql, NULL, what, err, errlen);
      lode__pgq q = {0};
      lode__pgq_text(&q, migrations[i].name);
      lode__pgq_i64(&q, lode_now_ms());
      if (rc == LODE_OK)
        rc = lode__pg_run(db, -1, "INSERT INTO lode.migrations VALUES($1, $2)", &q, what, err,
                          errlen);
    }
    PQclear(r);
  }
  if (rc == LODE_OK) return lode__pg_commit(db, err, errlen);
  lode__pg_rollback(db);
  return rc;
}
