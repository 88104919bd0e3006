/* embed_openai.c - the "openai" provider: POST {base_url}/embeddings as the
 * OpenAI /v1/embeddings protocol (also served by Ollama, vLLM, llama.cpp and
 * TEI). Inputs go in batches of batch_size, up to `concurrency` requests in
 * flight on one lode_http_batch (base/http.h); 429, 5xx and network errors are retried
 * with exponential backoff (retry_base * 2^k, capped), honouring Retry-After;
 * other 4xx fail at once with the server's message. Rows are placed by the
 * `index` of each returned item, so the server's order does not matter, then
 * L2-normalised.
 *
 * Ownership: a lode__oai owns copies of its option strings. Secrets: the API
 * key is only ever put in the Authorization header; every error message is
 * scrubbed of it before it leaves this file. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "base/buf.h"
#include "base/http.h"
#include "base/util.h"
#include "kernels/embed_internal.h"

#define MAX_BACKOFF_S 30.0
#define MAX_RETRY_AFTER_S 120.0
#define MAX_RESPONSE ((size_t)1 << 30)

struct lode__oai {
  char *url, *api_key, *model;
  int64_t dimensions, batch_size, concurrency, max_retries;
  double retry_base, timeout;
};

typedef struct job {
  size_t start, count;
  int attempts, running, done;
  double not_before; /* monotonic seconds */
  lode_buf body, resp;
} job;

