/* otlp.c - trace records to an OTLP ExportTraceServiceRequest (otlp.h). */
#include "trace/otlp.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "trace/trace_ctx.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue any_t;
typedef Opentelemetry__Proto__Common__V1__ArrayValue arr_t;
typedef Opentelemetry__Proto__Trace__V1__Span span_t;
typedef Opentelemetry__Proto__Trace__V1__Span__Event event_t;
typedef Opentelemetry__Proto__Trace__V1__Span__Link link_t;
typedef Opentelemetry__Proto__Trace__V1__Status status_t;

/* A bump allocator: every part of one request, freed at once. */
typedef struct block {
  struct block *next;
  size_t used, cap;
  _Alignas(16) unsigned char mem[];
} block;

struct lode_otlp_enc {
  block *blocks;
  cJSON **docs; /* parsed bodies: their strings are referenced by the spans */
  char **texts; /* printed JSON values (input, output, metadata) */
  int ndocs, capdocs, ntexts, captexts;
  span_t **spans;
  int nspans, capspans;
  /* the resource and scope, built once */
  kv_t *res_kv;
  kv_t **res_kvp;
  any_t *res_any;
  int nres;
  char **res_strs;
};

static void *arena(lode_otlp_enc *e, size_t n) {
  n = (n + 15) & ~(size_t)15;
  block *b = e->blocks;
  if (!b || b->used + n > b->cap) {
    size_t cap = n > 65536 ? n : 65536;
    block *nb = malloc(sizeof *nb + cap);
    if (!nb) return NULL;
    nb->next = b;
    nb->used = 0;
    nb->cap = cap;
    e->blocks = b = nb;
  }
  void *p = b->mem + b->used;
  b->used += n;
  return p;
}

static int keep_ptr(void ***arr, int *n, int *cap, void *p) {
  if (*n == *cap) {
    int nc = *cap ? *cap * 2 : 256;
    void **a = realloc(*arr, (size_t)nc * sizeof *a);
    if (!a) return -1;
    *arr = a;
    *cap = nc;
  }
  (*arr)[(*n)++] = p;
  return 0;
}

lode_otlp_enc *lode_otlp_enc_new(const lode_otlp_config *cfg) {
  lode_otlp_enc *e = calloc(1, sizeof *e);
  if (!e) return NULL;
  int n = cfg ? cfg->nresource : 0;
  e->res_kv = calloc((size_t)n + 1, sizeof *e->res_kv);
  e->res_kvp = calloc((size_t)n + 1, sizeof *e->res_kvp);
  e->res_any = calloc((size_t)n + 1, sizeof *e->res_any);
  e->res_strs = calloc((size_t)(2 * n) + 1, sizeof *e->res_strs);
  if (!e->res_kv || !e->res_kvp || !e->res_any || !e->res_strs) goto oom;
  for (int i = 0; i < n; i++) {
    kv_t k = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
    any_t a = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    if (!(e->res_strs[2 * i] = strdup(cfg->resource[i].key)) ||
        !(e->res_strs[2 * i + 1] = strdup(cfg->resource[i].value)))
      goto oom;
    e->res_any[i] = a;
    e->res_any[i].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    e->res_any[i].string_value = e->res_strs[2 * i + 1];
    e->res_kv[i] = k;
    e->res_kv[i].key = e->res_strs[2 * i];
    e->res_kv[i].value = &e->res_any[i];
    e->res_kvp[i] = &e->res_kv[i];
    e->nres = i + 1;
  }
  return e;
oom:
  lode_otlp_enc_free(e);
  return NULL;
}

void lode_otlp_enc_reset(lode_otlp_enc *e) {
  for (int i = 0; i < e->ndocs; i++) cJSON_Delete(e->docs[i]);
  for (int i = 0; i < e->ntexts; i++) cJSON_free(e->texts[i]);
  e->ndocs = e->ntexts = e->nspans = 0;
  /* keep the newest block, free the others */
  block *b = e->blocks;
  if (b) {
    block *o = b->next;
    while (o) {
      block *n = o->next;
      free(o);
      o = n;
    }
    b->next = NULL;
    b->used = 0;
  }
}

void lode_otlp_enc_free(lode_otlp_enc *e) {
  if (!e) return;
  lode_otlp_enc_reset(e);
  free(e->blocks);
  free(e->docs);
  free(e->texts);
  free(e->spans);
  if (e->res_strs)
    for (int i = 0; i < 2 * e->nres; i++) free(e->res_strs[i]);
  free(e->res_strs);
  free(e->res_kv);
  free(e->res_kvp);
  free(e->res_any);
  free(e);
}

