#ifndef LODE_OTLP_H
#define LODE_OTLP_H
/* otlp.h - OTLP/HTTP encoding of trace records (docs/tracing.md, "OpenTelemetry
 * (OTLP)"): span records, as stored for Opik (their JSON bodies), become one
 * ExportTraceServiceRequest in binary protobuf.
 *
 * The mapping: trace id = the 16 bytes of the UUIDv7 trace id; span ids by
 * the rule of trace_ctx.h (the UUID's last 8 bytes); every span carries
 * opik.trace_id, opik.span_id and opik.parent_span_id (the ids as Opik has
 * them); error_info becomes status ERROR and an `exception` event with the
 * traceback; usage, model and provider become gen_ai.* attributes; the
 * workflow id, step number and attempts become lode.* attributes; the
 * resource has service.name and OTEL_RESOURCE_ATTRIBUTES. A root span that
 * joined a caller (its metadata has caller_traceparent) gets the caller's
 * span as parent when the trace ids agree, else a link to it.
 *
 * Ownership: an encoder owns its parsed records and buffers until reset or
 * free; the config is copied. */
#include <stddef.h>

#include "base/buf.h"
#include "trace/otlp_config.h"

typedef struct lode_otlp_enc lode_otlp_enc;

lode_otlp_enc *lode_otlp_enc_new(const lode_otlp_config *cfg);
void lode_otlp_enc_free(lode_otlp_enc *e);
/* Starts a new request. */
void lode_otlp_enc_reset(lode_otlp_enc *e);
/* Adds a span record's body. Returns 1 when added, 0 when skipped (a span
 * still open: OTLP spans are final, its closed version comes later), -1
 * when the body cannot be read or memory ran out. */
int lode_otlp_enc_add(lode_otlp_enc *e, const char *body, size_t len);
/* Spans added since the reset. */
int lode_otlp_enc_count(const lode_otlp_enc *e);
/* Packs the request into out (reset first). 0 or -1 (too big for out's cap,
 * or out of memory). */
int lode_otlp_enc_pack(lode_otlp_enc *e, lode_buf *out);
#endif
