#ifndef LODE_TRACE_RENDER_H
#define LODE_TRACE_RENDER_H
/* render.h - the spans of workflows and steps, rendered from their rows.
 *
 * Workflow and step spans are not written as separate records on the
 * engine's hot path: the workflow row and each step's checkpoint row carry
 * what their span needs (same commit, no extra index writes;
 * docs/tracing.md, "Local store"). The renderer turns those rows into trace
 * records later, in batches, for the exporter, `lode export` and `lode
 * trace`. It reads plain rows (state/sysdb.h, state/render_rows.h) and
 * writes records (trace.h); it knows nothing of the engine.
 *
 * Ownership: inputs are borrowed; returned strings are malloc'd and the
 * caller frees them. */
#include <stddef.h>
#include <stdint.h>

#include "state/sysdb.h"

/* Trace attributes of a workflow (docs/tracing.md, "The shape of a run"). */
typedef struct lode_wf_trace {
  const char *const *tags; /* user tags: on the trace of a top-level run */
  int ntags;
  const char *metadata_json; /* user metadata, a JSON object (or NULL) */
  const char *phase;         /* top-level runs only: metadata `phase`, tag `phase:X` */
} lode_wf_trace;

/* What `lode.trace.update` added to a workflow's own span. */
typedef struct lode_span_extra {
  const char *metadata_json; /* merged over lode's own metadata */
  const char *const *tags;
  int ntags;
  const char *input_json, *output_json, *usage_json, *model, *provider, *type;
} lode_span_extra;

/* The workflow row's trace_extra (lode_wf_row.trace_extra):
 * {"tags":[..],"metadata":"{..}","phase":"..","x":{<lode.trace.update>}}, or
 * NULL when there is nothing to keep (the common case) or out of memory.
 * t and x may be NULL. */
char *lode_trace_extra_json(const lode_wf_trace *t, const lode_span_extra *x);

/* Renders what is new in the rows into the trace store (trace_records, the
 * exporter's outbox), at most `max` records in one transaction; *more is
 * set when work is left. Safe from any process (it takes the write lock).
 * Idempotent in effect: a record is rendered once per version (open, then
 * final). */
int lode_trace_materialize(lode_sysdb *db, int max, int *more, char *err, size_t errlen);

/* A step span's metadata: {"workflow_id", "step", "attempts",
 * "recovery_attempts"} as a malloc'd JSON object (NULL if out of memory);
 * written the same way whether the span is written at the step or rendered
 * from its checkpoint later. */
char *lode_step_span_meta(const char *wf_id, int64_t step_no, int attempts, int recovery);

/* JSON for a span's input/output from an encoded value (args: an argument
 * list). Strings are cut at LODE_SPAN_MAX_STR bytes and tables once about
 * LODE_SPAN_MAX_JSON bytes are written, with markers (base/codec.h), so a
 * huge value costs no more than its preview. Returns a malloc'd string, or
 * NULL. */
#define LODE_SPAN_MAX_STR 4096
#define LODE_SPAN_MAX_JSON (32 * 1024)
char *lode_span_json(const uint8_t *p, size_t n, int args);

#endif
