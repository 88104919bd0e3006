/* trace_export.c - the outbox sender and its background thread. */
#include "trace/trace_export.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/http.h"
#include "base/log.h"
#include "base/util.h"
#include "state/trace_store.h"
#include "trace/otlp.h"
#include "trace/render.h"
#include "trace/trace.h"

/* ---- the sender: one connection, one HTTP client, no threads ------------- */

typedef struct item {
  char *id;
  int64_t rev, updated_at;
  size_t off, len; /* body bytes in sender.bodies */
} item;

struct kind;

typedef struct sender {
  int otlp;            /* the destination: 0 Opik (REST), 1 OTLP/HTTP */
  const struct kind *kinds;
  int nkinds;
  lode_otlp_enc *enc;  /* OTLP: the request being built */
  double req_timeout_s; /* per request (OTLP: OTEL_EXPORTER_OTLP_TIMEOUT) */
  lode_sysdb *sys;    /* the state database (workflow and step rows are rendered) */
  int64_t rendered_at; /* last lode_trace_materialize pass, epoch ms */
  lode_http *http;
  char *url;          /* base URL */
  char *project_json; /* "\"project_name\":\"...\"," pre-escaped */
  char *secret;       /* the API key, only to scrub it from server responses */
  lode_buf bodies, req;
  item *items;
  lode_outbox_ref *refs; /* the items being marked */
  int nitems;
  /* rows too big for any request, seen by the last load_batch: failed */
  lode_outbox_ref big[16];
  size_t big_len[16];
  int nbig;
  int batch_full;     /* the last load_batch stopped at a cap: more rows wait */
  int failures;       /* consecutive retryable failures, for the backoff */
  int warned;         /* the permanent-failure warning is logged once */
  long refused;       /* 401/403: the key or workspace was refused; nothing more
                         is sent by this sender (docs/tracing.md) */
  char key_from[4500];  /* where the key and workspace came from */
  atomic_llong abort_at_ms; /* 0: never; requests abort past this wall time */
  /* the destination could not be reached (a network error or a retryable
   * status) on the last attempt, and why; cleared by a delivery */
  atomic_int down;
  char cause[512];
  lode_export_stats st;
} sender;

enum { ROUND_IDLE, ROUND_MORE, ROUND_BACKOFF };

static const struct kind {
  const char *name, *path, *method, *key;
  int stamped; /* carries last_updated_at */
} kinds[] = {
    {"trace", "/v1/private/traces/batch", "POST", "traces", 1},
    {"span", "/v1/private/spans/batch", "POST", "spans", 1},
    {"feedback", "/v1/private/traces/feedback-scores", "PUT", "scores", 0},
},
  /* OTLP: spans only, to the configured URL as it is */
  otlp_kinds[] = {{"span", "", "POST", NULL, 0}};

/* The destination's name in messages. */
static const char *dest_name(const sender *s) { return s->otlp ? "the OTLP endpoint" : "Opik"; }

static int should_abort(void *ud) {
  sender *s = ud;
  long long at = atomic_load(&s->abort_at_ms);
  return at && lode_now_ms() >= at;
}

static void sender_free(sender *s) {
  lode_sysdb_close(s->sys);
  lode_http_free(s->http);
  lode_otlp_enc_free(s->enc);
  free(s->url);
  free(s->project_json);
  if (s->secret) {
    volatile char *p = s->secret;
    while (*p) *p++ = 0;
    free(s->secret);
  }
  for (int i = 0; i < s->nitems; i++) free(s->items[i].id);
  for (int i = 0; i < s->nbig; i++) free((char *)s->big[i].id);
  free(s->items);
  free(s->refs);
  lode_buf_free(&s->bodies);
  lode_buf_free(&s->req);
  memset(s, 0, sizeof *s);
}

/* What both destinations need: buffers, the state database connection on
 * the destination's outbox, an HTTP client. */
