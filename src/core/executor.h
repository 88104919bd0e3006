#ifndef LODE_EXECUTOR_H
#define LODE_EXECUTOR_H
/* executor.h - durable workflows and steps (DBOS Transact's semantics).
 *
 * The executor knows nothing of Lua: the Lua face (src/lua/lode_lua_workflow.c)
 * runs bodies and step functions and drives this API:
 *
 *   lode_wf_begin      the one place where a workflow starts or resumes: it
 *                      records it (idempotent by id), claims a dead owner's
 *                      workflow, counts recoveries, restores its trace
 *                      context and loads its recorded steps;
 *   lode_wf_step_next  the next position: a recorded checkpoint to replay, or
 *                      "run it now" (after the determinism and cancel checks);
 *   lode_wf_step_record  checkpoints a step's outcome (one transaction);
 *   lode_wf_finish     records the workflow's outcome.
 *
 * Ownership: lode_exec owns its database connection; a lode_wf is owned by
 * whoever began it and freed with lode_wf_free. Outcomes are heap copies
 * released with lode_wf_outcome_clear. One lode_exec per thread. */
#include <stddef.h>
#include <stdint.h>

#include "state/sysdb.h"
#include "trace/render.h"
#include "trace/trace.h"

typedef struct lode_exec lode_exec;
typedef struct lode_wf lode_wf;

typedef struct lode_exec_opts {
  const char *db_path;
  int sync_full;
  const char *pipeline; /* absolute path of the pipeline file, or NULL */
  const char *version;  /* version of the pipeline (hash of its bytes), or NULL */
} lode_exec_opts;

int lode_exec_open(const lode_exec_opts *o, lode_exec **out, char *err, size_t errlen);
void lode_exec_close(lode_exec *ex);
lode_sysdb *lode_exec_db(lode_exec *ex);
const char *lode_exec_id(lode_exec *ex);

#define LODE_DEFAULT_MAX_RECOVERY 100

/* A workflow's trace attributes (lode_wf_trace) and what lode.trace.update
 * adds to its span (lode_span_extra) are declared in trace/render.h. */

typedef struct lode_wf_start {
  const char *id;   /* NULL: a new UUIDv7 (a child: PARENT-N) */
  const char *name; /* workflow name */
  const uint8_t *input;
  size_t input_len;
  lode_wf *parent;    /* set for a child workflow */
  int64_t parent_pos; /* the child's position in its parent */
  int max_recovery_attempts; /* 0: LODE_DEFAULT_MAX_RECOVERY */
  const lode_wf_trace *trace; /* may be NULL */
  double timeout_s;           /* > 0: cancelled (children too) at the deadline */
} lode_wf_start;

typedef struct lode_wf_outcome {
  int status; /* SUCCESS, ERROR, CANCELLED, MAX_RECOVERY_ATTEMPTS_EXCEEDED */
  uint8_t *output;
  size_t output_len;
  char *error;
} lode_wf_outcome;
void lode_wf_outcome_clear(lode_wf_outcome *o);

/* Starts or resumes a workflow. Returns LODE_OK with *wf set (run its body
 * with lode_wf_input), or LODE_OK with *wf NULL and *done filled (it had
 * finished: its recorded outcome). LODE_ECONFLICT: the id belongs to another
 * workflow name. LODE_EBUSY: a live process runs it (see lode_exec_await). */
int lode_wf_begin(lode_exec *ex, const lode_wf_start *s, lode_wf **wf, lode_wf_outcome *done,
                  char *err, size_t errlen);
/* Waits (polling) until the workflow is no longer ENQUEUED/PENDING. */
int lode_exec_await(lode_exec *ex, const char *id, lode_wf_outcome *out, char *err,
                    size_t errlen);

const char *lode_wf_id(const lode_wf *wf);
const char *lode_wf_name(const lode_wf *wf);
void lode_wf_input(const lode_wf *wf, const uint8_t **p, size_t *n);
/* Trace context, recorded with the workflow (restored on resume). */
const char *lode_wf_trace_id(const lode_wf *wf);
/* Records what the workflow reports of its progress (JSON), for other
 * processes to read; not a checkpoint (a replay simply reports again). */
