/* http.c - HTTP requests over libcurl, which is opened with dlopen the first
 * time a client or batch is made (or a Retry-After date is parsed), not
 * linked: libcurl and the thirty libraries it pulls in (TLS, Kerberos, LDAP,
 * SSH, IDN, compression) cost every `lode` process several milliseconds to
 * load, and most runs send nothing (docs/architecture.md#start-up). The
 * soname is the one the build found (LODE_CURL_SONAME). */
#include "base/http.h"

#include <ctype.h>
#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/util.h"

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

/* The libcurl functions this file calls, resolved once. */
static struct {
  CURLcode (*global_init)(long);
  const char *(*easy_strerror)(CURLcode);
  CURL *(*easy_init)(void);
  void (*easy_cleanup)(CURL *);
  void (*easy_reset)(CURL *);
  CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
  CURLcode (*easy_perform)(CURL *);
  CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
  struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
  void (*slist_free_all)(struct curl_slist *);
  time_t (*getdate)(const char *, const time_t *);
  CURLM *(*multi_init)(void);
  CURLMcode (*multi_setopt)(CURLM *, CURLMoption, ...);
  CURLMcode (*multi_add_handle)(CURLM *, CURL *);
  CURLMcode (*multi_remove_handle)(CURLM *, CURL *);
  CURLMcode (*multi_perform)(CURLM *, int *);
  CURLMsg *(*multi_info_read)(CURLM *, int *);
  CURLMcode (*multi_poll)(CURLM *, struct curl_waitfd *, unsigned int, int, int *);
  CURLMcode (*multi_cleanup)(CURLM *);
  char why[256]; /* empty once libcurl is loaded and initialised */
} cu;
static pthread_once_t global_once = PTHREAD_ONCE_INIT;

/* Loads libcurl and runs its global set-up, exactly once (curl_global_init
 * is not thread-safe in older libcurl). */