static int sender_common(sender *s, const char *db_path, int otlp, char *err, size_t errlen) {
  memset(s, 0, sizeof *s);
  s->otlp = otlp;
  s->kinds = otlp ? otlp_kinds : kinds;
  s->nkinds = otlp ? 1 : (int)(sizeof kinds / sizeof *kinds);
  s->req_timeout_s = 30.0;
  lode_buf_init(&s->bodies, LODE_EXPORT_MAX_BYTES * 4);
  lode_buf_init(&s->req, LODE_EXPORT_MAX_BYTES * 4);
  if (!(s->items = calloc(LODE_EXPORT_MAX_ITEMS, sizeof *s->items)) ||
      !(s->refs = calloc(LODE_EXPORT_MAX_ITEMS, sizeof *s->refs)))
    goto oom;
  /* the state database itself (migrated like any other connection): the
   * spans of workflows and steps are rendered from its rows */
  if (lode_sysdb_open(db_path, 0, &s->sys, err, errlen) != LODE_OK) goto fail;
  lode_sysdb_outbox_use(s->sys, otlp ? LODE_OUTBOX_OTLP : LODE_OUTBOX_OPIK);
  /* a new run or `lode export` tries at once (backoffs were the last
   * process's); a damaged row is failed rather than retried forever */
  if (lode_sysdb_outbox_start(s->sys, err, errlen) != LODE_OK) goto fail;
  if (!(s->http = lode_http_new(err, errlen))) goto fail;
  lode_http_set_abort(s->http, should_abort, s);
  return 0;
oom:
  snprintf(err, errlen, "out of memory starting the trace exporter");
fail:
  sender_free(s);
  return -1;
}

/* OTLP: headers from OTEL_EXPORTER_OTLP_HEADERS (their values may be
 * secrets: they go only into curl's header list), the encoder. */
static int sender_init_otlp(sender *s, const char *db_path, const lode_otlp_config *cfg,
                            char *err, size_t errlen) {
  if (sender_common(s, db_path, 1, err, errlen)) return -1;
  const char *hdrs[LODE_OTLP_MAX_ATTRS + 2];
  char *lines[LODE_OTLP_MAX_ATTRS];
  int nh = 0, nl = 0, rc = 0;
  hdrs[nh++] = "Content-Type: application/x-protobuf";
  hdrs[nh++] = "Expect:";
  for (int i = 0; i < cfg->nheaders && !rc; i++) {
    size_t n = strlen(cfg->headers[i].key) + strlen(cfg->headers[i].value) + 3;
    if (!(lines[nl] = malloc(n))) rc = -1;
    else {
      snprintf(lines[nl], n, "%s: %s", cfg->headers[i].key, cfg->headers[i].value);
      hdrs[nh++] = lines[nl++];
    }
  }
  if (!rc) rc = lode_http_set_headers(s->http, hdrs, nh);
  for (int i = 0; i < nl; i++) {
    memset(lines[i], 0, strlen(lines[i]));
    free(lines[i]);
  }
  if (rc || !(s->url = strdup(cfg->url)) || !(s->enc = lode_otlp_enc_new(cfg))) {
    snprintf(err, errlen, "out of memory starting the OTLP exporter");
    sender_free(s);
    return -1;
  }
  s->req_timeout_s = cfg->timeout_s;
  snprintf(s->key_from, sizeof s->key_from, "the headers from OTEL_EXPORTER_OTLP_HEADERS");
  return 0;
}

static int sender_init(sender *s, const char *db_path, const lode_opik_config *cfg, char *err,
                       size_t errlen) {
  if (sender_common(s, db_path, 0, err, errlen)) return -1;
  /* The key goes into curl's header list (and `secret`, to scrub responses);
   * it is never formatted into anything that is logged or stored. */
  char auth[2048], ws[1024];
  const char *hdrs[4];
  int nh = 0;
  hdrs[nh++] = "Content-Type: application/json";
  hdrs[nh++] = "Expect:"; /* no 100-continue round trip on big batches */
  if (cfg->api_key) {
    snprintf(auth, sizeof auth, "Authorization: %s", cfg->api_key);
    hdrs[nh++] = auth;
  }
  if (cfg->workspace) {
    snprintf(ws, sizeof ws, "Comet-Workspace: %s", cfg->workspace);
    hdrs[nh++] = ws;
  }
  int hrc = lode_http_set_headers(s->http, hdrs, nh);
  memset(auth, 0, sizeof auth);
  if (hrc) goto oom;
  if (!(s->url = strdup(cfg->url))) goto oom;
  /* the workspace is named (it is no secret), the key only by its source */
  char wsq[208] = "not set";
  if (cfg->workspace) snprintf(wsq, sizeof wsq, "'%.200s'", cfg->workspace);
  snprintf(s->key_from, sizeof s->key_from, "the key from %s, the workspace %s",
           cfg->key_source, wsq);
  if (cfg->api_key && *cfg->api_key && !(s->secret = strdup(cfg->api_key))) goto oom;
  {
    cJSON *str = cJSON_CreateString(cfg->project_name ? cfg->project_name
                                                      : LODE_OPIK_DEFAULT_PROJECT);
    char *q = str ? cJSON_PrintUnformatted(str) : NULL;
    cJSON_Delete(str);
    if (!q) goto oom;
    size_t n = strlen(q) + 32;
    s->project_json = malloc(n);
    if (s->project_json) snprintf(s->project_json, n, "\"project_name\":%s,", q);
    cJSON_free(q);
    if (!s->project_json) goto oom;
  }
  return 0;
oom:
  snprintf(err, errlen, "out of memory starting the trace exporter");
  sender_free(s);
  return -1;
}

