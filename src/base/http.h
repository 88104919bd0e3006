#ifndef LODE_HTTP_H
#define LODE_HTTP_H
/* http.h - lode's one HTTP client, over libcurl: a blocking client (one
 * request at a time, the connection kept between requests: the trace
 * exporter) and a batch (several requests in flight at once: the OpenAI
 * embedder). libcurl's global set-up runs once per process, here.
 *
 * Ownership: a lode_http owns its curl handle (kept alive between requests
 * so batches reuse the connection) and a copy of its headers; a
 * lode_http_batch owns its transfers and copies of their headers. Never share
 * either between threads. Error texts come from curl and never contain
 * headers, so secrets in headers cannot leak through them. */
#include <stddef.h>

#include "base/buf.h"

#define LODE_HTTP_BODY_MAX 4096 /* response bytes kept (for error reports) */

typedef struct lode_http lode_http;

typedef struct lode_http_resp {
  long status;                  /* HTTP status, 0 if no response */
  double retry_after_s;         /* Retry-After in seconds, < 0 if absent */
  char body[LODE_HTTP_BODY_MAX + 1]; /* first bytes of the response body */
  size_t body_len;
  char error[256];              /* transport error when status is 0 */
  int permanent;                /* a transport error that retrying cannot mend
                                   (bad URL, unsupported scheme, TLS trust) */
} lode_http_resp;

lode_http *lode_http_new(char *err, size_t errlen);
void lode_http_free(lode_http *h);
/* Replaces the extra request headers ("Name: value" lines). 0 or -1. */
int lode_http_set_headers(lode_http *h, const char *const *lines, int n);
/* Optional: called during transfers; returning nonzero aborts the request
 * (used so a stopping exporter does not wait out a slow server). */
void lode_http_set_abort(lode_http *h, int (*should_abort)(void *), void *ud);
/* Sends one request and waits up to timeout_s. Returns 0 when a response
 * arrived (any status), -1 on a transport failure (resp->error says why). */
int lode_http_send(lode_http *h, const char *method, const char *url, const char *body,
                   size_t len, double timeout_s, lode_http_resp *resp);
/* A batch: requests run concurrently, at most max_connections at a time;
 * each response body is collected whole into a buffer the caller owns (its
 * cap bounds it: a larger body fails the request). */
typedef struct lode_http_batch lode_http_batch;
typedef struct lode_http_req {
  const char *method, *url;
  const char *const *headers; /* "Name: value" lines */
  int nheaders;
  const char *body;
  size_t len;
  double timeout_s, connect_timeout_s; /* connect_timeout_s 0: min(timeout_s, 10) */
  const char *user_agent;              /* NULL: libcurl's */
  /* optional: */
  int max_redirects;       /* > 0: follow up to this many (http/https only) */
  const char *ca_file;     /* PEM bundle trusted instead of the system's;
                              verification itself is never turned off */
  lode_buf *resp_headers;  /* the last response's header lines (its cap bounds them) */
} lode_http_req;

lode_http_batch *lode_http_batch_new(int max_connections, char *err, size_t errlen);
void lode_http_batch_free(lode_http_batch *b);
/* Starts a request whose body goes to *out (reset first); `ud` comes back
 * with its outcome. The request's strings must outlive the transfer. 0 or
 * -1 (err filled). */
int lode_http_batch_add(lode_http_batch *b, const lode_http_req *r, lode_buf *out, void *ud,
                        char *err, size_t errlen);
/* Transfers for up to wait_s seconds; returns 1 with *ud and *resp set for
 * one finished request (status or transport error; resp->body is unused,
 * the body is in the request's buffer), 0 when none finished meanwhile, -1
 * on a libcurl failure (err filled). */
int lode_http_batch_next(lode_http_batch *b, double wait_s, void **ud, lode_http_resp *resp,
                         char *err, size_t errlen);
/* Requests started and not yet returned by lode_http_batch_next. */
int lode_http_batch_running(const lode_http_batch *b);

/* Parses a Retry-After value (seconds or HTTP date) relative to now; < 0 if
 * unparsable. */
double lode__http_parse_retry_after(const char *v);
#endif