int lode_otlp_enc_count(const lode_otlp_enc *e) { return e->nspans; }

/* ISO 8601 UTC ("2026-12-03T19:35:49.123Z", as lode writes) to Unix ns; 0
 * when unreadable. */
static uint64_t iso_ns(const char *s) {
  int y, mo, d, h, mi, sec, n = 0;
  if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6)
    return 0;
  uint64_t frac = 0;
  const char *p = s + n;
  if (*p == '.') {
    int digits = 0;
    for (p++; *p >= '0' && *p <= '9'; p++)
      if (digits < 9) frac = frac * 10 + (uint64_t)(*p - '0'), digits++;
    while (digits++ < 9) frac *= 10;
  }
  /* days from civil (Howard Hinnant's algorithm) */
  y -= mo <= 2;
  int era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = (unsigned)(y - era * 400);
  unsigned doy = (unsigned)((153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1);
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  int64_t days = (int64_t)era * 146097 + (int64_t)doe - 719468;
  int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec;
  if (secs < 0) return 0;
  return (uint64_t)secs * 1000000000ull + frac;
}

/* Attribute builders: each adds to the span's list (arena memory). */
typedef struct attrs {
  kv_t **p;
  int n, cap;
} attrs;

static any_t *new_any(lode_otlp_enc *e) {
  any_t *a = arena(e, sizeof *a);
  if (a) {
    any_t init = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    *a = init;
  }
  return a;
}

static int add_kv(lode_otlp_enc *e, attrs *at, const char *key, any_t *v) {
  if (!v || at->n >= at->cap) return v ? 0 : -1;
  kv_t *k = arena(e, sizeof *k);
  if (!k) return -1;
  kv_t init = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
  *k = init;
  k->key = (char *)key;
  k->value = v;
  at->p[at->n++] = k;
  return 0;
}

static int add_str(lode_otlp_enc *e, attrs *at, const char *key, const char *val) {
  if (!val) return 0;
  any_t *a = new_any(e);
  if (!a) return -1;
  a->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
  a->string_value = (char *)val;
  return add_kv(e, at, key, a);
}

static int add_int(lode_otlp_enc *e, attrs *at, const char *key, int64_t v) {
  any_t *a = new_any(e);
  if (!a) return -1;
  a->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
  a->int_value = v;
  return add_kv(e, at, key, a);
}

/* The JSON text of item (printed, kept until reset). */
static int add_json(lode_otlp_enc *e, attrs *at, const char *key, const cJSON *item) {
  if (!item || cJSON_IsNull(item)) return 0;
  char *t = cJSON_PrintUnformatted(item);
  if (!t || keep_ptr((void ***)&e->texts, &e->ntexts, &e->captexts, t)) {
    cJSON_free(t);
    return -1;
  }
  return add_str(e, at, key, t);
}