static int pending_count(sender *s) { return lode_sysdb_outbox_pending(s->sys); }

static void clear_items(sender *s) {
  for (int i = 0; i < s->nitems; i++) free(s->items[i].id);
  s->nitems = 0;
  for (int i = 0; i < s->nbig; i++) free((char *)s->big[i].id);
  s->nbig = 0;
  lode_buf_reset(&s->bodies);
}

typedef struct batch {
  sender *s;
  size_t bytes;
  int oom;
} batch;

static int take_row(void *ud, const char *id, int64_t rev, int64_t updated_at, const char *body,
                    size_t len) {
  batch *b = ud;
  sender *s = b->s;
  if (!body || len < 2 || body[0] != '{') return 0; /* failed at start-up */
  if (len > LODE_EXPORT_MAX_RECORD_BYTES) {
    /* no request can carry it: it must not hold the others back */
    if (s->nbig < (int)(sizeof s->big / sizeof *s->big)) {
      if (!(s->big[s->nbig].id = strdup(id))) goto oom;
      s->big[s->nbig].rev = rev;
      s->big_len[s->nbig++] = len;
    }
    return 0;
  }
  if (s->nitems > 0 && b->bytes + len + 128 > LODE_EXPORT_MAX_BYTES) {
    s->batch_full = 1;
    return 1;
  }
  item *it = &s->items[s->nitems];
  if (!(it->id = strdup(id))) goto oom;
  it->rev = rev;
  it->updated_at = updated_at;
  it->off = s->bodies.len;
  it->len = len;
  if (lode_buf_append(&s->bodies, body, len)) {
    free(it->id);
    goto oom;
  }
  s->nitems++;
  b->bytes += len + 128;
  return 0;
oom:
  b->oom = 1;
  return 1;
}

/* Loads up to 1000 due rows of one kind, within the byte cap (a single row
 * larger than the cap still goes, alone; one larger than any request can
 * hold is set aside in s->big). Returns the count or -1. */
static int load_batch(sender *s, const struct kind *k) {
  char err[256];
  batch b = {s, 0, 0};
  clear_items(s);
  s->batch_full = 0;
  if (lode_sysdb_outbox_load(s->sys, k->name, lode_now_ms(), LODE_EXPORT_MAX_ITEMS, take_row, &b,
                             err, sizeof err) != LODE_OK) {
    lode_warn("trace export: %s", err);
    return -1;
  }
  return b.oom ? -1 : s->nitems;
}

/* Marks the rows set aside by load_batch failed, saying why. */
static void fail_big(sender *s, const struct kind *k) {
  for (int i = 0; i < s->nbig; i++) {
    char text[256], err[256];
    snprintf(text, sizeof text,
             "not sent: this %s record is %zu bytes, more than one request may carry "
             "(%zu bytes)",
             k->name, s->big_len[i], (size_t)LODE_EXPORT_MAX_RECORD_BYTES);
    lode_warn("trace export: %s %s %s", k->name, s->big[i].id, text);
    if (lode_sysdb_outbox_mark(s->sys, LODE_OUTBOX_FAILED, &s->big[i], 1, text, 0,
                               &s->st.failed, err, sizeof err) != LODE_OK)
      lode_warn("trace export: updating the outbox: %s", err);
  }
}

