#ifndef LODE_PG_INT_H
#define LODE_PG_INT_H
/* pg_int.h - what the files of the PostgreSQL backend share (lode__pg_
 * names). Nothing outside src/state/postgres/ includes it.
 *
 * A connection is one PGconn (one per thread, as with SQLite). Statements
 * are sent with lode__pg_exec: the hot ones are prepared once per
 * connection (a slot of the enum below), the rest are sent with their
 * parameters. Every call goes through lode__pg_exec so that a lost
 * connection is retried in one place (docs/postgres.md, "Connection
 * faults"): outside a transaction the statement is sent again once the
 * server answers; inside one, the transaction's statements so far are sent
 * again first (each statement lode commits is idempotent: upserts, inserts
 * that ignore an existing id, updates guarded by the status they change). */
#include <libpq-fe.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "state/backend.h"

#define X(ret, name, params, args) ret lode__pg_##name params;
LODE__SYSDB_OPS(X)
#undef X

/* Prepared statements (slots). */
enum {
  LODE__PG_WF_INSERT,
  LODE__PG_WF_GET,
  LODE__PG_WF_STATUS,
  LODE__PG_WF_FINISH,
  LODE__PG_WF_CLAIM,
  LODE__PG_STEP_PUT,
  LODE__PG_STEPS_LOAD,
  LODE__PG_TRACE_UPSERT,
  LODE__PG_RENDER_STEPS,
  LODE__PG_RENDER_PENDING,
  LODE__PG_QUEUE_PICK,
  LODE__PG_QUEUE_PICK_PRIO,
  LODE__PG_QUEUE_TAKE,
  LODE__PG_SLOTS
};

#define LODE__PG_MAXP 24
/* A statement's parameters: text, or binary (bytea). Values are borrowed. */
typedef struct lode__pgq {
  int n;
  const char *v[LODE__PG_MAXP];
  int len[LODE__PG_MAXP], fmt[LODE__PG_MAXP];
  char num[LODE__PG_MAXP][24]; /* integers, as text */
} lode__pgq;

void lode__pgq_text(lode__pgq *q, const char *s);
void lode__pgq_i64(lode__pgq *q, int64_t v);
void lode__pgq_null(lode__pgq *q);
void lode__pgq_blob(lode__pgq *q, const void *p, size_t n);

struct lode_sysdb {
  LODE__SYSDB_HEAD;
  PGconn *c;
  char *url;   /* as given (libpq reads its password, PG* variables) */
  char *shown; /* the URL without a password, for messages */
  char prepared[LODE__PG_SLOTS];
  int in_tx, readonly;
  int outbox_dest; /* lode_sysdb_outbox_use (trace_rows.c) */
  int no_replay; /* this transaction is not sent again after a reconnect
                    (a claim: sent again, it would pick other rows) */
  unsigned commits;  /* this connection's committed writes */
  unsigned notified; /* status changes announced by others (lode_status) */
  unsigned wakes;    /* queue work announced (lode_wake) */
  char *me;          /* the executor registered on this connection: its
                        checkpoints are fenced by it */
  int relaxed, sync_full;
  /* the statements of the open transaction, to send again after a
   * reconnect (see above) */
  struct lode__pg_logged *log;
  int nlog, caplog;
  /* queue_claim: when each queue was last found empty, and the wake count
   * then (a claim is not asked again until a wake or a slow poll) */
  struct {
    uint32_t hash;
    unsigned wakes;
    int64_t at;
  } idle[16];
};

/* Runs sql (prepared in `slot` if slot >= 0) with q's parameters; returns
 * the result (PQclear it) or NULL with err filled and *rc set. Results are
 * text. `what` says what failed, for the message. */
PGresult *lode__pg_exec(lode_sysdb *db, int slot, const char *sql, const lode__pgq *q,
                        const char *what, char *err, size_t errlen, int *rc);
/* Runs a statement that returns no rows. */
int lode__pg_run(lode_sysdb *db, int slot, const char *sql, const lode__pgq *q,
                 const char *what, char *err, size_t errlen);
/* Counts an autocommitted write (data_version). */
void lode__pg_wrote(lode_sysdb *db);
/* A malloc'd copy of a text cell, NULL for NULL. */
char *lode__pg_text(const PGresult *r, int row, int col);
int64_t lode__pg_i64(const PGresult *r, int row, int col);
/* A bytea cell (hex text) decoded; NULL for NULL. */
uint8_t *lode__pg_blob(const PGresult *r, int row, int col, size_t *n);
/* Reads what the server sent unasked (notifications) without waiting. */
void lode__pg_poll(lode_sysdb *db);

/* schema.c: applies what migrations the database lacks (advisory lock). */
int lode__pg_migrate(lode_sysdb *db, char *err, size_t errlen);

/* leases.c: the lease of this process's executor (leases.c). */
int lode__pg_lease_start(lode_sysdb *db, const char *executor_id, char *err, size_t errlen);
void lode__pg_lease_stop(const char *executor_id);
int64_t lode__pg_lease_ms(void);

#endif