static char *dupstr(const char *s) {
  if (!s) return NULL;
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

static double now_s(void) { return (double)lode_mono_ns() / 1e9; }

/* The key must never leave this file in an error message. */
static void scrub(const lode__oai *c, char *err) {
  if (c) lode_scrub_secret(err, c->api_key);
}

int lode__oai_open(const lode_embed_opts *o, lode__oai **out, char *err, size_t errlen) {
  *out = NULL;
  lode__oai *c = calloc(1, sizeof *c);
  if (!c) goto oom;
  const char *base = o->base_url ? o->base_url : getenv("OPENAI_BASE_URL");
  if (!base || !*base) base = "https://api.openai.com/v1";
  const char *key = o->api_key ? o->api_key : getenv("OPENAI_API_KEY");
  size_t bl = strlen(base);
  while (bl > 0 && base[bl - 1] == '/') bl--;
  c->url = malloc(bl + sizeof "/embeddings");
  if (!c->url) goto oom;
  memcpy(c->url, base, bl);
  memcpy(c->url + bl, "/embeddings", sizeof "/embeddings");
  c->api_key = dupstr(key && *key ? key : NULL);
  c->model = dupstr(o->model ? o->model : "text-embedding-3-small");
  if (!c->model || (key && *key && !c->api_key)) goto oom;
  c->dimensions = o->dimensions;
  c->batch_size = o->batch_size ? o->batch_size : 256;
  c->concurrency = o->concurrency ? o->concurrency : 4;
  c->max_retries = o->max_retries ? o->max_retries : 5;
  c->retry_base = o->retry_base > 0 ? o->retry_base : 0.5;
  c->timeout = o->timeout > 0 ? o->timeout : 60;
  const char *bad = NULL;
  if (c->batch_size < 1 || c->batch_size > LODE_EMBED_OPENAI_MAX_BATCH) bad = "batch_size must be 1..2048";
  else if (c->concurrency < 1 || c->concurrency > 64) bad = "concurrency must be 1..64";
  else if (o->max_retries < 0 || c->max_retries > 100) bad = "max_retries must be 0..100";
  else if (c->dimensions < 0) bad = "dimensions must be >= 1";
  else if (o->retry_base < 0) bad = "retry_base must be >= 0";
  if (o->max_retries < 0) c->max_retries = 0;
  if (bad) {
    snprintf(err, errlen, "embedder openai: option %s", bad);
    lode__oai_free(c);
    return -1;
  }
  *out = c;
  return 0;
oom:
  snprintf(err, errlen, "embedder openai: out of memory");
  lode__oai_free(c);
  return -1;
}

const char *lode__oai_model(const lode__oai *c) { return c->model; }

void lode__oai_free(lode__oai *c) {
  if (!c) return;
  free(c->url);
  if (c->api_key) { /* do not leave the secret in freed memory */
    memset(c->api_key, 0, strlen(c->api_key));
    free(c->api_key);
  }
  free(c->model);
  free(c);
}

/* A JSON string from arbitrary bytes: invalid UTF-8 becomes U+FFFD. */
static int json_str(lode_buf *b, const char *s, size_t n) {
  const uint8_t *p = (const uint8_t *)s;
  int rc = lode_buf_putc(b, '"');
  size_t i = 0;
  while (i < n && rc == 0) {
    uint8_t ch = p[i];
    if (ch == '"' || ch == '\\') {
      rc = lode_buf_putc(b, '\\') || lode_buf_putc(b, ch);
      i++;
    } else if (ch < 0x20) {
      rc = lode_buf_printf(b, "\\u%04x", ch) < 0;
      i++;
    } else if (ch < 0x80) {
      rc = lode_buf_putc(b, ch);
      i++;
    } else {
      utf8proc_int32_t cp;
      utf8proc_ssize_t k = utf8proc_iterate(p + i, (utf8proc_ssize_t)(n - i), &cp);
      if (k <= 0) {
        rc = lode_buf_puts(b, "\\ufffd");
        i++;
      } else {
        rc = lode_buf_append(b, p + i, (size_t)k);
        i += (size_t)k;
      }
    }
  }
  return rc || lode_buf_putc(b, '"');
}

static int build_body(const lode__oai *c, job *j, const char *const *texts, const size_t *lens) {
  lode_buf *b = &j->body;
  int rc = lode_buf_puts(b, "{\"model\":") || json_str(b, c->model, strlen(c->model)) ||
           lode_buf_puts(b, ",\"encoding_format\":\"float\"");
  if (!rc && c->dimensions > 0) rc = lode_buf_printf(b, ",\"dimensions\":%lld", (long long)c->dimensions) < 0;
  if (!rc) rc = lode_buf_puts(b, ",\"input\":[");
  for (size_t i = 0; i < j->count && !rc; i++) {
    size_t k = j->start + i;
    if (i) rc = lode_buf_putc(b, ',');
    if (!rc) rc = json_str(b, texts[k], lens ? lens[k] : strlen(texts[k]));
  }
  return rc || lode_buf_puts(b, "]}");
}

/* The request of a job; `auth` holds the Authorization line (wiped by the
 * caller after the transfer). */
static int start_job(const lode__oai *c, lode_http_batch *batch, job *j, const char *auth,
                     char *err, size_t errlen) {
  const char *hdrs[2] = {"Content-Type: application/json", auth};
  lode_http_req r;
  memset(&r, 0, sizeof r);
  r.method = "POST";
  r.url = c->url;
  r.headers = hdrs;
  r.nheaders = auth ? 2 : 1;
  r.body = (const char *)j->body.p;
  r.len = j->body.len;
  r.timeout_s = c->timeout;
  r.connect_timeout_s = fmin(c->timeout, 30);
  r.user_agent = "lode-embed/1";
  if (lode_http_batch_add(batch, &r, &j->resp, j, err, errlen) != 0) return -1;
  j->running = 1;
  j->attempts++;
  return 0;
}

/* The server's error message from a JSON error body, else the raw body. */
static void server_message(const job *j, char *out, size_t outlen) {
  cJSON *r = cJSON_ParseWithLength((const char *)j->resp.p, j->resp.len);
  const cJSON *e = cJSON_GetObjectItemCaseSensitive(r, "error");
  const cJSON *m = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "message") : e;
  if (cJSON_IsString(m)) snprintf(out, outlen, "%s", m->valuestring);
  else snprintf(out, outlen, "%.*s", (int)(j->resp.len < 300 ? j->resp.len : 300),
                j->resp.p ? (const char *)j->resp.p : "");
  cJSON_Delete(r);
}

typedef struct result {
  float *data;
  int64_t dims;
  uint8_t *filled;
  size_t n;
} result;