/* {"spans":[{"project_name":..,"last_updated_at":..,<body minus '{'>,...]} */
static int build_request(sender *s, const struct kind *k, int lo, int hi) {
  lode_buf *b = &s->req;
  lode_buf_reset(b);
  if (lode_buf_printf(b, "{\"%s\":[", k->key)) return -1;
  for (int i = lo; i < hi; i++) {
    const item *it = &s->items[i];
    if (i > lo && lode_buf_putc(b, ',')) return -1;
    if (lode_buf_putc(b, '{') || lode_buf_puts(b, s->project_json)) return -1;
    if (k->stamped) {
      char iso[80];
      lode_iso8601(it->updated_at, iso);
      if (lode_buf_printf(b, "\"last_updated_at\":\"%s\",", iso)) return -1;
    }
    const char *body = (const char *)s->bodies.p + it->off;
    /* an empty object body would leave a dangling comma */
    if (it->len == 2) b->len--;
    if (lode_buf_append(b, body + 1, it->len - 1)) return -1;
  }
  if (lode_buf_puts(b, "]}")) return -1;
  lode_buf_cstr(b);
  return 0;
}

/* OTLP: items [lo,hi) as one ExportTraceServiceRequest in s->req. Returns
 * the spans encoded (0: all still open), or -1. An unreadable body is
 * skipped with a warning (it is marked with the batch). */
static int build_otlp(sender *s, int lo, int hi) {
  lode_otlp_enc_reset(s->enc);
  for (int i = lo; i < hi; i++) {
    const item *it = &s->items[i];
    if (lode_otlp_enc_add(s->enc, (const char *)s->bodies.p + it->off, it->len) < 0)
      lode_warn("trace export: span %s cannot be encoded for OTLP; skipped", it->id);
  }
  int n = lode_otlp_enc_count(s->enc);
  if (n == 0) return 0;
  if (lode_otlp_enc_pack(s->enc, &s->req)) return -1;
  return n;
}

/* Marks items [lo,hi) in one write transaction. */
static int mark(sender *s, enum lode_outbox_mark how, int lo, int hi, const char *text,
                int64_t when, int *count) {
  char err[256];
  for (int i = lo; i < hi; i++) {
    s->refs[i - lo].id = s->items[i].id;
    s->refs[i - lo].rev = s->items[i].rev;
  }
  if (lode_sysdb_outbox_mark(s->sys, how, s->refs, hi - lo, text, when, count, err,
                             sizeof err) == LODE_OK)
    return 0;
  lode_warn("trace export: updating the outbox: %s (the records will be sent again)", err);
  return -1;
}

/* The message for a refused key (docs/tracing.md, "Outages, retries and
 * rejected records"); it names where the key came from, never the key. */
static void refused_text(const sender *s, long status, const char *where, char *out,
                         size_t outlen) {
  if (s->otlp) {
    snprintf(out, outlen,
             "the OTLP endpoint refused the request (HTTP %ld at %s; %s): check them; "
             "every span stays pending for OTLP, run 'lode export' once they are fixed",
             status, s->url, s->key_from);
    return;
  }
  (void)where;
  snprintf(out, outlen,
           "Opik refused the API key or workspace (HTTP %ld at %s; %s): check them; "
           "every trace record stays pending, run 'lode export' once they are fixed",
           status, where, s->key_from);
}

/* A proxy or a misconfigured server may echo request headers in an error
 * body; the key must not reach the database or the log through it. */
static void scrub(const sender *s, char *text) { lode_scrub_secret(text, s->secret); }

static int retryable(long status) {
  return status == 0 || status == 408 || status == 429 || status >= 500;
}

static double jitter01(void) {
  uint32_t r = 0;
  if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) r = (uint32_t)lode_mono_ns();
  return (double)r / 4294967296.0;
}

/* Sends items [lo,hi). Returns 0 when every item was settled (sent or
 * failed), or a positive backoff in ms when the server asked to retry. */
