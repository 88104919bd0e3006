#ifndef LODE_SYSDB_H
#define LODE_SYSDB_H
/* sysdb.h - the system database: workflow status, step checkpoints,
 * executors. SQLite today, behind this narrow interface so another backend
 * (PostgreSQL for many hosts) can take its place.
 *
 * Ownership: rows returned by the getters are filled with heap copies; the
 * caller releases them with lode_wf_row_clear / lode_step_rows_free. Inputs
 * are borrowed for the duration of the call. All functions return a
 * lode_status_code (base/error.h) and fill err on failure.
 *
 * Threads: one lode_sysdb per thread; SQLite's WAL lets connections of many
 * threads and processes share the file.
 *
 * Backends: a SQLite file (src/state/sqlite/) or, for a postgresql:// URL,
 * PostgreSQL (src/state/postgres/, docs/postgres.md); lode_sysdb_open picks
 * one (src/state/sysdb.c). Where a function below says what it means on
 * SQLite, "On PostgreSQL" says what it means there. */
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

typedef struct lode_sysdb lode_sysdb;

#define LODE_WF_STATUSES(X)            \
  X(ENQUEUED)                          \
  X(PENDING)                           \
  X(SUCCESS)                           \
  X(ERROR)                             \
  X(CANCELLED)                         \
  X(MAX_RECOVERY_ATTEMPTS_EXCEEDED)

enum lode_wf_status {
#define X(s) LODE_WF_##s,
  LODE_WF_STATUSES(X)
#undef X
  LODE_WF_NSTATUS
};

const char *lode_wf_status_name(int status);
/* -1 if the name is unknown */
int lode_wf_status_parse(const char *name);
/* 1 for an outcome (SUCCESS, ERROR, CANCELLED, MAX_RECOVERY_ATTEMPTS_EXCEEDED) */
int lode_wf_status_finished(int status);

typedef struct lode_wf_row {
  char *id, *name, *parent_id, *pipeline, *version, *error;
  char *trace_id, *span_id, *parent_span_id, *executor_id, *queue;
  int status;
  int64_t parent_step;
  int recovery_attempts, max_recovery_attempts;
  uint8_t *input, *output;
  size_t input_len, output_len;
  int64_t created_at, updated_at, started_at, ended_at;
  int64_t deadline_ms; /* 0: none */
  int traced;          /* its spans are rendered from this row (trace/render.h) */
  char *trace_extra;   /* JSON: tags, metadata, phase, lode.trace.update values; or NULL */
} lode_wf_row;

typedef struct lode_step_row {
  int64_t step_no;
  char *name;
  int status; /* LODE_WF_SUCCESS or LODE_WF_ERROR */
  uint8_t *output;
  size_t output_len;
  char *error; /* every attempt's error, one per line block */
  int attempts;
  char *child_id, *span_id;
  int64_t started_at, ended_at;
  /* a span rendered from this row (span_id): its input JSON ("" for none)
   * and the workflow's recovery count when it ran; NULL: no such span */
  char *span_input;
  int span_recovery;
} lode_step_row;

void lode_wf_row_clear(lode_wf_row *r);
void lode_step_rows_free(lode_step_row *rows, size_t n);

/* 1 if name is a PostgreSQL URL (postgresql://, postgres://): the state
 * database is then on PostgreSQL (docs/postgres.md), else it is a file. */
int lode_sysdb_is_url(const char *name);

/* Opens (creating and migrating) the database at path; parent folders are
 * created. sync_full: PRAGMA synchronous=FULL, else NORMAL. WAL always. */
int lode_sysdb_open(const char *path, int sync_full, lode_sysdb **out, char *err,
                    size_t errlen);
/* Opens an existing database read-only (`lode trace` on a copy it may not
 * write): no migration runs, so tables may be missing (see
 * lode_sysdb_has_trace_store); waits up to 5 s for a lock. */
int lode_sysdb_open_readonly(const char *path, lode_sysdb **out, char *err, size_t errlen);
void lode_sysdb_close(lode_sysdb *db);
const char *lode_sysdb_path(lode_sysdb *db);
/* On PostgreSQL a failing server is a connection fault (retried, then an
 * error: docs/postgres.md), not tracked here: these report SQLite files.
 * Since when (epoch ms) a write to a state database of this process has
 * failed for lack of space (*status LODE_EFULL) or an I/O error
 * (LODE_EIO), with no checkpoint or outcome written since and a failure
 * in the last minute; 0 when none. *last_ms (may be NULL): the latest
 * failure, so that "failing for S seconds" can be told from "failed once,
 * S seconds ago, and nothing failed since". The file is copied to path. */