/* Places one successful response's rows. */
static int take_response(const lode__oai *c, job *j, result *res, lode_embed_usage *u,
                         char *err, size_t errlen) {
  int rc = -1;
  cJSON *r = cJSON_ParseWithLength((const char *)j->resp.p, j->resp.len);
  const cJSON *data = cJSON_GetObjectItemCaseSensitive(r, "data"), *it;
  if (!cJSON_IsArray(data)) {
    snprintf(err, errlen, "openai embeddings: response from %s has no \"data\" array", c->url);
    goto done;
  }
  cJSON_ArrayForEach(it, data) {
    const cJSON *ix = cJSON_GetObjectItemCaseSensitive(it, "index");
    const cJSON *emb = cJSON_GetObjectItemCaseSensitive(it, "embedding");
    if (!cJSON_IsNumber(ix) || !cJSON_IsArray(emb) || ix->valuedouble < 0 ||
        ix->valuedouble >= (double)j->count || ix->valuedouble != floor(ix->valuedouble)) {
      snprintf(err, errlen, "openai embeddings: response from %s has an item without a valid "
               "index (0..%zu) and embedding array", c->url, j->count - 1);
      goto done;
    }
    int64_t d = cJSON_GetArraySize(emb);
    if (!res->data) {
      if (d < 1 || (c->dimensions > 0 && d != c->dimensions)) {
        snprintf(err, errlen, "openai embeddings: server returned %lld dimensions, expected %lld",
                 (long long)d, (long long)c->dimensions);
        goto done;
      }
      res->dims = d;
      res->data = lode_matrix_alloc((int64_t)res->n, d);
      if (!res->data) {
        snprintf(err, errlen, "openai embeddings: out of memory for %zu x %lld", res->n, (long long)d);
        goto done;
      }
    } else if (d != res->dims) {
      snprintf(err, errlen, "openai embeddings: server returned rows of %lld and %lld dimensions",
               (long long)res->dims, (long long)d);
      goto done;
    }
    size_t row = j->start + (size_t)ix->valuedouble;
    float *v = res->data + (int64_t)row * d;
    int64_t k = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, emb) v[k++] = cJSON_IsNumber(x) ? (float)x->valuedouble : 0.0f;
    lode_l2_normalize(v, d);
    res->filled[row] = 1;
  }
  for (size_t i = 0; i < j->count; i++)
    if (!res->filled[j->start + i]) {
      snprintf(err, errlen, "openai embeddings: response from %s lacks index %zu of %zu inputs",
               c->url, i, j->count);
      goto done;
    }
  const cJSON *usage = cJSON_GetObjectItemCaseSensitive(r, "usage");
  const cJSON *pt = cJSON_GetObjectItemCaseSensitive(usage, "prompt_tokens");
  const cJSON *tt = cJSON_GetObjectItemCaseSensitive(usage, "total_tokens");
  if (cJSON_IsNumber(pt)) u->prompt_tokens += (int64_t)pt->valuedouble;
  if (cJSON_IsNumber(tt)) u->total_tokens += (int64_t)tt->valuedouble;
  const cJSON *model = cJSON_GetObjectItemCaseSensitive(r, "model");
  if (cJSON_IsString(model)) snprintf(u->model, sizeof u->model, "%s", model->valuestring);
  rc = 0;
done:
  cJSON_Delete(r);
  return rc;
}

/* One finished transfer: 1 done, 0 rescheduled, -1 failed (err filled). */
static int finish(const lode__oai *c, job *j, const lode_http_resp *hr, result *res,
                  lode_embed_usage *u, char *err, size_t errlen) {
  j->running = 0;
  char why[512];
  if (hr->status >= 200 && hr->status < 300) {
    if (take_response(c, j, res, u, err, errlen)) return -1;
    j->done = 1;
    return 1;
  }
  if (hr->status == 0) {
    snprintf(why, sizeof why, "%s", hr->error);
    if (hr->permanent) {
      snprintf(err, errlen, "openai embeddings: request to %s failed: %s", c->url, why);
      return -1;
    }
  } else {
    char msg[400];
    server_message(j, msg, sizeof msg);
    snprintf(why, sizeof why, "HTTP %ld: %s", hr->status, msg);
    if (hr->status != 429 && hr->status < 500) {
      snprintf(err, errlen, "openai embeddings: %s rejected the request (inputs %zu..%zu): %s",
               c->url, j->start + 1, j->start + j->count, why);
      return -1;
    }
  }
  if (j->attempts > c->max_retries) {
    snprintf(err, errlen, "openai embeddings: request to %s for inputs %zu..%zu failed after %d "
             "attempts: %s", c->url, j->start + 1, j->start + j->count, j->attempts, why);
    return -1;
  }
  double delay = c->retry_base * pow(2.0, j->attempts - 1);
  if (delay > MAX_BACKOFF_S) delay = MAX_BACKOFF_S;
  if (hr->retry_after_s >= 0) delay = fmin(hr->retry_after_s, MAX_RETRY_AFTER_S);
  j->not_before = now_s() + delay;
  return 0;
}