static int64_t send_range(sender *s, const struct kind *k, int lo, int hi, double timeout_s) {
  char url[4096], text[LODE_HTTP_BODY_MAX + 64];
  lode_http_resp *resp = malloc(sizeof *resp);
  int64_t backoff = 0;
  int built = resp ? (s->otlp ? build_otlp(s, lo, hi) : build_request(s, k, lo, hi)) : -1;
  if (built < 0) {
    lode_warn("trace export: out of memory building a %s batch", k->name);
    backoff = 1000;
    goto done;
  }
  if (s->otlp && built == 0) {
    /* only spans still open: their final version comes later */
    mark(s, LODE_OUTBOX_SENT, lo, hi, NULL, 0, NULL);
    goto done;
  }
  snprintf(url, sizeof url, "%s%s", s->url, k->path);
  if (s->req_timeout_s < timeout_s) timeout_s = s->req_timeout_s;
  s->st.requests++;
  int trc = lode_http_send(s->http, k->method, url, (const char *)s->req.p, s->req.len,
                           timeout_s, resp);
  long status = trc ? 0 : resp->status;
  if (status >= 200 && status < 300) {
    s->failures = 0;
    atomic_store(&s->down, 0);
    s->cause[0] = 0;
    mark(s, LODE_OUTBOX_SENT, lo, hi, NULL, 0, &s->st.sent);
    goto done;
  }
  if (status == 401 || status == 403) {
    /* a configuration error, not a bad record: nothing is marked, nothing
     * more is sent (every other request would be refused the same way) */
    if (!s->refused) {
      s->refused = status;
      char msg[sizeof s->key_from + 512];
      refused_text(s, status, k->path, msg, sizeof msg);
      lode_warn("trace export: %s", msg);
    }
    backoff = 1;
    goto done;
  }
  if (retryable(status)) {
    double base = 0.2 * (double)(1 << (s->failures < 8 ? s->failures : 8));
    if (base > 30) base = 30;
    double d = base * (0.5 + 0.5 * jitter01());
    if (!trc && resp->retry_after_s >= 0)
      d = resp->retry_after_s < 300 ? resp->retry_after_s : 300;
    s->failures++;
    backoff = (int64_t)(d * 1000) + 1;
    if (trc) snprintf(text, sizeof text, "network: %s", resp->error);
    else snprintf(text, sizeof text, "HTTP %ld: %s", status, resp->body);
    scrub(s, text);
    size_t n = strlen(text);
    if (n >= sizeof s->cause) { /* cut at a character boundary */
      n = sizeof s->cause - 1;
      while (n && ((unsigned char)text[n] & 0xC0) == 0x80) n--;
    }
    memcpy(s->cause, text, n);
    s->cause[n] = 0;
    /* a body's line breaks would break the one-line messages it goes in */
    for (char *c = s->cause; *c; c++)
      if (*c == '\n' || *c == '\r') *c = ' ';
    atomic_store(&s->down, 1);
    lode_debug("trace export: %s batch to %s%s: %s; retrying in %.1fs", k->name, s->otlp ? s->url : "",
               k->path, text, d);
    mark(s, LODE_OUTBOX_RETRY, lo, hi, text, lode_now_ms() + backoff, NULL);
    goto done;
  }
  /* A permanent rejection. Opik's 422 names fields, not items, so split the
   * batch until the bad records are alone: the good ones still go. */
  if (hi - lo > 1) {
    int mid = lo + (hi - lo) / 2;
    backoff = send_range(s, k, lo, mid, timeout_s);
    if (!backoff) backoff = send_range(s, k, mid, hi, timeout_s);
    goto done;
  }
  snprintf(text, sizeof text, "HTTP %ld: %s", status, resp->body);
  scrub(s, text);
  if (!s->warned) {
    lode_warn("trace export: %s rejected a %s (HTTP %ld at %s%s); it is kept as failed, "
              "see 'lode export --failed'", dest_name(s), k->name, status, s->otlp ? s->url : "",
              k->path);
    s->warned = 1;
  }
  mark(s, LODE_OUTBOX_FAILED, lo, hi, text, 0, &s->st.failed);
done:
  free(resp);
  return backoff;
}

/* Renders workflow and step spans into the outbox: at most every
 * RENDER_MS while running (each pass takes the write lock), always when
 * `force` (flushing). Returns 1 when records were rendered and more are left. */
#define RENDER_MS 100
/* The last pass of any exporter of this process: with both destinations
 * running, rendering once serves both (each pass takes the write lock the
 * workflows' commits need). */
static atomic_llong last_render_ms;
static int render(sender *s, int force) {
  int64_t now = lode_now_ms();
  if (!force && now - s->rendered_at < RENDER_MS) return 0;
  if (!force && now - atomic_load(&last_render_ms) < RENDER_MS) return 0;
  s->rendered_at = now;
  atomic_store(&last_render_ms, now);
  int more = 0;
  char err[512];
  if (lode_trace_materialize(s->sys, LODE_EXPORT_MAX_ITEMS * 2, &more, err, sizeof err) !=
      LODE_OK) {
    lode_warn("trace export: %s (tried again later)", err);
    return 0;
  }
  return more;
}