int64_t lode_sysdb_fault(int *status, char *path, size_t pathlen, int64_t *last_ms);
/* How many such failures this connection has seen, ever (the Lua glue
 * charges the growth during each resume of a workflow body to that body:
 * one that failed after a failure of its own was the database's doing). */
unsigned lode_sysdb_faults(lode_sysdb *db);

/* With sync_full: the next commits skip their fsync while on (they become
 * durable with the next full commit, WAL being sequential). No-op otherwise.
 * On PostgreSQL: SET synchronous_commit TO off while on (durable with the
 * next commit that waits for its flush). */
void lode_sysdb_relax_sync(lode_sysdb *db, int on);

int lode_sysdb_begin(lode_sysdb *db, char *err, size_t errlen);
int lode_sysdb_commit(lode_sysdb *db, char *err, size_t errlen);
void lode_sysdb_rollback(lode_sysdb *db);

/* A running workflow's progress as it reports it (lode.progress): JSON
 * text, the last report wins; autocommits unless in a transaction.
 * progress_get: malloc'd, LODE_ENOTFOUND when none was reported. */
int lode_sysdb_progress_put(lode_sysdb *db, const char *wf_id, const char *json, char *err,
                            size_t errlen);
int lode_sysdb_progress_get(lode_sysdb *db, const char *wf_id, char **json, int64_t *updated_at,
                            char *err, size_t errlen);

/* Inserts the workflow unless its id exists; *existed tells which. */
int lode_sysdb_wf_insert(lode_sysdb *db, const lode_wf_row *r, int *existed, char *err,
                         size_t errlen);
/* LODE_ENOTFOUND if there is no such workflow. */
int lode_sysdb_wf_get(lode_sysdb *db, const char *id, lode_wf_row *out, char *err,
                      size_t errlen);
int lode_sysdb_wf_status(lode_sysdb *db, const char *id, int *status, char *err,
                         size_t errlen);
/* Records the outcome if the workflow is still PENDING (a cancel wins). */
int lode_sysdb_wf_finish(lode_sysdb *db, const char *id, int status, const uint8_t *out,
                         size_t out_len, const char *error, char *err, size_t errlen);
/* Sets status where the current status is in from_mask (bit per status);
 * *changed tells whether a row changed. */
int lode_sysdb_wf_set_status(lode_sysdb *db, const char *id, int status, unsigned from_mask,
                             int *changed, char *err, size_t errlen);
/* Takes ownership of a PENDING workflow for executor_id, counting a recovery
 * attempt if bump; *claimed is 0 if another executor took it first (its
 * executor_id no longer equals expect_executor). */
int lode_sysdb_wf_claim(lode_sysdb *db, const char *id, const char *expect_executor,
                        const char *executor_id, int bump, int *claimed, char *err,
                        size_t errlen);
int lode_sysdb_wf_reset_attempts(lode_sysdb *db, const char *id, char *err, size_t errlen);

typedef struct lode_wf_filter {
  int status;           /* -1: any */
  const char *name;     /* NULL: any */
  const char *pipeline; /* NULL: any */
  int roots_only;       /* only workflows without a parent */
  int64_t since_ms, until_ms; /* created_at window; 0: open */
  int limit;            /* 0: no limit */
  int oldest_first;
} lode_wf_filter;
/* Calls fn for each matching row (newest first unless oldest_first); the
 * row is cleared after fn returns. fn returns non-zero to stop. */
int lode_sysdb_wf_list(lode_sysdb *db, const lode_wf_filter *f,
                       int (*fn)(void *ud, const lode_wf_row *r), void *ud, char *err,
                       size_t errlen);

int lode_sysdb_steps_load(lode_sysdb *db, const char *wf_id, lode_step_row **rows,
                          size_t *n, char *err, size_t errlen);
/* A resumed workflow's later steps and outcome are to be rendered
 * (lode_trace_materialize, trace/render.h): marks its row traced and keeps it among the open
 * ones, with the steps it has so far counted as rendered unless it is open
 * already. Two statements: call it inside a transaction to make them one. */
