#ifndef LODE_TRACE_EXPORT_H
#define LODE_TRACE_EXPORT_H
/* trace_export.h - delivering pending trace records to Opik.
 *
 * Each round first renders the spans of workflows and steps kept in their
 * checkpoint rows into the outbox (lode_trace_materialize, render.h): at
 * most every 100 ms while a run goes on, always when flushing. A commit's
 * kick starts a round 50 ms later, so a busy run's records go in batches.
 *
 * Records go, oldest state first, in batches of at most 1000 items and
 * LODE_EXPORT_MAX_BYTES per request: traces to POST <url>/v1/private/traces/batch,
 * then spans to POST <url>/v1/private/spans/batch, then feedback scores to
 * PUT <url>/v1/private/traces/feedback-scores. Each trace and span carries
 * `project_name` and `last_updated_at` (Opik keeps the newest version).
 * 429, 5xx, 408 and network failures are retried with exponential backoff and
 * jitter, honouring Retry-After. Any other 4xx splits the batch in halves until
 * the bad records are alone; those are marked `failed` with the response and
 * never retried automatically (`lode export --retry-failed` does it).
 * 401 and 403 are a configuration error (the key or workspace was refused):
 * nothing is marked, nothing more is sent by that exporter, a warning says
 * where the key came from; every record stays pending.
 * A row is marked sent only if its `rev` is unchanged, so a newer version
 * written during the request stays pending.
 *
 * Ownership: the exporter owns its thread, its state database connection and a copy
 * of the configuration; the caller's config may be freed after start. */
#include <stddef.h>

#include "trace/opik_config.h"
#include "trace/otlp_config.h"

#define LODE_EXPORT_MAX_ITEMS 1000
#define LODE_EXPORT_MAX_BYTES ((size_t)4 << 20)
/* A record larger than LODE_EXPORT_MAX_BYTES goes alone in its request; one
 * larger than this (what one request can hold) is never sent: it is marked
 * failed with a last_error saying so, and the others go on. */
#define LODE_EXPORT_MAX_RECORD_BYTES (LODE_EXPORT_MAX_BYTES * 4 - ((size_t)64 << 10))

typedef struct lode_exporter lode_exporter;

/* Starts the background exporter on its own connection to `db_path`.
 * When cfg does not send (no URL, or tracking disabled) the exporter is inert:
 * no thread, kick does nothing and stop returns 0. NULL on error. */
lode_exporter *lode_exporter_start(const char *db_path, const lode_opik_config *cfg, char *err,
                                   size_t errlen);
/* The same for the OTLP destination (its own delivery state in the outbox,
 * its own thread and connection): finished spans as OTLP/HTTP protobuf
 * requests (otlp.h) to cfg->url, with the same retries, splitting of
 * rejected batches and rev checks; a span still open is not sent (its
 * final version is). Inert when cfg does not send. */
lode_exporter *lode_exporter_start_otlp(const char *db_path, const lode_otlp_config *cfg,
                                        char *err, size_t errlen);
/* New records were committed: deliver them soon. Thread-safe. */
void lode_exporter_kick(lode_exporter *ex);
/* Waits up to flush_timeout_s for pending records to be delivered, stops the
 * thread and frees everything. Returns how many records are left pending (they
 * stay for the next run or `lode export`). NULL is accepted (returns 0). */
int lode_exporter_stop(lode_exporter *ex, double flush_timeout_s);
/* The same; when records are left, `cause` (may be NULL) gets why the last
 * attempt failed ("network: Couldn't connect to server ...", "HTTP 503:
 * ...") or "" when none failed. A destination seen failing that way is
 * given at most LODE_EXPORT_GRACE_MS more at the stop, whatever
 * flush_timeout_s says: the records stay for later (docs/tracing.md,
 * "Outages, retries and the exit"). */
#define LODE_EXPORT_GRACE_MS 1000
/* Starts the stop (the flush with its deadline) without waiting, so that
 * several exporters flush at once; lode_exporter_stop* then waits. */
void lode_exporter_stop_begin(lode_exporter *ex, double flush_timeout_s);
int lode_exporter_stop_why(lode_exporter *ex, double flush_timeout_s, char *cause,
                           size_t causelen);

typedef struct lode_export_stats {
  int sent;      /* rows marked sent by this call */
  int failed;    /* rows marked failed by this call */
  int pending;   /* rows still pending at the end */
  int requests;  /* HTTP requests made */
  long refused;  /* 401 or 403: the key or workspace was refused; nothing was
                    marked, err says so (the call still returns 0) */
  char cause[512]; /* with pending: why the last attempt failed (network
                      error, HTTP status and body), "" if none did */
} lode_export_stats;

/* Synchronous delivery (used by `lode export`): sends until nothing is
 * pending or timeout_s passes. Returns 0 (see stats) or -1 on a setup error. */
int lode_export_flush(const char *db_path, const lode_opik_config *cfg, double timeout_s,
                      lode_export_stats *stats, char *err, size_t errlen);
/* The same for the OTLP destination. */
int lode_export_flush_otlp(const char *db_path, const lode_otlp_config *cfg, double timeout_s,
                           lode_export_stats *stats, char *err, size_t errlen);
#endif