/* One step of delivery: what is new is rendered, then each kind with due
 * rows gets a batch, traces before spans before feedback (a full batch ends
 * the round, so the rest of its kind goes next). *wait_ms is set for
 * ROUND_BACKOFF. */
static int round_once(sender *s, double timeout_s, int64_t *wait_ms, int force) {
  if (s->refused) { /* until the process ends: the key will not change */
    *wait_ms = 3600 * 1000;
    return ROUND_BACKOFF;
  }
  int more = render(s, force);
  for (int i = 0; i < s->nkinds; i++) {
    int n = load_batch(s, &s->kinds[i]);
    if (n < 0) {
      *wait_ms = 1000;
      return ROUND_BACKOFF;
    }
    if (s->nbig) {
      fail_big(s, &s->kinds[i]);
      if (n == 0) {
        clear_items(s);
        return ROUND_MORE; /* load again: rows after them may be due */
      }
    }
    if (n == 0) continue;
    int full = s->batch_full || n >= LODE_EXPORT_MAX_ITEMS;
    int64_t b = send_range(s, &s->kinds[i], 0, n, timeout_s);
    clear_items(s);
    if (b > 0) {
      *wait_ms = b;
      return ROUND_BACKOFF;
    }
    /* a full batch: more of this kind waits, and goes before later kinds;
     * otherwise the next kind, and then rows committed meanwhile wait for
     * their kick (and its short linger) rather than going one by one */
    if (full) return ROUND_MORE;
  }
  return more ? ROUND_MORE : ROUND_IDLE;
}

/* Per-request timeout: 30 s, or what is left before a deadline. */
static double request_timeout(int64_t deadline_ms) {
  if (!deadline_ms) return 30.0;
  double left = (double)(deadline_ms - lode_now_ms()) / 1000.0;
  if (left > 30) left = 30;
  return left < 0.05 ? 0.05 : left;
}

#define ONE_PASS_MS 500

static int flush(sender *sp, double timeout_s, lode_export_stats *stats, char *err,
                 size_t errlen);

int lode_export_flush(const char *db_path, const lode_opik_config *cfg, double timeout_s,
                      lode_export_stats *stats, char *err, size_t errlen) {
  sender s;
  memset(stats, 0, sizeof *stats);
  if (!lode_opik_config_sends(cfg)) {
    snprintf(err, errlen, cfg && cfg->track_disable
                              ? "tracking is disabled (OPIK_TRACK_DISABLE); nothing is sent"
                              : "Opik is not configured: set OPIK_URL_OVERRIDE (self-hosted, "
                                "e.g. http://localhost:5173/api) or OPIK_API_KEY (Opik Cloud)");
    return -1;
  }
  if (sender_init(&s, db_path, cfg, err, errlen)) return -1;
  return flush(&s, timeout_s, stats, err, errlen);
}