int lode_wf_progress(lode_wf *wf, const char *json, char *err, size_t errlen);
const char *lode_wf_span_id(const lode_wf *wf);
int lode_wf_resumed(const lode_wf *wf); /* 1 if it had been started before */
int lode_wf_recovery_attempts(const lode_wf *wf);

/* The next step position. *rec is the recorded checkpoint to replay, or NULL
 * when the step must run now. LODE_ENONDET (docs/durability.md) when the
 * recorded name differs; LODE_ECANCELLED once the workflow is cancelled. */
int lode_wf_step_next(lode_wf *wf, const char *name, int64_t *pos, const lode_step_row **rec,
                      char *err, size_t errlen);
/* LODE_ECANCELLED (with a message) once the workflow's deadline has passed:
 * it and its descendants are then marked CANCELLED. */
int lode_wf_check_deadline(lode_wf *wf, char *err, size_t errlen);
int64_t lode_wf_deadline(const lode_wf *wf);

/* Checkpoints a finished step (row->step_no from lode_wf_step_next) and, in
 * the same transaction, the spans that describe it (the step's own span, its
 * failed attempts, tracked functions it called). */
int lode_wf_step_record(lode_wf *wf, const lode_step_row *row, const lode_span_rec *spans,
                        int nspans, char *err, size_t errlen);
/* Records the workflow's outcome unless it was cancelled meanwhile, and
 * closes its span (and its trace, for a top-level run) in the same
 * transaction; for an inline child, `prow` (its checkpoint in `parent`) too. */
int lode_wf_finish(lode_wf *wf, int status, const uint8_t *out, size_t out_len,
                   const char *error, const lode_span_extra *extra, lode_wf *parent,
                   const lode_step_row *prow, char *err, size_t errlen);
/* 1 when the workflow's row says its spans are rendered from the rows
 * (lode_trace_materialize, trace/render.h): its plain steps may then keep their span in
 * their checkpoint row. */
int lode_wf_traced(const lode_wf *wf);

/* Tracing: 1 when spans are recorded (OPIK_TRACK_DISABLE turns it off). */
int lode_exec_tracing(const lode_exec *ex);
/* Writes spans that belong to no checkpoint (tracked functions in a
 * workflow body; manual traces, with their trace record `t`). */
int lode_exec_trace_write(lode_exec *ex, const lode_trace_rec *t, const lode_span_rec *spans,
                          int nspans, char *err, size_t errlen);
/* A feedback score on a trace (lode.trace.feedback). */
int lode_exec_trace_feedback(lode_exec *ex, const char *trace_id, const char *name, double value,
                             const char *reason, char *err, size_t errlen);
/* Called after each commit that wrote trace records (the exporter's kick). */
void lode_exec_on_trace_commit(lode_exec *ex, void (*fn)(void *ud), void *ud);
void lode_wf_free(lode_wf *wf);

/* Enqueues a workflow (status ENQUEUED) on a queue; a worker claims it.
 * With a parent, the enqueue takes the parent's position parent_pos (the
 * child's id is then PARENT-N unless given) and is checkpointed there in the
 * same transaction, with the start of the child's span. */
typedef struct lode_enqueue_opts {
  const char *id; /* NULL: PARENT-N, or a new UUIDv7 */
  const char *name;
  const uint8_t *input;
  size_t input_len;
  const char *queue;
  int priority;
  const char *dedup_id;
  lode_wf *parent;
  int64_t parent_pos;
  int max_recovery_attempts;
  double timeout_s;
} lode_enqueue_opts;
int lode_exec_enqueue(lode_exec *ex, const lode_enqueue_opts *o, char id_out[512], char *err,
                      size_t errlen);

/* Test-only fault injection (builds with LODE_TEST_HOOKS): the environment
 * variable LODE_TEST_CRASH_AT="NAME:K" makes the process raise SIGKILL (as if
 * killed) when the K-th execution of step NAME starts. */
void lode_test_crash_point(const char *step_name);

#endif
