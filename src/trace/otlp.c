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
  cJSON **docs; /* parsed tag lists: their strings are referenced by the spans */
  int ndocs, capdocs;
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
  e->ndocs = e->nspans = 0;
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
static int digits(const char *s, int n) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

static uint64_t iso_ns(const char *s) {
  if (!s || strlen(s) < 19 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
      s[16] != ':')
    return 0;
  int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2), h = digits(s + 11, 2),
      mi = digits(s + 14, 2), sec = digits(s + 17, 2);
  if (y < 0 || mo < 1 || mo > 12 || d < 1 || h < 0 || mi < 0 || sec < 0) return 0;
  uint64_t frac = 0;
  const char *p = s + 19;
  if (*p == '.') {
    int nd = 0;
    for (p++; *p >= '0' && *p <= '9'; p++)
      if (nd < 9) frac = frac * 10 + (uint64_t)(*p - '0'), nd++;
    while (nd++ < 9) frac *= 10;
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

/* ---- reading the stored bodies --------------------------------------------------
 * The bodies are lode's own JSON (trace.c). Most of a span's content goes
 * to OTLP as it is stored (input, output and metadata stay JSON text), so
 * the top level of a body is scanned rather than parsed, and only the few
 * values that become ids, times or numbers are decoded. */

typedef struct jv {
  const char *p; /* the raw value: a string's bytes between its quotes; else all */
  size_t n;
  char type; /* 's' string, 'o' object, 'a' array, 'x' number or literal */
  int esc;   /* a string with escapes (decoded through cJSON) */
} jv;

typedef struct jkv {
  const char *k;
  size_t kn;
  jv v;
} jkv;

static const char *ws(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  return p;
}

/* Past the string starting after its opening quote; NULL if unterminated. */
static const char *skip_str(const char *p, const char *end, int *esc) {
  while (p < end && *p != '"') {
    if (*p == '\\') {
      *esc = 1;
      p++;
    }
    p++;
  }
  return p < end ? p : NULL;
}

/* Past one value at p (whitespace skipped); fills v. NULL when malformed. */
static const char *skip_value(const char *p, const char *end, jv *v) {
  p = ws(p, end);
  if (p >= end) return NULL;
  v->esc = 0;
  if (*p == '"') {
    const char *q = skip_str(p + 1, end, &v->esc);
    if (!q) return NULL;
    v->p = p + 1;
    v->n = (size_t)(q - p - 1);
    v->type = 's';
    return q + 1;
  }
  if (*p == '{' || *p == '[') {
    int depth = 0, esc = 0;
    const char *q = p;
    for (; q < end; q++) {
      if (*q == '"') {
        if (!(q = skip_str(q + 1, end, &esc))) return NULL;
      } else if (*q == '{' || *q == '[') {
        depth++;
      } else if (*q == '}' || *q == ']') {
        if (--depth == 0) break;
      }
    }
    if (q >= end) return NULL;
    v->p = p;
    v->n = (size_t)(q + 1 - p);
    v->type = *p == '{' ? 'o' : 'a';
    return q + 1;
  }
  const char *q = p;
  while (q < end && *q != ',' && *q != '}' && *q != ']' && *q != ' ' && *q != '\n') q++;
  v->p = p;
  v->n = (size_t)(q - p);
  v->type = 'x';
  return q;
}

/* The top-level members of the object [p, p+n), at most max; -1 if malformed. */
static int scan_object(const char *p, size_t n, jkv *kv, int max) {
  const char *end = p + n;
  p = ws(p, end);
  if (p >= end || *p != '{') return -1;
  p = ws(p + 1, end);
  int k = 0;
  if (p < end && *p == '}') return 0;
  while (p < end) {
    if (*p != '"') return -1;
    int esc = 0;
    const char *q = skip_str(p + 1, end, &esc);
    if (!q) return -1;
    jkv cur = {p + 1, (size_t)(q - p - 1), {NULL, 0, 0, 0}};
    p = ws(q + 1, end);
    if (p >= end || *p != ':') return -1;
    if (!(p = skip_value(p + 1, end, &cur.v))) return -1;
    if (k < max) kv[k++] = cur;
    p = ws(p, end);
    if (p < end && *p == ',') {
      p = ws(p + 1, end);
      continue;
    }
    if (p < end && *p == '}') return k;
    return -1;
  }
  return -1;
}

static const jv *member(const jkv *kv, int n, const char *key) {
  size_t kl = strlen(key);
  for (int i = 0; i < n; i++)
    if (kv[i].kn == kl && !memcmp(kv[i].k, key, kl)) return &kv[i].v;
  return NULL;
}

/* A value's text, NUL-terminated in the arena: a string decoded, anything
 * else as written. NULL when out of memory or undecodable. */
static char *text_of(lode_otlp_enc *e, const jv *v) {
  if (v->type == 's' && v->esc) {
    /* escapes: let cJSON decode the quoted string */
    cJSON *d = cJSON_ParseWithLength(v->p - 1, v->n + 2);
    char *out = NULL;
    if (cJSON_IsString(d)) {
      size_t l = strlen(d->valuestring);
      if ((out = arena(e, l + 1))) memcpy(out, d->valuestring, l + 1);
    }
    cJSON_Delete(d);
    return out;
  }
  char *out = arena(e, v->n + 1);
  if (out) {
    memcpy(out, v->p, v->n);
    out[v->n] = 0;
  }
  return out;
}

/* A string member's text, or NULL (absent, not a string, no memory). */
static char *str_of(lode_otlp_enc *e, const jkv *kv, int n, const char *key) {
  const jv *v = member(kv, n, key);
  return v && v->type == 's' ? text_of(e, v) : NULL;
}

/* A number member as an integer; 0 when it is not a number. */
static int int_of(const jv *v, int64_t *out) {
  if (!v || v->type != 'x' || v->n == 0 || v->n > 30) return 0;
  char b[32];
  memcpy(b, v->p, v->n);
  b[v->n] = 0;
  char *endp = NULL;
  double d = strtod(b, &endp);
  if (endp == b || *endp) return 0;
  *out = (int64_t)d;
  return 1;
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
#define MAX_MEMBERS 48

/* The raw JSON of a member (not null) as a string attribute. */
static int add_raw(lode_otlp_enc *e, attrs *at, const char *key, const jv *v) {
  if (!v || (v->type == 'x' && v->n == 4 && !memcmp(v->p, "null", 4))) return 0;
  const char *t;
  if (v->type == 's') { /* keep it JSON: the quotes too */
    jv q = {v->p - 1, v->n + 2, 'x', 0};
    t = text_of(e, &q);
  } else {
    t = text_of(e, v);
  }
  return t ? add_str(e, at, key, t) : -1;
}

int lode_otlp_enc_add(lode_otlp_enc *e, const char *body, size_t len) {
  jkv kv[MAX_MEMBERS];
  int nk = scan_object(body, len, kv, MAX_MEMBERS);
  if (nk < 0) return -1;
  if (!member(kv, nk, "end_time")) return 0; /* still open */
  char *id = str_of(e, kv, nk, "id"), *trace = str_of(e, kv, nk, "trace_id");
  char *parent = str_of(e, kv, nk, "parent_span_id");
  char *end = str_of(e, kv, nk, "end_time");
  uint8_t tid[16], sid[8], pid[8];
  if (!id || !trace || !end || lode_otlp_trace_id(trace, tid) || lode_otlp_span_id(id, sid))
    return -1;
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
  char *name = str_of(e, kv, nk, "name");
  s->name = name ? name : "span";
  s->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_INTERNAL;
  s->start_time_unix_nano = iso_ns(str_of(e, kv, nk, "start_time"));
  s->end_time_unix_nano = iso_ns(end);
  if (s->end_time_unix_nano < s->start_time_unix_nano)
    s->end_time_unix_nano = s->start_time_unix_nano;
  int rc = 0;
  rc |= add_str(e, &at, "opik.trace_id", trace);
  rc |= add_str(e, &at, "opik.span_id", id);
  if (parent) rc |= add_str(e, &at, "opik.parent_span_id", parent);
  const char *type = str_of(e, kv, nk, "type");
  if (type) rc |= add_str(e, &at, "opik.span_type", type);
  if (type && (!strcmp(type, "llm") || !strcmp(type, "tool")))
    s->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT;
  rc |= add_raw(e, &at, "input", member(kv, nk, "input"));
  rc |= add_raw(e, &at, "output", member(kv, nk, "output"));
  const jv *meta = member(kv, nk, "metadata");
  const char *caller = NULL;
  if (meta && meta->type == 'o') {
    jkv mk[MAX_MEMBERS];
    int nm = scan_object(meta->p, meta->n, mk, MAX_MEMBERS);
    for (size_t i = 0; nm > 0 && i < sizeof meta_keys / sizeof *meta_keys; i++) {
      const jv *v = member(mk, nm, meta_keys[i].from);
      int64_t x;
      if (int_of(v, &x)) rc |= add_int(e, &at, meta_keys[i].to, x);
      else if (v && v->type == 's') rc |= add_str(e, &at, meta_keys[i].to, text_of(e, v));
    }
    if (nm > 0) caller = str_of(e, mk, nm, "caller_traceparent");
    rc |= add_raw(e, &at, "opik.metadata", meta);
  }
  const jv *tags = member(kv, nk, "tags");
  if (tags && tags->type == 'a' && tags->n > 2) {
    cJSON *doc = cJSON_ParseWithLength(tags->p, tags->n);
    if (!doc || keep_ptr((void ***)&e->docs, &e->ndocs, &e->capdocs, doc)) {
      cJSON_Delete(doc);
      return -1;
    }
    int n = cJSON_GetArraySize(doc), k = 0;
    arr_t *arr = arena(e, sizeof *arr);
    any_t **vals = arena(e, (size_t)(n ? n : 1) * sizeof *vals);
    any_t *a = new_any(e);
    if (!arr || !vals || !a) return -1;
    arr_t ainit = OPENTELEMETRY__PROTO__COMMON__V1__ARRAY_VALUE__INIT;
    *arr = ainit;
    const cJSON *t;
    cJSON_ArrayForEach(t, doc) {
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
  const char *model = str_of(e, kv, nk, "model"), *provider = str_of(e, kv, nk, "provider");
  if (model) rc |= add_str(e, &at, "gen_ai.request.model", model);
  if (provider) rc |= add_str(e, &at, "gen_ai.provider.name", provider);
  const jv *usage = member(kv, nk, "usage");
  if (usage && usage->type == 'o') {
    static const struct {
      const char *from, *to;
    } uk[] = {{"prompt_tokens", "gen_ai.usage.input_tokens"},
              {"completion_tokens", "gen_ai.usage.output_tokens"},
              {"input_tokens", "gen_ai.usage.input_tokens"},
              {"output_tokens", "gen_ai.usage.output_tokens"}};
    jkv uv[MAX_MEMBERS];
    int nu = scan_object(usage->p, usage->n, uv, MAX_MEMBERS);
    for (size_t i = 0; nu > 0 && i < sizeof uk / sizeof *uk; i++) {
      int64_t x;
      if (int_of(member(uv, nu, uk[i].from), &x)) rc |= add_int(e, &at, uk[i].to, x);
    }
  }
  /* an error: status and an exception event with the traceback */
  const jv *ei = member(kv, nk, "error_info");
  if (ei && ei->type == 'o') {
    jkv ev_kv[8];
    int ne = scan_object(ei->p, ei->n, ev_kv, 8);
    const char *msg = ne > 0 ? str_of(e, ev_kv, ne, "message") : NULL;
    st->code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
    st->message = (char *)(msg ? msg : "");
    event_t *ev = arena(e, sizeof *ev);
    event_t **evp = arena(e, sizeof *evp);
    attrs ea = {arena(e, 3 * sizeof(kv_t *)), 0, 3};
    if (!ev || !evp || !ea.p) return -1;
    event_t einit = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__EVENT__INIT;
    *ev = einit;
    ev->name = "exception";
    ev->time_unix_nano = s->end_time_unix_nano;
    if (ne > 0) {
      rc |= add_str(e, &ea, "exception.type", str_of(e, ev_kv, ne, "exception_type"));
      rc |= add_str(e, &ea, "exception.message", msg);
      rc |= add_str(e, &ea, "exception.stacktrace", str_of(e, ev_kv, ne, "traceback"));
    }
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
