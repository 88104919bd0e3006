/* http.c - blocking HTTP requests over libcurl. */
#include "base/http.h"

#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct lode_http {
  CURL *curl;
  struct curl_slist *headers;
  int (*should_abort)(void *);
  void *abort_ud;
};

void lode_http_set_abort(lode_http *h, int (*should_abort)(void *), void *ud) {
  h->should_abort = should_abort;
  h->abort_ud = ud;
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d) {
  lode_http *h = ud;
  (void)a, (void)b, (void)c, (void)d;
  return h->should_abort && h->should_abort(h->abort_ud);
}

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;
/* curl_global_init is not thread-safe in older libcurl: run it exactly once. */
static void global_init(void) { global_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

lode_http *lode_http_new(char *err, size_t errlen) {
  pthread_once(&global_once, global_init);
  if (global_rc != CURLE_OK) {
    snprintf(err, errlen, "libcurl initialisation failed: %s", curl_easy_strerror(global_rc));
    return NULL;
  }
  lode_http *h = calloc(1, sizeof *h);
  if (!h || !(h->curl = curl_easy_init())) {
    free(h);
    snprintf(err, errlen, "out of memory creating an HTTP client");
    return NULL;
  }
  return h;
}

void lode_http_free(lode_http *h) {
  if (!h) return;
  curl_easy_cleanup(h->curl);
  curl_slist_free_all(h->headers);
  free(h);
}

int lode_http_set_headers(lode_http *h, const char *const *lines, int n) {
  struct curl_slist *l = NULL;
  for (int i = 0; i < n; i++) {
    struct curl_slist *nl = curl_slist_append(l, lines[i]);
    if (!nl) {
      curl_slist_free_all(l);
      return -1;
    }
    l = nl;
  }
  curl_slist_free_all(h->headers);
  h->headers = l;
  return 0;
}

double lode__http_parse_retry_after(const char *v) {
  while (*v && isspace((unsigned char)*v)) v++;
  if (!*v) return -1;
  if (isdigit((unsigned char)*v)) {
    char *end;
    double s = strtod(v, &end);
    while (*end && isspace((unsigned char)*end)) end++;
    return *end ? -1 : s;
  }
  time_t t = curl_getdate(v, NULL);
  if (t < 0) return -1;
  double d = difftime(t, time(NULL));
  return d < 0 ? 0 : d;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  lode_http_resp *r = ud;
  size_t len = size * n, room = LODE_HTTP_BODY_MAX - r->body_len;
  size_t c = len < room ? len : room;
  memcpy(r->body + r->body_len, p, c);
  r->body_len += c;
  r->body[r->body_len] = 0;
  return len; /* the rest is read and dropped: only the start is reported */
}

static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  lode_http_resp *r = ud;
  size_t len = size * n;
  static const char name[] = "retry-after:";
  if (len > sizeof name - 1 && len < 256 && !strncasecmp(p, name, sizeof name - 1)) {
    char v[256];
    memcpy(v, p + sizeof name - 1, len - (sizeof name - 1));
    v[len - (sizeof name - 1)] = 0;
    char *e = v + strlen(v);
    while (e > v && isspace((unsigned char)e[-1])) *--e = 0;
    r->retry_after_s = lode__http_parse_retry_after(v);
  }
  return len;
}

int lode_http_send(lode_http *h, const char *method, const char *url, const char *body,
                   size_t len, double timeout_s, lode_http_resp *resp) {
  CURL *c = h->curl;
  char ebuf[CURL_ERROR_SIZE];
  resp->status = 0;
  resp->retry_after_s = -1;
  resp->body_len = 0;
  resp->body[0] = 0;
  resp->error[0] = 0;
  ebuf[0] = 0;
  long ms = (long)(timeout_s * 1000);
  if (ms < 1) ms = 1;
  curl_easy_reset(c); /* keeps the connection cache, drops the last options */
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h->headers);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, resp);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L); /* we run on worker threads */
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, ms);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, ms < 10000 ? ms : 10000L);
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
  if (h->should_abort) {
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, h);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  }
  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    snprintf(resp->error, sizeof resp->error, "%s", ebuf[0] ? ebuf : curl_easy_strerror(rc));
    return -1;
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
  return 0;
}
