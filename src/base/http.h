#ifndef LODE_HTTP_H
#define LODE_HTTP_H
/* http.h - a small blocking HTTP client over libcurl, one per thread.
 *
 * Ownership: a lode_http owns its curl handle (kept alive between requests
 * so batches reuse the connection) and a copy of its headers. Never share one
 * between threads. Error texts come from curl and never contain headers, so
 * secrets in headers cannot leak through them. */
#include <stddef.h>

#define LODE_HTTP_BODY_MAX 4096 /* response bytes kept (for error reports) */

typedef struct lode_http lode_http;

typedef struct lode_http_resp {
  long status;                  /* HTTP status, 0 if no response */
  double retry_after_s;         /* Retry-After in seconds, < 0 if absent */
  char body[LODE_HTTP_BODY_MAX + 1]; /* first bytes of the response body */
  size_t body_len;
  char error[256];              /* transport error when status is 0 */
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
/* Parses a Retry-After value (seconds or HTTP date) relative to now; < 0 if
 * unparsable. */
double lode__http_parse_retry_after(const char *v);
#endif