static void global_init(void) {
  void *h = dlopen(LODE_CURL_SONAME, RTLD_NOW | RTLD_LOCAL); /* never closed */
  if (!h) {
    const char *e = dlerror();
    snprintf(cu.why, sizeof cu.why, "libcurl is not available: %s",
             e ? e : LODE_CURL_SONAME " not found");
    return;
  }
  /* POSIX: a void * from dlsym converts to a function pointer */
#define CU_SYM(f)                                          \
  do {                                                     \
    *(void **)&cu.f = dlsym(h, "curl_" #f);                \
    if (!cu.f && !cu.why[0])                               \
      snprintf(cu.why, sizeof cu.why, "%s lacks curl_%s", LODE_CURL_SONAME, #f); \
  } while (0)
  CU_SYM(global_init);
  CU_SYM(easy_strerror);
  CU_SYM(easy_init);
  CU_SYM(easy_cleanup);
  CU_SYM(easy_reset);
  CU_SYM(easy_setopt);
  CU_SYM(easy_perform);
  CU_SYM(easy_getinfo);
  CU_SYM(slist_append);
  CU_SYM(slist_free_all);
  CU_SYM(getdate);
  CU_SYM(multi_init);
  CU_SYM(multi_setopt);
  CU_SYM(multi_add_handle);
  CU_SYM(multi_remove_handle);
  CU_SYM(multi_perform);
  CU_SYM(multi_info_read);
  CU_SYM(multi_poll);
  CU_SYM(multi_cleanup);
#undef CU_SYM
  if (cu.why[0]) return;
  CURLcode rc = cu.global_init(CURL_GLOBAL_DEFAULT);
  if (rc != CURLE_OK)
    snprintf(cu.why, sizeof cu.why, "libcurl initialisation failed: %s", cu.easy_strerror(rc));
}

/* 0 when libcurl is ready, else -1 with the reason in err. */
static int curl_ready(char *err, size_t errlen) {
  pthread_once(&global_once, global_init);
  if (!cu.why[0]) return 0;
  snprintf(err, errlen, "%s", cu.why);
  return -1;
}

lode_http *lode_http_new(char *err, size_t errlen) {
  if (curl_ready(err, errlen) != 0) return NULL;
  lode_http *h = calloc(1, sizeof *h);
  if (!h || !(h->curl = cu.easy_init())) {
    free(h);
    snprintf(err, errlen, "out of memory creating an HTTP client");
    return NULL;
  }
  return h;
}

void lode_http_free(lode_http *h) {
  if (!h) return;
  cu.easy_cleanup(h->curl);
  cu.slist_free_all(h->headers);
  free(h);
}

int lode_http_set_headers(lode_http *h, const char *const *lines, int n) {
  struct curl_slist *l = NULL;
  for (int i = 0; i < n; i++) {
    struct curl_slist *nl = cu.slist_append(l, lines[i]);
    if (!nl) {
      cu.slist_free_all(l);
      return -1;
    }
    l = nl;
  }
  cu.slist_free_all(h->headers);
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
  char e[sizeof cu.why];
  if (curl_ready(e, sizeof e) != 0) return -1;
  time_t t = cu.getdate(v, NULL);
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

/* Reads Retry-After from one header line into *retry_after_s. */
static void header_line(const char *p, size_t len, double *retry_after_s) {
  static const char name[] = "retry-after:";
  if (len > sizeof name - 1 && len < 256 && !strncasecmp(p, name, sizeof name - 1)) {
    char v[256];
    memcpy(v, p + sizeof name - 1, len - (sizeof name - 1));
    v[len - (sizeof name - 1)] = 0;
    char *e = v + strlen(v);
    while (e > v && isspace((unsigned char)e[-1])) *--e = 0;
    *retry_after_s = lode__http_parse_retry_after(v);
  }
}

static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  lode_http_resp *r = ud;
  header_line(p, size * n, &r->retry_after_s);
  return size * n;
}

static int permanent_error(CURLcode cc) {
  switch (cc) {
  case CURLE_UNSUPPORTED_PROTOCOL:
  case CURLE_URL_MALFORMAT:
  case CURLE_NOT_BUILT_IN:
  case CURLE_OUT_OF_MEMORY:
  case CURLE_WRITE_ERROR:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_PEER_FAILED_VERIFICATION:
    return 1;
  default:
    return 0;
  }
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
  resp->permanent = 0;
  ebuf[0] = 0;
  long ms = (long)(timeout_s * 1000);
  if (ms < 1) ms = 1;
  cu.easy_reset(c); /* keeps the connection cache, drops the last options */
  cu.easy_setopt(c, CURLOPT_URL, url);
  cu.easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  cu.easy_setopt(c, CURLOPT_POSTFIELDS, body);
  cu.easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  cu.easy_setopt(c, CURLOPT_HTTPHEADER, h->headers);
  cu.easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  cu.easy_setopt(c, CURLOPT_WRITEDATA, resp);
  cu.easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  cu.easy_setopt(c, CURLOPT_HEADERDATA, resp);
  cu.easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
  cu.easy_setopt(c, CURLOPT_NOSIGNAL, 1L); /* we run on worker threads */
  cu.easy_setopt(c, CURLOPT_TIMEOUT_MS, ms);
  cu.easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, ms < 10000 ? ms : 10000L);
  cu.easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
  if (h->should_abort) {
    cu.easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    cu.easy_setopt(c, CURLOPT_XFERINFODATA, h);
    cu.easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  }
  CURLcode rc = cu.easy_perform(c);
  if (rc != CURLE_OK) {
    snprintf(resp->error, sizeof resp->error, "%s", ebuf[0] ? ebuf : cu.easy_strerror(rc));
    resp->permanent = permanent_error(rc);
    return -1;
  }
  cu.easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
  return 0;
}

/* ---- batches ------------------------------------------------------------------ */

typedef struct transfer {
  CURL *curl;
  struct curl_slist *headers;
  lode_buf *out;
  lode_buf *hdrs; /* response header lines (the last response's), or NULL */
  void *ud;
  int overflow; /* the body outgrew its buffer */
  double retry_after_s;
  char ebuf[CURL_ERROR_SIZE];
  struct transfer *next;
} transfer;

struct lode_http_batch {
  CURLM *multi;
  transfer *live; /* started, not yet returned */
  int running;
};


lode_http_batch *lode_http_batch_new(int max_connections, char *err, size_t errlen) {
  if (curl_ready(err, errlen) != 0) return NULL;
  lode_http_batch *b = calloc(1, sizeof *b);
  if (!b || !(b->multi = cu.multi_init())) {
    free(b);
    snprintf(err, errlen, "out of memory creating an HTTP batch");
    return NULL;
  }
  if (max_connections > 0)
    cu.multi_setopt(b->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)max_connections);
  return b;
}