int lode_sysdb_trace_reopen(lode_sysdb *db, const char *id, char *err, size_t errlen);
/* The connection's view of the file's data version (SQLite's
 * SQLITE_FCNTL_DATA_VERSION): it changes with every commit, this
 * connection's or another's, as seen when a transaction starts. 0 if
 * unknown. On PostgreSQL: this connection's commits plus the status changes
 * other connections announced (NOTIFY lode_status, sent by cancels and
 * status changes), which is what the engine uses it for. */
unsigned lode_sysdb_data_version(lode_sysdb *db);
/* Replaces the workflow's trace attributes (lode_wf_row.trace_extra). */
int lode_sysdb_wf_set_trace_extra(lode_sysdb *db, const char *id, const char *extra, char *err,
                                  size_t errlen);
int lode_sysdb_step_put(lode_sysdb *db, const char *wf_id, const lode_step_row *s, char *err,
                        size_t errlen);

/* Executors: one row per process, so recovery can tell a dead owner from a
 * live one. On PostgreSQL the row carries a lease that a thread renews
 * ($LODE_PG_LEASE_S, default 30 s): alive means the lease has not run out
 * (and, on the same host, the process still exists); a connection that
 * registered an executor has its checkpoints and outcomes fenced (written
 * only while the workflow is still that executor's; LODE_EBUSY otherwise). */
int lode_sysdb_executor_register(lode_sysdb *db, const char *id, char *err, size_t errlen);
void lode_sysdb_executor_unregister(lode_sysdb *db, const char *id);
/* 1 if the executor's process is alive (same host: pid and start time
 * match); 0 if dead or unknown. */
int lode_sysdb_executor_alive(lode_sysdb *db, const char *id);

/* ---- queues ---- */
typedef struct lode_queue_limits {
  const char *name;
  int concurrency;        /* global, across processes; 0: unlimited */
  int worker_concurrency; /* per process (executor id); 0: unlimited */
  int limit;              /* rate limiter: at most `limit` starts ... */
  double period_s;        /* ... in any window of period_s; limit 0: none */
  int priority;           /* order by priority (lower first, 0 = none = first) */
} lode_queue_limits;

/* Inserts an ENQUEUED workflow (r->queue set). LODE_ECONFLICT when the dedup
 * id is taken by a queued or running workflow of that queue. */
int lode_sysdb_wf_enqueue(lode_sysdb *db, const lode_wf_row *r, int priority,
                          const char *dedup_id, int *existed, char *err, size_t errlen);
/* Atomically moves up to max_n ENQUEUED workflows of a queue to PENDING for
 * executor_id, within the queue's limits. *ids (malloc'd, each malloc'd). */
int lode_sysdb_queue_claim(lode_sysdb *db, const lode_queue_limits *q, const char *executor_id,
                           int max_n, char ***ids, int *nids, char *err, size_t errlen);
/* Puts queued workflows held by executor_id (one, or all if id is NULL)
 * back to ENQUEUED, to be claimed again. */
int lode_sysdb_release(lode_sysdb *db, const char *executor_id, const char *id, char *err,
                       size_t errlen);
/* Releases queued workflows held by dead processes. */
int lode_sysdb_requeue_dead(lode_sysdb *db, char *err, size_t errlen);

/* Copies workflow src (its input, and its steps before `step`) to a new
 * PENDING workflow new_id with a new trace (DBOS's fork). */
int lode_sysdb_wf_fork(lode_sysdb *db, const char *src, const char *new_id, int64_t step,
                       const char *trace_id, const char *span_id, char *err, size_t errlen);
/* Cancels a workflow and all its descendants that are still queued or
 * running; *n tells how many. */
int lode_sysdb_cancel_tree(lode_sysdb *db, const char *id, int *n, char *err, size_t errlen);
/* What is enqueued and running, per queue (text or JSON). */
int lode_sysdb_queue_report(lode_sysdb *db, lode_buf *out, int json, char *err, size_t errlen);

/* The state database used when none is given: $LODE_DB, else .lode/lode.db
 * (docs/cli.md). */
const char *lode_sysdb_default_path(void);

/* Milliseconds this process spent waiting for other connections' locks
 * (SQLite files; PostgreSQL's lock waits are the server's). */
int64_t lode_sysdb_busy_ms(void);

#endif
