#ifndef LODE_STATE_BACKEND_H
#define LODE_STATE_BACKEND_H
/* backend.h - how the state interface (sysdb.h, trace_store.h,
 * render_rows.h) reaches its backends: one table of functions per backend
 * (SQLite in src/state/sqlite/, PostgreSQL in src/state/postgres/), chosen
 * by lode_sysdb_open from the database's name (a postgresql:// or
 * postgres:// URL, else a file). The engine keeps calling the lode_sysdb_*
 * functions; src/state/sysdb.c forwards each to the table of the
 * connection it is given.
 *
 * Every backend's struct lode_sysdb begins with `const lode__sysdb_ops
 * *ops` (LODE__SYSDB_HEAD), which is how the forwarders find the table.
 * Only the backends and sysdb.c include this header. */
#include "state/render_rows.h"
#include "state/sysdb.h"
#include "state/trace_store.h"
#include "base/buf.h"

/* `lode workflow queue`'s report, the same for every backend (status.c):
 * the header (or "[") and one row; `more`: a row came before. */
void lode__queue_report_head(lode_buf *out, int json);
void lode__queue_report_row(lode_buf *out, int json, int more, const char *queue,
                            const char *status, const char *id, const char *name, int priority);

#define LODE__E char *err, size_t errlen
/* X(return type, name, (parameters), (arguments)): every function that
 * takes a connection. A new one goes here and in each backend. */
#define LODE__SYSDB_OPS(X) LODE__SYSDB_OPS_VOID(X) LODE__SYSDB_OPS_VALUE(X)
/* the ones that return nothing (their forwarders cannot `return f()`) */
#define LODE__SYSDB_OPS_VOID(X)                                                                   \
  X(void, close, (lode_sysdb * db), (db))                                                         \
  X(void, relax_sync, (lode_sysdb * db, int on), (db, on))                                        \
  X(void, rollback, (lode_sysdb * db), (db))                                                      \
  X(void, executor_unregister, (lode_sysdb * db, const char *id), (db, id))                     \
  X(void, outbox_use, (lode_sysdb * db, enum lode_outbox_dest dest), (db, dest))