static void transfer_free(lode_http_batch *b, transfer *t) {
  cu.multi_remove_handle(b->multi, t->curl);
  cu.easy_cleanup(t->curl);
  cu.slist_free_all(t->headers);
  free(t);
}

void lode_http_batch_free(lode_http_batch *b) {
  if (!b) return;
  while (b->live) {
    transfer *t = b->live;
    b->live = t->next;
    transfer_free(b, t);
  }
  cu.multi_cleanup(b->multi);
  free(b);
}

int lode_http_batch_running(const lode_http_batch *b) { return b->running; }

static size_t on_batch_body(char *p, size_t size, size_t n, void *ud) {
  transfer *t = ud;
  if (lode_buf_append(t->out, p, size * n) != 0) {
    t->overflow = 1;
    return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
  }
  return size * n;
}

static size_t on_batch_header(char *p, size_t size, size_t n, void *ud) {
  transfer *t = ud;
  header_line(p, size * n, &t->retry_after_s);
  if (t->hdrs) {
    /* a redirect's response is followed by the next one's: keep the last */
    if (size * n >= 5 && !strncmp(p, "HTTP/", 5)) lode_buf_reset(t->hdrs);
    if (lode_buf_append(t->hdrs, p, size * n)) return 0; /* too many: abort */
  }
  return size * n;
}

int lode_http_batch_add(lode_http_batch *b, const lode_http_req *r, lode_buf *out, void *ud,
                        char *err, size_t errlen) {
  transfer *t = calloc(1, sizeof *t);
  if (!t || !(t->curl = cu.easy_init())) goto oom;
  for (int i = 0; i < r->nheaders; i++) {
    struct curl_slist *l = cu.slist_append(t->headers, r->headers[i]);
    if (!l) goto oom;
    t->headers = l;
  }
  lode_buf_reset(out);
  t->out = out;
  t->hdrs = r->resp_headers;
  if (t->hdrs) lode_buf_reset(t->hdrs);
  t->ud = ud;
  t->retry_after_s = -1;
  long ms = (long)(r->timeout_s * 1000);
  if (ms < 1) ms = 1;
  double cts = r->connect_timeout_s > 0 ? r->connect_timeout_s
               : r->timeout_s < 10 ? r->timeout_s : 10;
  long cms = (long)(cts * 1000);
  if (cms < 1) cms = 1;
  CURL *c = t->curl;
  cu.easy_setopt(c, CURLOPT_URL, r->url);
  cu.easy_setopt(c, CURLOPT_CUSTOMREQUEST, r->method);
  if (r->body) {
    cu.easy_setopt(c, CURLOPT_POSTFIELDS, r->body);
    cu.easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->len);
  }
  cu.easy_setopt(c, CURLOPT_HTTPHEADER, t->headers);
  cu.easy_setopt(c, CURLOPT_WRITEFUNCTION, on_batch_body);
  cu.easy_setopt(c, CURLOPT_WRITEDATA, t);
  cu.easy_setopt(c, CURLOPT_HEADERFUNCTION, on_batch_header);
  cu.easy_setopt(c, CURLOPT_HEADERDATA, t);
  cu.easy_setopt(c, CURLOPT_ERRORBUFFER, t->ebuf);
  cu.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  cu.easy_setopt(c, CURLOPT_TIMEOUT_MS, ms);
  cu.easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, cms);
  cu.easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
  if (r->user_agent) cu.easy_setopt(c, CURLOPT_USERAGENT, r->user_agent);
  /* TLS peer and host verification stay libcurl's default (on); a CA file
   * only changes whom to trust */
  if (r->ca_file) cu.easy_setopt(c, CURLOPT_CAINFO, r->ca_file);
  if (r->max_redirects > 0) {
    cu.easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    cu.easy_setopt(c, CURLOPT_MAXREDIRS, (long)r->max_redirects);
    cu.easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  }
  cu.easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  if (cu.multi_add_handle(b->multi, c) != CURLM_OK) goto oom;
  t->next = b->live;
  b->live = t;
  b->running++;
  return 0;
