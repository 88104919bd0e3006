#ifndef LODE_TRACE_CTX_H
#define LODE_TRACE_CTX_H
/* trace_ctx.h - trace context across process boundaries (docs/tracing.md,
 * "Joining a caller's trace" and "Headers"): reading a caller's context
 * (Opik's distributed-trace headers, W3C traceparent and baggage) and
 * writing the context of a running span for the services it calls.
 *
 * Ids: lode's trace and span ids are UUIDv7 strings. The W3C / OTLP trace id
 * is the UUID's 16 bytes; the W3C / OTLP span id is the UUID's last 8 bytes
 * (its 62 random bits and the variant), so the traceparent of a span reads
 * 00-<trace uuid without dashes>-<last 16 hex digits of the span uuid>-01.
 *
 * Ownership: everything here is fixed-size and caller-owned; no allocation. */
#include <stddef.h>
#include <stdint.h>

#define LODE_BAGGAGE_MAX 8192 /* W3C baggage: at most 8192 bytes */

/* 0 when s is a UUID (8-4-4-4-12 hex) of version 7 with the RFC variant,
 * with its bytes in out (may be NULL); -1 otherwise. */
int lode_uuid7_parse(const char *s, uint8_t out[16]);
/* The OTLP ids of lode's ids (the rule above); -1 when not a UUID. */
int lode_otlp_trace_id(const char *uuid, uint8_t out[16]);
int lode_otlp_span_id(const char *uuid, uint8_t out[8]);

/* A W3C traceparent: 0 when valid (version 00 with exactly 55 characters,
 * or a later version other than ff with at least 55; lower-case hex; ids
 * not all zero), with the ids' bytes; -1 otherwise. */
int lode_traceparent_parse(const char *s, uint8_t trace_id[16], uint8_t span_id[8],
                           uint8_t *flags);

/* A caller's context, once checked. Empty strings: not given (or refused). */
typedef struct lode_trace_ctx {
  char trace_id[37];       /* the lode/Opik trace to join: the Opik header, else a
                              traceparent whose trace id is a UUIDv7; "" = lode's own */
  char parent_span_id[37]; /* Opik's parent span (opik_parent_span_id) */
  char traceparent[64];    /* the caller's traceparent, normalised */
  char baggage[LODE_BAGGAGE_MAX + 1]; /* the caller's baggage, checked */
} lode_trace_ctx;

/* Reads a caller's context from its carriers (each may be NULL). Anything
 * malformed is ignored with a warning naming `where` and the carrier; an id
 * that is not a UUIDv7 is never taken as one. Opik's pair is taken from the
 * opik_* arguments, else from baggage members of the same names. Returns
 * 1 when some context was taken, 0 when none. */
int lode_trace_ctx_read(lode_trace_ctx *c, const char *where, const char *traceparent,
                        const char *baggage, const char *opik_trace_id,
                        const char *opik_parent_span_id);

/* The caller's context this process joins (`lode run --trace-context`, or
 * TRACEPARENT / BAGGAGE / OPIK_TRACE_ID / OPIK_PARENT_SPAN_ID): new
 * top-level workflows start in it. Set once before threads start; NULL
 * clears. lode_trace_joined: NULL when none. */
void lode_trace_join(const lode_trace_ctx *c);
const lode_trace_ctx *lode_trace_joined(void);

/* The headers that carry a span's context out (lode.http,
 * lode.trace.headers): traceparent, baggage (opik_trace_id and
 * opik_parent_span_id, then the joined caller's other members), and Opik's
 * opik_trace_id / opik_parent_span_id. names/values point into `h`. */
#define LODE_CTX_HEADERS 4
typedef struct lode_ctx_headers {
  const char *name[LODE_CTX_HEADERS];
  const char *value[LODE_CTX_HEADERS];
  char traceparent[64], trace_id[37], span_id[37];
  char baggage[LODE_BAGGAGE_MAX + 128];
} lode_ctx_headers;
/* 0, or -1 when the ids are not UUIDs (nothing is filled then). */
int lode_ctx_headers_make(lode_ctx_headers *h, const char *trace_id, const char *span_id);
#endif
