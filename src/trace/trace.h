#ifndef LODE_TRACE_H
#define LODE_TRACE_H
/* trace.h - Opik trace, span and feedback records.
 *
 * Every record is ALWAYS stored locally in the state database's
 * `trace_records` (state/trace_store.h; that is what `lode trace` reads); the
 * exporter (trace_export.h) sends pending rows to Opik. This module builds
 * the records' bodies; the put functions hand the finished rows to the state
 * database inside the caller's open transaction (they never BEGIN or
 * COMMIT), so a record commits atomically with the checkpoint it describes.
 *
 * Ownership: callers keep ownership of every string they pass; nothing is
 * retained after a call returns. Strings need not be valid UTF-8 (Lua strings
 * are bytes): invalid sequences are stored and sent as U+FFFD. `body` in the table is the JSON object sent
 * to Opik minus the envelope fields the exporter adds at send time
 * (`project_name`, `last_updated_at`), so a project rename or a retry never
 * needs the record rebuilt. */
#include <stddef.h>
#include <stdint.h>

#include "state/sysdb.h"
#include "state/trace_store.h"

/* input/output/metadata JSON longer than this is truncated (with a marker and
 * the original size), never dropped: Opik and the per-request cap need
 * bounded records. */
#define LODE_TRACE_MAX_VALUE_BYTES ((size_t)256 << 10)

typedef struct lode_span_rec {
  const char *id, *trace_id, *parent_span_id; /* UUIDv7 strings; parent NULL = root span */
  const char *name, *type;                    /* "general" (default), "tool", "llm", "guardrail" */
  int64_t start_ms, end_ms;                   /* epoch ms; end_ms 0 = still running */
  const char *input_json, *output_json;       /* any JSON text or NULL; non-objects are
                                                 wrapped as {"input": v} / {"output": v} */
  const char *metadata_json;                  /* JSON object text or NULL */
  const char *const *tags;
  int ntags;
  const char *error_type, *error_message, *error_traceback; /* -> error_info, NULL if none */
  const char *usage_json, *model, *provider;  /* optional (LLM/embedding spans) */
} lode_span_rec;

typedef struct lode_trace_rec {
  const char *id, *name;
  int64_t start_ms, end_ms;
  const char *input_json, *output_json, *metadata_json;
  const char *const *tags;
  int ntags;
  const char *error_type, *error_message, *error_traceback;
} lode_trace_rec;

/* Upserts the record (by id), marking it pending for export (or `disabled`
 * when OPIK_TRACK_DISABLE is set, see lode_trace_set_disabled), with
 * updated_at = now, strictly increasing per id. The upsert is prepared once
 * per connection, so these serve hot paths too. Returns 0 or -1 with `err`
 * naming the record. */
int lode_trace_put_span(lode_sysdb *db, const lode_span_rec *s, char *err, size_t errlen);
int lode_trace_put_trace(lode_sysdb *db, const lode_trace_rec *t, char *err, size_t errlen);
/* Feedback score on a trace (lode.trace.feedback): name, value, reason (may be
 * NULL). One score per (trace, name): a later call replaces it, as in Opik. */
int lode_trace_put_feedback(lode_sysdb *db, const char *trace_id, const char *name,
                            double value, const char *reason, char *err, size_t errlen);

/* Whether new records are stored as `disabled` (never sent, not even by
 * `lode export`). By default this follows OPIK_TRACK_DISABLE / the config file,
 * read once; 0 or 1 forces it, -1 goes back to the configuration. */
void lode_trace_set_disabled(int disabled);
int lode_trace_disabled(void);
/* Row states: LODE_TRACE_PENDING ... in state/trace_store.h. */
#endif