oom:
  if (t) {
    cu.easy_cleanup(t->curl);
    cu.slist_free_all(t->headers);
    free(t);
  }
  snprintf(err, errlen, "out of memory starting an HTTP request to %s", r->url);
  return -1;
}

/* Pops the finished transfer of a CURLMSG_DONE message into *resp. */
static int batch_take(lode_http_batch *b, CURLMsg *msg, void **ud, lode_http_resp *resp) {
  transfer **pp = &b->live;
  while (*pp && (*pp)->curl != msg->easy_handle) pp = &(*pp)->next;
  transfer *t = *pp;
  if (!t) return 0;
  *pp = t->next;
  b->running--;
  CURLcode cc = msg->data.result;
  resp->status = 0;
  resp->retry_after_s = t->retry_after_s;
  resp->body_len = 0;
  resp->body[0] = 0;
  resp->error[0] = 0;
  resp->permanent = 0;
  if (cc == CURLE_OK) {
    cu.easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &resp->status);
  } else if (t->overflow) {
    size_t cap = t->out->max ? t->out->max : LODE_BUF_DEFAULT_MAX;
    if (t->out->len + CURL_MAX_WRITE_SIZE > cap)
      snprintf(resp->error, sizeof resp->error, "response larger than %zu bytes", cap);
    else
      snprintf(resp->error, sizeof resp->error, "out of memory reading the response");
    resp->permanent = 1;
  } else {
    snprintf(resp->error, sizeof resp->error, "%s",
             t->ebuf[0] ? t->ebuf : cu.easy_strerror(cc));
    resp->permanent = permanent_error(cc);
  }
  *ud = t->ud;
  transfer_free(b, t);
  return 1;
}

int lode_http_batch_next(lode_http_batch *b, double wait_s, void **ud, lode_http_resp *resp,
                         char *err, size_t errlen) {
  int64_t deadline = lode_mono_ns() + (int64_t)(wait_s * 1e9);
  for (;;) {
    int still = 0, left = 0;
    if (cu.multi_perform(b->multi, &still) != CURLM_OK) goto fail;
    CURLMsg *msg;
    while ((msg = cu.multi_info_read(b->multi, &left)) != NULL)
      if (msg->msg == CURLMSG_DONE && batch_take(b, msg, ud, resp)) return 1;
    int64_t now = lode_mono_ns();
    if (now >= deadline || b->running == 0) return 0;
    int ms = (int)((deadline - now) / 1000000);
    if (ms < 1) ms = 1;
    if (cu.multi_poll(b->multi, NULL, 0, ms, NULL) != CURLM_OK) goto fail;
  }
fail:
  snprintf(err, errlen, "libcurl failed while transferring");
  return -1;
}