int lode_export_flush_otlp(const char *db_path, const lode_otlp_config *cfg, double timeout_s,
                           lode_export_stats *stats, char *err, size_t errlen) {
  sender s;
  memset(stats, 0, sizeof *stats);
  if (!lode_otlp_config_sends(cfg)) {
    snprintf(err, errlen, cfg && cfg->disabled
                              ? "OTEL_SDK_DISABLED is true: nothing is sent over OTLP"
                              : "OTLP is not configured: set OTEL_EXPORTER_OTLP_ENDPOINT or "
                                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    return -1;
  }
  if (sender_init_otlp(&s, db_path, cfg, err, errlen)) return -1;
  return flush(&s, timeout_s, stats, err, errlen);
}

/* Delivers until nothing is pending or timeout_s passes; frees the sender. */
static int flush(sender *sp, double timeout_s, lode_export_stats *stats, char *err,
                 size_t errlen) {
  sender *s = sp;
  /* --timeout 0: one pass over what is due, no waiting for back-offs, its
   * requests bounded to half a second in all (docs/tracing.md) */
  int one_pass = timeout_s <= 0;
  int64_t deadline = lode_now_ms() + (one_pass ? ONE_PASS_MS : (int64_t)(timeout_s * 1000));
  atomic_store(&s->abort_at_ms, deadline);
  for (;;) {
    int64_t wait = 0;
    int r = round_once(s, request_timeout(deadline), &wait, 1);
    if (r == ROUND_MORE && lode_now_ms() < deadline) continue;
    if (one_pass) break;
    if (r == ROUND_IDLE) {
      /* rows in backoff are not due yet but still pending: wait for them */
      if (pending_count(s) <= 0) break;
      wait = 100;
    }
    if (s->refused) break;
    if (lode_now_ms() + wait >= deadline) break;
    lode_sleep_s((double)wait / 1000.0);
  }
  /* rows left in backoff become due at once for the next run */
  lode_sysdb_outbox_undelay(s->sys, err, errlen);
  s->st.pending = pending_count(s);
  *stats = s->st;
  if (stats->pending) snprintf(stats->cause, sizeof stats->cause, "%s", s->cause);
  if (s->refused) {
    stats->refused = s->refused;
    refused_text(s, s->refused, s->url, err, errlen);
  }
  sender_free(s);
  return 0;
}

/* ---- the background exporter ------------------------------------------------ */

struct lode_exporter {
  int active; /* 0: inert (nothing to send) */
  sender s;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int kicked, stopping;
  int64_t kicked_at; /* the first kick since the last round */
  int64_t stop_deadline_ms;
  int64_t stop_began_ms;
};

/* How often the thread looks for records committed by other processes. */
#define POLL_MS 1000
/* A kick starts a round this long after it, so a busy run's records go in
 * batches (as Opik's SDKs batch) rather than one request per commit; a stop
 * does not wait. */
#define LINGER_MS 50

/* Waits until a round is due. Kicks wake the thread early, except during a
 * backoff: an Opik outage must not turn every commit into a request. A stop
 * request is a kick (flush now) with a deadline. Returns 0 to run a round, -1
 * to exit (stopping and the deadline passed). Called with ex->mu held. */
static int wait_due(lode_exporter *ex, int64_t wake_at, int64_t backoff_until) {
  for (;;) {
    int64_t now = lode_now_ms();
    if (ex->stopping && now >= ex->stop_deadline_ms) return -1;
    int kick_due = ex->kicked && (ex->stopping || now >= ex->kicked_at + LINGER_MS);
    if (now >= backoff_until && (kick_due || now >= wake_at)) return 0;
    int64_t until = now < backoff_until ? backoff_until : wake_at;
    if (ex->kicked && !ex->stopping && until > ex->kicked_at + LINGER_MS &&
        now >= backoff_until)
      until = ex->kicked_at + LINGER_MS;
    if (ex->stopping && until > ex->stop_deadline_ms) until = ex->stop_deadline_ms;
    struct timespec ts;
    ts.tv_sec = (time_t)(until / 1000);
    ts.tv_nsec = (long)(until % 1000) * 1000000L;
    pthread_cond_timedwait(&ex->cv, &ex->mu, &ts); /* CLOCK_REALTIME, as lode_now_ms */
  }
}

/* While stopping: once the destination failed to answer, the stop waits at
 * most LODE_EXPORT_GRACE_MS from when it began. Called with ex->mu held. */
static void cut_stop_if_down(lode_exporter *ex) {
  if (!ex->stopping || !atomic_load(&ex->s.down)) return;
  int64_t cut = ex->stop_began_ms + LODE_EXPORT_GRACE_MS;
  if (cut < ex->stop_deadline_ms) {
    ex->stop_deadline_ms = cut;
    atomic_store(&ex->s.abort_at_ms, cut);
  }
}

static void *exporter_main(void *ud) {
  lode_exporter *ex = ud;
  int64_t wake_at = 0, backoff_until = 0;
  for (;;) {
    pthread_mutex_lock(&ex->mu);
    cut_stop_if_down(ex);
    int go = wait_due(ex, wake_at, backoff_until);
    int stopping = ex->stopping;
    int64_t deadline = ex->stop_deadline_ms;
    ex->kicked = 0;
    pthread_mutex_unlock(&ex->mu);
    if (go < 0) break;
    int64_t wait = 0;
    int r = round_once(&ex->s, request_timeout(stopping ? deadline : 0), &wait, stopping);
    int64_t now = lode_now_ms();
    if (r == ROUND_MORE) {
      wake_at = backoff_until = 0;
    } else if (r == ROUND_BACKOFF) {
      backoff_until = now + wait;
    } else {
      if (stopping && pending_count(&ex->s) <= 0) break;
      /* idle: look again later for records committed by other processes (or,
       * when stopping, for rows whose backoff ends before the deadline) */
      wake_at = now + (stopping ? 50 : POLL_MS);
    }
  }
  return NULL;
}

static lode_exporter *exporter_run(lode_exporter *ex, char *err, size_t errlen);

lode_exporter *lode_exporter_start(const char *db_path, const lode_opik_config *cfg, char *err,
                                   size_t errlen) {
  lode_exporter *ex = calloc(1, sizeof *ex);
  if (!ex) {
    snprintf(err, errlen, "out of memory starting the trace exporter");
    return NULL;
  }
  if (!lode_opik_config_sends(cfg)) return ex; /* local only: inert */
  if (sender_init(&ex->s, db_path, cfg, err, errlen)) {
    free(ex);
    return NULL;
  }
  return exporter_run(ex, err, errlen);
}

lode_exporter *lode_exporter_start_otlp(const char *db_path, const lode_otlp_config *cfg,
                                        char *err, size_t errlen) {
  lode_exporter *ex = calloc(1, sizeof *ex);
  if (!ex) {
    snprintf(err, errlen, "out of memory starting the OTLP exporter");
    return NULL;
  }
  if (!lode_otlp_config_sends(cfg)) return ex; /* inert */
  if (sender_init_otlp(&ex->s, db_path, cfg, err, errlen)) {
    free(ex);
    return NULL;
  }
  return exporter_run(ex, err, errlen);
}

/* Starts the thread of an exporter whose sender is ready. */
static lode_exporter *exporter_run(lode_exporter *ex, char *err, size_t errlen) {
  pthread_mutex_init(&ex->mu, NULL);
  pthread_cond_init(&ex->cv, NULL);
  int e = pthread_create(&ex->thread, NULL, exporter_main, ex);
  if (e) {
    snprintf(err, errlen, "starting the trace exporter thread: %s", strerror(e));
    pthread_mutex_destroy(&ex->mu);
    pthread_cond_destroy(&ex->cv);
    sender_free(&ex->s);
    free(ex);
    return NULL;
  }
  ex->active = 1;
  return ex;
}

void lode_exporter_kick(lode_exporter *ex) {
  if (!ex || !ex->active) return;
  pthread_mutex_lock(&ex->mu);
  if (!ex->kicked) {
    ex->kicked = 1;
    ex->kicked_at = lode_now_ms();
    pthread_cond_signal(&ex->cv);
  }
  pthread_mutex_unlock(&ex->mu);
}

int lode_exporter_stop(lode_exporter *ex, double flush_timeout_s) {
  return lode_exporter_stop_why(ex, flush_timeout_s, NULL, 0);
}

void lode_exporter_stop_begin(lode_exporter *ex, double flush_timeout_s) {
  if (!ex || !ex->active) return;
  if (flush_timeout_s < 0) flush_timeout_s = 0;
  int64_t now = lode_now_ms();
  pthread_mutex_lock(&ex->mu);
  if (!ex->stopping) {
    ex->stopping = 1;
    ex->kicked = 1; /* flush now */
    ex->stop_began_ms = now;
    ex->stop_deadline_ms = now + (int64_t)(flush_timeout_s * 1000);
    /* an in-flight request is aborted at the deadline */
    atomic_store(&ex->s.abort_at_ms, ex->stop_deadline_ms);
    cut_stop_if_down(ex); /* seen down during the run: a short grace only */
    pthread_cond_signal(&ex->cv);
  }
  pthread_mutex_unlock(&ex->mu);
}

int lode_exporter_stop_why(lode_exporter *ex, double flush_timeout_s, char *cause,
                           size_t causelen) {
  if (cause && causelen) cause[0] = 0;
  if (!ex) return 0;
  int left = 0;
  if (ex->active) {
    lode_exporter_stop_begin(ex, flush_timeout_s);
    pthread_join(ex->thread, NULL);
    char err[256];
    lode_sysdb_outbox_undelay(ex->s.sys, err, sizeof err);
    left = pending_count(&ex->s);
    if (left < 0) left = 0;
    if (left && cause && causelen) snprintf(cause, causelen, "%s", ex->s.cause);
    pthread_mutex_destroy(&ex->mu);
    pthread_cond_destroy(&ex->cv);
    sender_free(&ex->s);
  }
  free(ex);
  return left;
}
