#ifndef LODE_STATE_TRACE_STORE_H
#define LODE_STATE_TRACE_STORE_H
/* trace_store.h - the local trace store in the state database: the
 * trace_records table (docs/tracing.md, "Local store"), which is also the
 * exporter's outbox.
 *
 * The trace module (src/trace/) builds the records (Opik JSON bodies); these
 * functions only store, select and mark them. A record commits with the
 * checkpoint it describes: lode_sysdb_trace_put runs inside the caller's
 * transaction (or autocommits when there is none) and never begins one.
 *
 * Ownership: inputs are borrowed for the call; rows handed to a callback
 * point into the database's buffers and are valid only during that call.
 * All functions return a lode_status_code and fill err on failure, unless
 * said otherwise. */
#include <stddef.h>
#include <stdint.h>

#include "state/sysdb.h"

/* Row states. */
#define LODE_TRACE_PENDING "pending"
#define LODE_TRACE_SENT "sent"
#define LODE_TRACE_FAILED "failed"
#define LODE_TRACE_DISABLED "disabled"

/* A finished record, as stored. */
typedef struct lode_trace_row {
  const char *id, *kind;           /* kind: trace | span | feedback */
  const char *trace_id, *parent_id; /* parent span id; NULL for roots and traces */
  const char *name, *type;
  int64_t start_ms, end_ms;
  const char *error; /* "Type: message" for `lode trace`; NULL if none */
  const char *body;  /* the JSON object sent to Opik, minus the envelope */
  const char *state; /* LODE_TRACE_PENDING or LODE_TRACE_DISABLED */
} lode_trace_row;

/* Upserts the record by id: rev bumps, the export state restarts (attempts
 * 0, due now) and updated_at = max(now, previous + 1), so Opik's
 * last_updated_at grows with every version. The statement is prepared once
 * per connection (parsing it costs more than running it). */
int lode_sysdb_trace_put(lode_sysdb *db, const lode_trace_row *r, char *err, size_t errlen);

/* ---- the outbox (trace_export.c) ---- */

/* Each destination keeps its own delivery state per record (state,
 * attempts, last error, next attempt), so one being down never holds the
 * other back. Opik takes every kind; OTLP only finished spans (a trace or
 * feedback record, or a span's open version, has no OTLP state). An upsert makes the record pending again for
 * both. The functions below act on the destination chosen for the
 * connection (Opik until this is called). */
enum lode_outbox_dest { LODE_OUTBOX_OPIK, LODE_OUTBOX_OTLP };
void lode_sysdb_outbox_use(lode_sysdb *db, enum lode_outbox_dest dest);

/* At an exporter's start: rows in backoff are due at once (the backoffs were
 * the last process's), and a pending row whose body is not a JSON object (a
 * hand-edited or damaged database) is failed rather than retried forever. */
int lode_sysdb_outbox_start(lode_sysdb *db, char *err, size_t errlen);
/* Rows left in backoff become due at once (for the next run). */
int lode_sysdb_outbox_undelay(lode_sysdb *db, char *err, size_t errlen);
/* Calls fn for up to `limit` pending rows of `kind` due at now_ms; fn
 * returns non-zero to stop early. */
typedef int (*lode_outbox_fn)(void *ud, const char *id, int64_t rev, int64_t updated_at,
                              const char *body, size_t body_len);
int lode_sysdb_outbox_load(lode_sysdb *db, const char *kind, int64_t now_ms, int limit,
                           lode_outbox_fn fn, void *ud, char *err, size_t errlen);

/* A version of a record: it is marked only while its rev is unchanged, so a
 * newer version written during a request stays pending. */
typedef struct lode_outbox_ref {
  const char *id;
  int64_t rev;
} lode_outbox_ref;
enum lode_outbox_mark {
  LODE_OUTBOX_SENT,   /* delivered */
  LODE_OUTBOX_FAILED, /* rejected for good: `text` is the response */
  LODE_OUTBOX_RETRY   /* retried at `when` (epoch ms): `text` is why */
};
/* Marks n records in one transaction (each counts an attempt); *changed
 * (may be NULL) grows by the rows that were still pending at their rev. */
int lode_sysdb_outbox_mark(lode_sysdb *db, enum lode_outbox_mark how, const lode_outbox_ref *refs,
                           int n, const char *text, int64_t when, int *changed, char *err,
                           size_t errlen);
/* Pending rows, due or not; -1 on error. */
int lode_sysdb_outbox_pending(lode_sysdb *db);
/* `lode export --retry-failed`: failed rows become pending and due. */
int lode_sysdb_outbox_retry_failed(lode_sysdb *db, char *err, size_t errlen);
/* `lode export --since`: pending rows that started before before_ms (their
 * span's or trace's start; else when they were written) are kept local for good (as if recorded with tracking disabled); *n tells how
 * many. */
int lode_sysdb_outbox_keep_local(lode_sysdb *db, int64_t before_ms, int *n, char *err,
                                 size_t errlen);
/* `lode export --failed`: calls fn for each failed row, oldest first. */
typedef struct lode_outbox_failure {
  const char *id, *kind, *trace_id, *name, *last_error;
  int attempts;
} lode_outbox_failure;
int lode_sysdb_outbox_failed(lode_sysdb *db, void (*fn)(void *ud, const lode_outbox_failure *f),
                             void *ud, char *err, size_t errlen);

/* ---- reading a trace (`lode trace`) ---- */

typedef struct lode_trace_span_row {
  const char *id, *parent_id, *name, *type, *error, *state;
  int64_t start_ms, end_ms;
  const char *body; /* the record's JSON (input, output, metadata, tags, error_info) */
} lode_trace_span_row;
/* Calls fn for each span of the trace, by start time then id; fn returns
 * non-zero to stop (that value is returned, as LODE_ENOMEM if it is). */
int lode_sysdb_trace_spans(lode_sysdb *db, const char *trace_id,
                           int (*fn)(void *ud, const lode_trace_span_row *r), void *ud, char *err,
                           size_t errlen);
/* The trace record's name and body (malloc'd, NULL when absent);
 * LODE_ENOTFOUND if the trace has no record. */
int lode_sysdb_trace_head(lode_sysdb *db, const char *trace_id, char **name, char **body,
                          char *err, size_t errlen);
/* A workflow's trace id and span id (malloc'd; span_id may be NULL);
 * LODE_ENOTFOUND if there is no such workflow or it has no trace. */
int lode_sysdb_wf_trace_ref(lode_sysdb *db, const char *wf_id, char **trace_id, char **span_id,
                            char *err, size_t errlen);
/* The trace id of the latest top-level run (malloc'd); LODE_ENOTFOUND if
 * there is none. */
int lode_sysdb_latest_trace(lode_sysdb *db, char **trace_id, char *err, size_t errlen);
/* 1 if the database has a trace store (a read-only database may predate
 * it), else 0. */
int lode_sysdb_has_trace_store(lode_sysdb *db);

#endif