static const char *jstr(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static ProtobufCBinaryData bin(lode_otlp_enc *e, const uint8_t *p, size_t n) {
  ProtobufCBinaryData d = {0, NULL};
  uint8_t *m = arena(e, n);
  if (m) {
    memcpy(m, p, n);
    d.len = n;
    d.data = m;
  }
  return d;
}

/* lode's metadata keys with their OTLP attribute names */
static const struct {
  const char *from, *to;
} meta_keys[] = {
    {"workflow_id", "lode.workflow.id"},   {"step", "lode.step.number"},
    {"attempts", "lode.step.attempts"},    {"attempt", "lode.step.attempt"},
    {"recovery_attempts", "lode.workflow.recovery_attempts"},
    {"phase", "lode.phase"},
};

#define MAX_SPAN_ATTRS 40

int lode_otlp_enc_add(lode_otlp_enc *e, const char *body, size_t len) {
  cJSON *doc = cJSON_ParseWithLength(body, len);
  if (!doc) return -1;
  if (keep_ptr((void ***)&e->docs, &e->ndocs, &e->capdocs, doc)) {
    cJSON_Delete(doc);
    return -1;
  }
  const char *id = jstr(doc, "id"), *trace = jstr(doc, "trace_id");
  const char *parent = jstr(doc, "parent_span_id");
  const char *end = jstr(doc, "end_time");
  if (!end) return 0; /* still open */
  uint8_t tid[16], sid[8], pid[8];
  if (!id || !trace || lode_otlp_trace_id(trace, tid) || lode_otlp_span_id(id, sid)) return -1;
  span_t *s = arena(e, sizeof *s);
  status_t *st = arena(e, sizeof *st);
  attrs at = {arena(e, MAX_SPAN_ATTRS * sizeof(kv_t *)), 0, MAX_SPAN_ATTRS};
  if (!s || !st || !at.p) return -1;
  span_t sinit = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
  status_t stinit = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__INIT;
  *s = sinit;
  *st = stinit;
  s->trace_id = bin(e, tid, 16);
  s->span_id = bin(e, sid, 8);
  if (parent && !lode_otlp_span_id(parent, pid)) s->parent_span_id = bin(e, pid, 8);
  s->name = (char *)(jstr(doc, "name") ? jstr(doc, "name") : "span");
  s->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_INTERNAL;
  s->start_time_unix_nano = iso_ns(jstr(doc, "start_time"));
  s->end_time_unix_nano = iso_ns(end);
  if (s->end_time_unix_nano < s->start_time_unix_nano)
    s->end_time_unix_nano = s->start_time_unix_nano;
  int rc = 0;
  rc |= add_str(e, &at, "opik.trace_id", trace);
  rc |= add_str(e, &at, "opik.span_id", id);
  if (parent) rc |= add_str(e, &at, "opik.parent_span_id", parent);
  const char *type = jstr(doc, "type");
  if (type) rc |= add_str(e, &at, "opik.span_type", type);
  if (type && (!strcmp(type, "llm") || !strcmp(type, "tool")))
    s->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT;
  rc |= add_json(e, &at, "input", cJSON_GetObjectItemCaseSensitive(doc, "input"));
  rc |= add_json(e, &at, "output", cJSON_GetObjectItemCaseSensitive(doc, "output"));
  const cJSON *meta = cJSON_GetObjectItemCaseSensitive(doc, "metadata");
  const char *caller = NULL;
  if (cJSON_IsObject(meta)) {
    for (size_t i = 0; i < sizeof meta_keys / sizeof *meta_keys; i++) {
      const cJSON *v = cJSON_GetObjectItemCaseSensitive(meta, meta_keys[i].from);
      if (cJSON_IsNumber(v)) rc |= add_int(e, &at, meta_keys[i].to, (int64_t)v->valuedouble);
      else if (cJSON_IsString(v)) rc |= add_str(e, &at, meta_keys[i].to, v->valuestring);
    }
    caller = jstr(meta, "caller_traceparent");
    rc |= add_json(e, &at, "opik.metadata", meta);
  }
  const cJSON *tags = cJSON_GetObjectItemCaseSensitive(doc, "tags");
  if (cJSON_IsArray(tags) && cJSON_GetArraySize(tags) > 0) {
    int n = cJSON_GetArraySize(tags), k = 0;
    arr_t *arr = arena(e, sizeof *arr);
    any_t **vals = arena(e, (size_t)n * sizeof *vals);
    any_t *a = new_any(e);
    if (!arr || !vals || !a) return -1;
    arr_t ainit = OPENTELEMETRY__PROTO__COMMON__V1__ARRAY_VALUE__INIT;
    *arr = ainit;
    const cJSON *t;
    cJSON_ArrayForEach(t, tags) {
      if (!cJSON_IsString(t)) continue;
      any_t *v = new_any(e);
      if (!v) return -1;
      v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
      v->string_value = t->valuestring;
      vals[k++] = v;
    }
    arr->n_values = (size_t)k;
    arr->values = vals;
    a->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
    a->array_value = arr;
    rc |= add_kv(e, &at, "opik.tags", a);
  }
  /* gen_ai semantic conventions */
  const char *model = jstr(doc, "model"), *provider = jstr(doc, "provider");
  if (model) rc |= add_str(e, &at, "gen_ai.request.model", model);
  if (provider) rc |= add_str(e, &at, "gen_ai.provider.name", provider);
  const cJSON *usage = cJSON_GetObjectItemCaseSensitive(doc, "usage");
  if (cJSON_IsObject(usage)) {
    static const struct {
      const char *from, *to;
    } uk[] = {{"prompt_tokens", "gen_ai.usage.input_tokens"},
              {"completion_tokens", "gen_ai.usage.output_tokens"},
              {"input_tokens", "gen_ai.usage.input_tokens"},
              {"output_tokens", "gen_ai.usage.output_tokens"}};
    for (size_t i = 0; i < sizeof uk / sizeof *uk; i++) {
      const cJSON *v = cJSON_GetObjectItemCaseSensitive(usage, uk[i].from);
      if (cJSON_IsNumber(v)) rc |= add_int(e, &at, uk[i].to, (int64_t)v->valuedouble);
    }
  }
  /* an error: status and an exception event with the traceback */
  const cJSON *ei = cJSON_GetObjectItemCaseSensitive(doc, "error_info");
  if (cJSON_IsObject(ei)) {
    st->code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
    st->message = (char *)(jstr(ei, "message") ? jstr(ei, "message") : "");
    event_t *ev = arena(e, sizeof *ev);
    event_t **evp = arena(e, sizeof *evp);
    attrs ea = {arena(e, 3 * sizeof(kv_t *)), 0, 3};
    if (!ev || !evp || !ea.p) return -1;
    event_t einit = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__EVENT__INIT;
    *ev = einit;
    ev->name = "exception";
    ev->time_unix_nano = s->end_time_unix_nano;
    rc |= add_str(e, &ea, "exception.type", jstr(ei, "exception_type"));
    rc |= add_str(e, &ea, "exception.message", jstr(ei, "message"));
    rc |= add_str(e, &ea, "exception.stacktrace", jstr(ei, "traceback"));
    ev->n_attributes = (size_t)ea.n;
    ev->attributes = ea.p;
    *evp = ev;
    s->n_events = 1;
    s->events = evp;
  }
  s->status = st;
  /* a run that joined a caller's W3C context: the caller's span is the
   * parent when the trace is the same, else a link (docs/tracing.md) */
  uint8_t ct[16], cs[8], cf;
  if (caller && !lode_traceparent_parse(caller, ct, cs, &cf)) {
    if (!memcmp(ct, tid, 16)) {
      s->parent_span_id = bin(e, cs, 8);
    } else {
      link_t *l = arena(e, sizeof *l);
      link_t **lp = arena(e, sizeof *lp);
      if (!l || !lp) return -1;
      link_t linit = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__LINK__INIT;
      *l = linit;
      l->trace_id = bin(e, ct, 16);
      l->span_id = bin(e, cs, 8);
      l->flags = 0x100 | cf; /* has-is-remote, remote; sampled flag as given */
      *lp = l;
      s->n_links = 1;
      s->links = lp;
    }
  }
  if (rc) return -1;
  s->n_attributes = (size_t)at.n;
  s->attributes = at.p;
  if (keep_ptr((void ***)&e->spans, &e->nspans, &e->capspans, s)) return -1;
  return 1;
}

/* protobuf-c packs into a ProtobufCBuffer: append to a lode_buf */
typedef struct buf_sink {
  ProtobufCBuffer base;
  lode_buf *b;
  int failed;
} buf_sink;

static void sink_append(ProtobufCBuffer *pb, size_t len, const uint8_t *data) {
  buf_sink *s = (buf_sink *)pb;
  if (!s->failed && lode_buf_append(s->b, data, len)) s->failed = 1;
}

int lode_otlp_enc_pack(lode_otlp_enc *e, lode_buf *out) {
  Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req =
      OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
  Opentelemetry__Proto__Trace__V1__ResourceSpans rs =
      OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
  Opentelemetry__Proto__Resource__V1__Resource res =
      OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
  Opentelemetry__Proto__Trace__V1__ScopeSpans ss = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
  Opentelemetry__Proto__Common__V1__InstrumentationScope scope =
      OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
  Opentelemetry__Proto__Trace__V1__ResourceSpans *rsp = &rs;
  Opentelemetry__Proto__Trace__V1__ScopeSpans *ssp = &ss;
  res.n_attributes = (size_t)e->nres;
  res.attributes = e->res_kvp;
  scope.name = "lode";
  scope.version = LODE_SCOPE_VERSION; /* lode's version, from the build */
  ss.scope = &scope;
  ss.n_spans = (size_t)e->nspans;
  ss.spans = e->spans;
  rs.resource = &res;
  rs.n_scope_spans = 1;
  rs.scope_spans = &ssp;
  req.n_resource_spans = 1;
  req.resource_spans = &rsp;
  lode_buf_reset(out);
  size_t need = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(&req);
  if (lode_buf_reserve(out, need)) return -1;
  buf_sink sink = {{sink_append}, out, 0};
  opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack_to_buffer(
      &req, &sink.base);
  return sink.failed ? -1 : 0;
}