#define LODE__SYSDB_OPS_VALUE(X)                                                                  \
  X(const char *, path, (lode_sysdb * db), (db))                                                  \
  X(unsigned, faults, (lode_sysdb * db), (db))                                                    \
  X(int, begin, (lode_sysdb * db, LODE__E), (db, err, errlen))                                    \
  X(int, commit, (lode_sysdb * db, LODE__E), (db, err, errlen))                                   \
  X(int, progress_put, (lode_sysdb * db, const char *wf_id, const char *json, LODE__E),           \
    (db, wf_id, json, err, errlen))                                                               \
  X(int, progress_get,                                                                            \
    (lode_sysdb * db, const char *wf_id, char **json, int64_t *updated_at, LODE__E),              \
    (db, wf_id, json, updated_at, err, errlen))                                                   \
  X(int, wf_insert, (lode_sysdb * db, const lode_wf_row *r, int *existed, LODE__E),               \
    (db, r, existed, err, errlen))                                                                \
  X(int, wf_get, (lode_sysdb * db, const char *id, lode_wf_row *out, LODE__E),                    \
    (db, id, out, err, errlen))                                                                   \
  X(int, wf_status, (lode_sysdb * db, const char *id, int *status, LODE__E),                      \
    (db, id, status, err, errlen))                                                                \
  X(int, wf_finish,                                                                               \
    (lode_sysdb * db, const char *id, int status, const uint8_t *out, size_t out_len,             \
     const char *error, LODE__E),                                                                 \
    (db, id, status, out, out_len, error, err, errlen))                                           \
  X(int, wf_set_status,                                                                           \
    (lode_sysdb * db, const char *id, int status, unsigned from_mask, int *changed, LODE__E),     \
    (db, id, status, from_mask, changed, err, errlen))                                            \
  X(int, wf_claim,                                                                                \
    (lode_sysdb * db, const char *id, const char *expect_executor, const char *executor_id,       \
     int bump, int *claimed, LODE__E),                                                            \
    (db, id, expect_executor, executor_id, bump, claimed, err, errlen))                           \
  X(int, wf_reset_attempts, (lode_sysdb * db, const char *id, LODE__E), (db, id, err, errlen))    \
  X(int, wf_list,                                                                                 \
    (lode_sysdb * db, const lode_wf_filter *f, int (*fn)(void *ud, const lode_wf_row *r),         \
     void *ud, LODE__E),                                                                          \
    (db, f, fn, ud, err, errlen))                                                                 \
  X(int, steps_load,                                                                              \
    (lode_sysdb * db, const char *wf_id, lode_step_row **rows, size_t *n, LODE__E),               \
    (db, wf_id, rows, n, err, errlen))                                                            \
  X(int, trace_reopen, (lode_sysdb * db, const char *id, LODE__E), (db, id, err, errlen))         \
  X(unsigned, data_version, (lode_sysdb * db), (db))                                              \
  X(int, wf_set_trace_extra, (lode_sysdb * db, const char *id, const char *extra, LODE__E),       \
    (db, id, extra, err, errlen))                                                                 \
  X(int, step_put, (lode_sysdb * db, const char *wf_id, const lode_step_row *s, LODE__E),         \
    (db, wf_id, s, err, errlen))                                                                  \
  X(int, executor_register, (lode_sysdb * db, const char *id, LODE__E), (db, id, err, errlen))    \
  X(int, executor_alive, (lode_sysdb * db, const char *id), (db, id))                             \
  X(int, wf_enqueue,                                                                              \
    (lode_sysdb * db, const lode_wf_row *r, int priority, const char *dedup_id, int *existed,     \
     LODE__E),                                                                                    \
    (db, r, priority, dedup_id, existed, err, errlen))                                            \
  X(int, queue_claim,                                                                             \
    (lode_sysdb * db, const lode_queue_limits *q, const char *executor_id, int max_n,             \
     char ***ids, int *nids, LODE__E),                                                            \
    (db, q, executor_id, max_n, ids, nids, err, errlen))                                          \
  X(int, release, (lode_sysdb * db, const char *executor_id, const char *id, LODE__E),            \
    (db, executor_id, id, err, errlen))                                                           \
  X(int, requeue_dead, (lode_sysdb * db, LODE__E), (db, err, errlen))                             \
  X(int, wf_fork,                                                                                 \
    (lode_sysdb * db, const char *src, const char *new_id, int64_t step, const char *trace_id,    \
     const char *span_id, LODE__E),                                                               \
    (db, src, new_id, step, trace_id, span_id, err, errlen))                                      \
  X(int, cancel_tree, (lode_sysdb * db, const char *id, int *n, LODE__E),                         \
    (db, id, n, err, errlen))                                                                     \
  X(int, queue_report, (lode_sysdb * db, lode_buf *out, int json, LODE__E),                       \
    (db, out, json, err, errlen))                                                                 \
  X(int, trace_put, (lode_sysdb * db, const lode_trace_row *r, LODE__E), (db, r, err, errlen))    \
  X(int, outbox_start, (lode_sysdb * db, LODE__E), (db, err, errlen))                             \
  X(int, outbox_undelay, (lode_sysdb * db, LODE__E), (db, err, errlen))                           \
  X(int, outbox_load,                                                                             \
    (lode_sysdb * db, const char *kind, int64_t now_ms, int limit, lode_outbox_fn fn, void *ud,   \
     LODE__E),                                                                                    \
    (db, kind, now_ms, limit, fn, ud, err, errlen))                                               \
  X(int, outbox_mark,                                                                             \
    (lode_sysdb * db, enum lode_outbox_mark how, const lode_outbox_ref *refs, int n,              \
     const char *text, int64_t when, int *changed, LODE__E),                                      \
    (db, how, refs, n, text, when, changed, err, errlen))                                         \
  X(int, outbox_pending, (lode_sysdb * db), (db))                                                 \
  X(int, outbox_retry_failed, (lode_sysdb * db, LODE__E), (db, err, errlen))                      \
  X(int, outbox_keep_local, (lode_sysdb * db, int64_t before_ms, int *n, LODE__E),                  \
    (db, before_ms, n, err, errlen))                                                              \
  X(int, outbox_failed,                                                                           \
    (lode_sysdb * db, void (*fn)(void *ud, const lode_outbox_failure *f), void *ud, LODE__E),     \
    (db, fn, ud, err, errlen))                                                                    \
  X(int, trace_spans,                                                                             \
    (lode_sysdb * db, const char *trace_id, int (*fn)(void *ud, const lode_trace_span_row *r),    \
     void *ud, LODE__E),                                                                          \
    (db, trace_id, fn, ud, err, errlen))                                                          \
  X(int, trace_head, (lode_sysdb * db, const char *trace_id, char **name, char **body, LODE__E),  \
    (db, trace_id, name, body, err, errlen))                                                      \
  X(int, wf_trace_ref,                                                                            \
    (lode_sysdb * db, const char *wf_id, char **trace_id, char **span_id, LODE__E),               \
    (db, wf_id, trace_id, span_id, err, errlen))                                                  \
  X(int, latest_trace, (lode_sysdb * db, char **trace_id, LODE__E), (db, trace_id, err, errlen))  \
  X(int, has_trace_store, (lode_sysdb * db), (db))                                                \
  X(int, render_pending, (lode_sysdb * db), (db))                                                 \
  X(int, render_cursor, (lode_sysdb * db, int64_t *cursor, LODE__E), (db, cursor, err, errlen))   \
  X(int, render_set_cursor, (lode_sysdb * db, int64_t cursor, LODE__E),                           \
    (db, cursor, err, errlen))                                                                    \
  X(int, render_new,                                                                              \
    (lode_sysdb * db, int64_t after, int limit,                                                   \
     int (*fn)(void *ud, int64_t rowid, const char *id, int traced), void *ud, LODE__E),          \
    (db, after, limit, fn, ud, err, errlen))                                                      \
  X(int, render_open,                                                                             \
    (lode_sysdb * db,                                                                             \
     int (*fn)(void *ud, const char *id, int64_t steps_done, const char *owner), void *ud,        \
     LODE__E),                                                                                    \
    (db, fn, ud, err, errlen))                                                                    \
  X(int, render_steps,                                                                            \
    (lode_sysdb * db, const char *wf_id, int64_t after, int limit,                                \
     int (*fn)(void *ud, const lode_step_row *r), void *ud, LODE__E),                             \
    (db, wf_id, after, limit, fn, ud, err, errlen))                                               \
  X(int, trace_open_put, (lode_sysdb * db, const char *wf_id, int64_t steps_done, LODE__E),       \
    (db, wf_id, steps_done, err, errlen))                                                         \
  X(int, trace_open_advance, (lode_sysdb * db, const char *wf_id, int64_t steps_done, LODE__E),   \
    (db, wf_id, steps_done, err, errlen))                                                         \
  X(int, trace_open_close, (lode_sysdb * db, const char *wf_id, LODE__E),                         \
    (db, wf_id, err, errlen))                                                                     \
  X(int, trace_open_park, (lode_sysdb * db, const char *wf_id, const char *owner, LODE__E),       \
    (db, wf_id, owner, err, errlen))

typedef struct lode__sysdb_ops {
#define X(ret, name, params, args) ret(*name) params;
  LODE__SYSDB_OPS(X)
#undef X
} lode__sysdb_ops;

/* The first member of every backend's struct lode_sysdb. */
#define LODE__SYSDB_HEAD const lode__sysdb_ops *ops


/* SQLite (src/state/sqlite/): files; the process-wide fault and lock-wait
 * bookkeeping is SQLite's (PostgreSQL retries inside its backend). */
extern const lode__sysdb_ops lode__sqlite_ops;
int lode__sqlite_open(const char *path, int sync_full, lode_sysdb **out, LODE__E);
int lode__sqlite_open_readonly(const char *path, lode_sysdb **out, LODE__E);
/* PostgreSQL (src/state/postgres/): URLs. */
extern const lode__sysdb_ops lode__pg_ops;
int lode__pg_open(const char *url, int sync_full, lode_sysdb **out, LODE__E);
int lode__pg_open_readonly(const char *url, lode_sysdb **out, LODE__E);

#endif
