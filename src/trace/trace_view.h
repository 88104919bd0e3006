#ifndef LODE_TRACE_VIEW_H
#define LODE_TRACE_VIEW_H
/* trace_view.h - rendering a trace tree from the local trace store.
 *
 * Ownership: the caller owns `out` (an initialised lode_buf) and the db. */
#include <stddef.h>

#include "base/buf.h"
#include "state/sysdb.h"

/* Renders trace `trace_id` as a tree (text as drawn in docs/tracing.md, or JSON
 * when json != 0) into `out`. root_span_id limits it to that span's subtree;
 * NULL shows every root of the trace. Spans whose parent is not recorded are
 * shown as roots, marked "(parent missing)". Returns 0, 1 if the trace has no
 * records, -1 on error. */
int lode_trace_render(lode_sysdb *db, const char *trace_id, const char *root_span_id, int json,
                      lode_buf *out, char *err, size_t errlen);
/* What `lode trace` shows (docs/tracing.md, "lode trace"). Zero: everything,
 * as text, long runs of same-named siblings folded. */
typedef struct lode_trace_view {
  int json;              /* the whole structure, with inputs, outputs, metadata */
  int depth;             /* > 0: that many levels */
  int errors;            /* failed spans and their ancestors only */
  const char *name_glob; /* spans whose name matches and their ancestors */
  int slowest;           /* > 0: the K longest spans, flat */
  const char *span_id;   /* one span whole (each part cut unless full) */
  int full;
  int all; /* no folding */
} lode_trace_view;
/* As lode_trace_render, with the view's options; 2 if span_id is unknown. */
int lode_trace_render_view(lode_sysdb *db, const char *trace_id, const char *root_span_id,
                           const lode_trace_view *view, lode_buf *out, char *err,
                           size_t errlen);
/* `lode trace --html`: one self-contained page (no network) with the
 * trace's spans: a waterfall, a tree, details, search. opik_url (may be
 * NULL) links the trace in Opik. Returns 0, 1 if the trace has no records,
 * -1 on error. */
int lode_trace_html(lode_sysdb *db, const char *trace_id, const char *root_span_id,
                    const char *opik_url, lode_buf *out, char *err, size_t errlen);
/* Formats a duration for humans: 850ms, 1.25s, 2m05s, 1h02m. */
void lode_trace_fmt_duration(long long ms, char out[32]);
#endif
