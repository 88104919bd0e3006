#ifndef LODE_STATE_RENDER_ROWS_H
#define LODE_STATE_RENDER_ROWS_H
/* render_rows.h - what the trace renderer (src/trace/render.c) reads and
 * records in the state database (docs/tracing.md, "Local store"):
 *
 *   trace_cursor  the last workflows rowid seen (rowids grow in commit
 *                 order; workflow rows are never deleted);
 *   trace_open    workflows whose spans are not final yet, with the last
 *                 step rendered and, for one left PENDING by a dead
 *                 process, the owner it was parked under.
 *
 * The renderer calls these inside one transaction per pass
 * (lode_sysdb_begin/commit). Rows handed to callbacks point into the
 * database's buffers and are valid only during the call; fn returns
 * non-zero to stop. All functions return a lode_status_code and fill err. */
#include <stddef.h>
#include <stdint.h>

#include "state/sysdb.h"

/* Is there anything to render? A read, so an idle exporter never takes the
 * write lock. 1 when unsure (an error). */
int lode_sysdb_render_pending(lode_sysdb *db);

/* The cursor (0 before the first pass). */
int lode_sysdb_render_cursor(lode_sysdb *db, int64_t *cursor, char *err, size_t errlen);
int lode_sysdb_render_set_cursor(lode_sysdb *db, int64_t cursor, char *err, size_t errlen);
/* Workflows recorded after rowid `after`, in rowid order, at most limit;
 * traced: the row says its spans are rendered from it. */
int lode_sysdb_render_new(lode_sysdb *db, int64_t after, int limit,
                          int (*fn)(void *ud, int64_t rowid, const char *id, int traced), void *ud,
                          char *err, size_t errlen);

/* The open workflows worth a look: not ENQUEUED, and not parked under an
 * owner that still holds it. owner: a PENDING workflow's executor, else NULL. */
int lode_sysdb_render_open(lode_sysdb *db,
                           int (*fn)(void *ud, const char *id, int64_t steps_done,
                                     const char *owner),
                           void *ud, char *err, size_t errlen);

/* A workflow's steps after step `after`, in order, at most limit. A step
 * whose span is not kept in its row (written with its checkpoint, or none)
 * comes with only step_no set and span_input NULL; its output is not read.
 * Otherwise every field is set (span_input "" when the span has no input). */
int lode_sysdb_render_steps(lode_sysdb *db, const char *wf_id, int64_t after, int limit,
                            int (*fn)(void *ud, const lode_step_row *r), void *ud, char *err,
                            size_t errlen);

/* trace_open: a workflow is opened (or opened again, unparked) with its
 * progress, advanced, closed once its final span is rendered, or parked
 * under the dead owner it was left by. */
int lode_sysdb_trace_open_put(lode_sysdb *db, const char *wf_id, int64_t steps_done, char *err,
                              size_t errlen);
int lode_sysdb_trace_open_advance(lode_sysdb *db, const char *wf_id, int64_t steps_done,
                                  char *err, size_t errlen);
int lode_sysdb_trace_open_close(lode_sysdb *db, const char *wf_id, char *err, size_t errlen);
int lode_sysdb_trace_open_park(lode_sysdb *db, const char *wf_id, const char *owner, char *err,
                               size_t errlen);

#endif