int lode__oai_embed(lode__oai *c, const char *const *texts, const size_t *lens, size_t n,
                    lode_matrix *out, lode_embed_usage *usage, char *err, size_t errlen) {
  size_t bs = (size_t)c->batch_size, njobs = (n + bs - 1) / bs, ndone = 0;
  result res = {NULL, c->dimensions, NULL, n};
  job *jobs = NULL;
  lode_http_batch *batch = NULL;
  lode_http_resp *hr = NULL;
  lode_buf auth;
  lode_buf_init(&auth, 0);
  int rc = -1;
  if (n == 0) {
    out->dims = c->dimensions;
    out->data = lode_matrix_alloc(0, 0);
    return out->data ? 0 : -1;
  }
  jobs = calloc(njobs, sizeof *jobs);
  res.filled = calloc(n, 1);
  hr = malloc(sizeof *hr);
  if (!jobs || !res.filled || !hr) goto oom;
  if (!(batch = lode_http_batch_new((int)c->concurrency, err, errlen))) goto http_err;
  if (c->api_key && lode_buf_printf(&auth, "Authorization: Bearer %s", c->api_key) < 0) goto oom;
  for (size_t i = 0; i < njobs; i++) {
    jobs[i].start = i * bs;
    jobs[i].count = i + 1 < njobs ? bs : n - i * bs;
    lode_buf_init(&jobs[i].body, 0);
    lode_buf_init(&jobs[i].resp, MAX_RESPONSE);
    if (build_body(c, &jobs[i], texts, lens)) goto oom;
  }
  while (ndone < njobs) {
    double t = now_s(), next = -1;
    for (size_t i = 0; i < njobs && lode_http_batch_running(batch) < c->concurrency; i++) {
      job *j = &jobs[i];
      if (j->done || j->running) continue;
      if (j->not_before > t) {
        if (next < 0 || j->not_before < next) next = j->not_before;
        continue;
      }
      if (start_job(c, batch, j, c->api_key ? lode_buf_cstr(&auth) : NULL, err, errlen))
        goto http_err;
    }
    if (lode_http_batch_running(batch) == 0) {
      /* every job left waits out its back-off */
      if (next > 0) lode_sleep_s(fmax(0.001, fmin(1, next - now_s())));
      continue;
    }
    void *ud;
    /* wake for the earliest back-off that ends, or at most every 200 ms */
    double wait = next > 0 ? fmax(0.001, fmin(0.2, next - now_s())) : 0.2;
    int got = lode_http_batch_next(batch, wait, &ud, hr, err, errlen);
    if (got < 0) goto http_err;
    if (got == 1) {
      int r = finish(c, (job *)ud, hr, &res, usage, err, errlen);
      if (r < 0) goto done;
      ndone += (size_t)r;
    }
  }
  out->rows = (int64_t)n;
  out->dims = res.dims;
  out->data = res.data;
  res.data = NULL;
  if (!usage->model[0]) snprintf(usage->model, sizeof usage->model, "%s", c->model);
  rc = 0;
  goto done;
oom:
  snprintf(err, errlen, "openai embeddings: out of memory");
  goto done;
http_err: { /* the HTTP layer's message, said to be ours */
  char why[512];
  snprintf(why, sizeof why, "%s", err);
  snprintf(err, errlen, "openai embeddings: %s", why);
}
done:
  lode_http_batch_free(batch); /* ends what is still in flight */
  for (size_t i = 0; jobs && i < njobs; i++) {
    lode_buf_free(&jobs[i].body);
    lode_buf_free(&jobs[i].resp);
  }
  if (auth.p) memset(auth.p, 0, auth.len); /* do not leave the secret in freed memory */
  lode_buf_free(&auth);
  free(hr);
  free(jobs);
  free(res.filled);
  free(res.data);
  if (rc) scrub(c, err);
  return rc;
}
