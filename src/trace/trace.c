/* trace.c - trace records: building Opik bodies (pure logic) and handing the
 * finished rows to the state database (state/trace_store.h). */
#include "trace/trace.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "base/error.h"
#include "base/util.h"
#include "state/trace_store.h"
#include "trace/opik_config.h"

/* ---- disabled flag --------------------------------------------------------- */

static atomic_int forced_disabled = -1;
static int config_disabled;
static pthread_once_t config_once = PTHREAD_ONCE_INIT;

static void read_config_disabled(void) {
  lode_opik_config cfg;
  char err[256];
  /* A broken config file is reported by whoever starts the exporter; here
   * only the environment decides. */
  if (lode_opik_config_load(&cfg, NULL, err, sizeof err) == 0) {
    config_disabled = cfg.track_disable;
    lode_opik_config_free(&cfg);
  } else {
    config_disabled = lode__opik_truthy(getenv("OPIK_TRACK_DISABLE"));
  }
}

void lode_trace_set_disabled(int disabled) { atomic_store(&forced_disabled, disabled); }

int lode_trace_disabled(void) {
  int f = atomic_load(&forced_disabled);
  if (f >= 0) return f;
  pthread_once(&config_once, read_config_disabled);
  return config_disabled;
}

/* ---- body building ----------------------------------------------------------- */

/* A value that does not fit is cut at a UTF-8 boundary, never dropped, and
 * says so: the text keeps a marker and the wrapper carries the sizes. */
static cJSON *truncated_value(const char *text, size_t len, const char *wrap_key) {
  size_t cut = LODE_TRACE_MAX_VALUE_BYTES;
  while (cut > 0 && ((unsigned char)text[cut] & 0xC0) == 0x80) cut--;
  char marker[96];
  int mn = snprintf(marker, sizeof marker, " ...[truncated by lode: %zu of %zu bytes kept]", cut, len);
  char *s = malloc(cut + (size_t)mn + 1);
  cJSON *w = cJSON_CreateObject();
  if (!s || !w) goto oom;
  memcpy(s, text, cut);
  memcpy(s + cut, marker, (size_t)mn + 1);
  if (!cJSON_AddStringToObject(w, wrap_key, s) || !cJSON_AddTrueToObject(w, "lode_truncated") ||
      !cJSON_AddNumberToObject(w, "lode_original_bytes", (double)len))
    goto oom;
  free(s);
  return w;
oom:
  free(s);
  cJSON_Delete(w);
  return NULL;
}

/* Parses caller JSON; text that is not JSON is kept as a string rather than
 * dropped, and a non-object is wrapped under `wrap_key` as Opik's SDK does
 * (Opik's input/output/metadata fields only take objects). */
static int add_json_field(cJSON *obj, const char *field, const char *text, const char *wrap_key) {
  if (!text) return 0;
  size_t len = strlen(text);
  if (len > LODE_TRACE_MAX_VALUE_BYTES) {
    cJSON *t = truncated_value(text, len, wrap_key);
    if (!t) return -1;
    cJSON_AddItemToObject(obj, field, t);
    return 0;
  }
  /* require the whole text to be JSON: `1 junk` is text, not the number 1 */
  cJSON *v = cJSON_ParseWithOpts(text, NULL, 1);
  if (!v) v = cJSON_CreateString(text);
  if (!v) return -1;
  if (!cJSON_IsObject(v)) {
    cJSON *w = cJSON_CreateObject();
    if (!w) {
      cJSON_Delete(v);
      return -1;
    }
    cJSON_AddItemToObject(w, wrap_key, v);
    v = w;
  }
  cJSON_AddItemToObject(obj, field, v);
  return 0;
}

/* ---- raw JSON fields ----------------------------------------------------------
 * Inputs and outputs are JSON text made by lode (lode_span_json), often tens
 * of KiB: parsing them into a tree only to print them again costs more than
 * the rest of the record. Strictly valid JSON (RFC 8259) is spliced into the
 * body as it is; anything else takes the tree path above (kept as a string,
 * cut when too large), so the result is the same either way. */

typedef struct jv {
  const char *p, *end;
  int depth;
} jv;

static void jv_ws(jv *v) {
  while (v->p < v->end && (*v->p == ' ' || *v->p == '\t' || *v->p == '\n' || *v->p == '\r'))
    v->p++;
}

static int jv_lit(jv *v, const char *w) {
  size_t n = strlen(w);
  if ((size_t)(v->end - v->p) < n || memcmp(v->p, w, n)) return 0;
  v->p += n;
  return 1;
}

static int jv_string(jv *v) {
  if (v->p >= v->end || *v->p != '"') return 0;
  v->p++;
  while (v->p < v->end) {
    unsigned char c = (unsigned char)*v->p++;
    if (c == '"') return 1;
    if (c < 0x20) return 0;
    if (c == '\\') {
      if (v->p >= v->end) return 0;
      char e = *v->p++;
      if (e == 'u') {
        for (int i = 0; i < 4; i++, v->p++)
          if (v->p >= v->end || !((*v->p >= '0' && *v->p <= '9') ||
                                  (*v->p >= 'a' && *v->p <= 'f') || (*v->p >= 'A' && *v->p <= 'F')))
            return 0;
      } else if (!strchr("\"\\/bfnrt", e) || !e) {
        return 0;
      }
    }
  }
  return 0;
}

static int jv_digits(jv *v) {
  const char *s = v->p;
  while (v->p < v->end && *v->p >= '0' && *v->p <= '9') v->p++;
  return v->p > s;
}

static int jv_number(jv *v) {
  if (v->p < v->end && *v->p == '-') v->p++;
  if (v->p < v->end && *v->p == '0') v->p++;
  else if (!jv_digits(v)) return 0;
  if (v->p < v->end && *v->p == '.') {
    v->p++;
    if (!jv_digits(v)) return 0;
  }
  if (v->p < v->end && (*v->p == 'e' || *v->p == 'E')) {
    v->p++;
    if (v->p < v->end && (*v->p == '+' || *v->p == '-')) v->p++;
    if (!jv_digits(v)) return 0;
  }
  return 1;
}

static int jv_value(jv *v) {
  jv_ws(v);
  if (v->p >= v->end) return 0;
  char c = *v->p;
  if (c == '"') return jv_string(v);
  if (c == 't') return jv_lit(v, "true");
  if (c == 'f') return jv_lit(v, "false");
  if (c == 'n') return jv_lit(v, "null");
  if (c == '{' || c == '[') {
    if (++v->depth > 500) return 0;
    char close = c == '{' ? '}' : ']';
    v->p++;
    jv_ws(v);
    if (v->p < v->end && *v->p == close) {
      v->p++;
      v->depth--;
      return 1;
    }
    for (;;) {
      if (c == '{') {
        jv_ws(v);
        if (!jv_string(v)) return 0;
        jv_ws(v);
        if (v->p >= v->end || *v->p++ != ':') return 0;
      }
      if (!jv_value(v)) return 0;
      jv_ws(v);
      if (v->p >= v->end) return 0;
      if (*v->p == ',') {
        v->p++;
        continue;
      }
      if (*v->p++ != close) return 0;
      v->depth--;
      return 1;
    }
  }
  return jv_number(v);
}

/* 1: an object, 2: another valid value, 0: not (strict) JSON. */
static int json_kind(const char *text, size_t len) {
  jv v = {text, text + len, 0};
  jv_ws(&v);
  int obj = v.p < v.end && *v.p == '{';
  if (!jv_value(&v)) return 0;
  jv_ws(&v);
  if (v.p != v.end) return 0;
  return obj ? 1 : 2;
}

typedef struct raw_field {
  const char *key, *text; /* text NULL: none */
  int wrap;               /* 1: a non-object, sent as {"key": text} */
} raw_field;

/* Takes `text` as a raw field when it can be spliced; else adds it to obj
 * (the tree path). */
static int add_field(cJSON *obj, raw_field *raw, const char *field, const char *text) {
  raw->key = field;
  raw->text = NULL;
  if (!text) return 0;
  size_t len = strlen(text);
  int kind = len <= LODE_TRACE_MAX_VALUE_BYTES ? json_kind(text, len) : 0;
  if (kind) {
    raw->text = text;
    raw->wrap = kind == 2;
    return 0;
  }
  return add_json_field(obj, field, text, field);
}

/* The printed body with the raw fields added before its closing brace. */
static char *splice(char *body, const raw_field *raw, int n) {
  size_t len = strlen(body), add = 0;
  for (int i = 0; i < n; i++)
    if (raw[i].text) add += strlen(raw[i].text) + 2 * strlen(raw[i].key) + 16;
  if (!add) return body;
  char *out = malloc(len + add + 1);
  if (!out) {
    cJSON_free(body);
    return NULL;
  }
  memcpy(out, body, len - 1); /* without the '}' */
  size_t o = len - 1;
  int first = len == 2;
  for (int i = 0; i < n; i++) {
    if (!raw[i].text) continue;
    o += (size_t)sprintf(out + o, first ? "\"%s\":" : ",\"%s\":", raw[i].key);
    first = 0;
    if (raw[i].wrap) o += (size_t)sprintf(out + o, "{\"%s\":", raw[i].key);
    size_t tl = strlen(raw[i].text);
    memcpy(out + o, raw[i].text, tl);
    o += tl;
    if (raw[i].wrap) out[o++] = '}';
  }
  out[o++] = '}';
  out[o] = 0;
  cJSON_free(body);
  return out;
}

static int add_str(cJSON *obj, const char *k, const char *v) {
  if (!v) return 0;
  return cJSON_AddStringToObject(obj, k, v) ? 0 : -1;
}

static int add_time(cJSON *obj, const char *k, int64_t ms) {
  char iso[80];
  lode_iso8601(ms, iso);
  return cJSON_AddStringToObject(obj, k, iso) ? 0 : -1;
}

/* Opik requires unique tags. */
static int add_tags(cJSON *obj, const char *const *tags, int ntags) {
  if (!tags || ntags <= 0) return 0;
  cJSON *a = cJSON_AddArrayToObject(obj, "tags");
  if (!a) return -1;
  for (int i = 0; i < ntags; i++) {
    if (!tags[i]) continue;
    int dup = 0;
    for (int j = 0; j < i && !dup; j++) dup = tags[j] && !strcmp(tags[j], tags[i]);
    if (!dup && !cJSON_AddItemToArray(a, cJSON_CreateString(tags[i]))) return -1;
  }
  return 0;
}

/* error_info needs a non-empty exception_type and traceback. */
static int add_error(cJSON *obj, const char *type, const char *msg, const char *tb) {
  if (!type && !msg && !tb) return 0;
  cJSON *e = cJSON_AddObjectToObject(obj, "error_info");
  if (!e) return -1;
  const char *t = type && *type ? type : "Error";
  const char *trace = tb && *tb ? tb : (msg && *msg ? msg : t);
  /* bounded like the rows' errors (base/error.h) */
  int oom1, oom2;
  char *cmsg = lode_error_cut(msg, LODE_ERROR_MAX_BYTES, &oom1);
  char *ctrace = lode_error_cut(trace, LODE_ERROR_MAX_BYTES, &oom2);
  int rc = 0;
  if (oom1 || oom2 || add_str(e, "exception_type", t) ||
      add_str(e, "message", cmsg ? cmsg : msg) || add_str(e, "traceback", ctrace ? ctrace : trace))
    rc = -1;
  free(cmsg);
  free(ctrace);
  return rc;
}

/* Opik's usage map takes int32 counts only; anything else (floats, strings,
 * nested costs) is kept in metadata.usage so nothing is lost. */
static int add_usage(cJSON *obj, const char *usage_json) {
  if (!usage_json) return 0;
  cJSON *u = cJSON_ParseWithOpts(usage_json, NULL, 1);
  if (!cJSON_IsObject(u)) {
    cJSON_Delete(u);
    return 0;
  }
  cJSON *out = cJSON_CreateObject(), *rest = NULL, *it;
  if (!out) goto oom;
  cJSON_ArrayForEach(it, u) {
    double d = it->valuedouble;
    if (cJSON_IsNumber(it) && d == (double)(int32_t)d && d >= -2147483648.0 && d <= 2147483647.0) {
      if (!cJSON_AddNumberToObject(out, it->string, d)) goto oom;
    } else {
      if (!rest && !(rest = cJSON_CreateObject())) goto oom;
      cJSON *c = cJSON_Duplicate(it, 1);
      if (!c) goto oom;
      cJSON_AddItemToObject(rest, it->string, c);
    }
  }
  cJSON_AddItemToObject(obj, "usage", out);
  out = NULL;
  if (rest) {
    cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    if (!md && !(md = cJSON_AddObjectToObject(obj, "metadata"))) goto oom;
    cJSON_DeleteItemFromObjectCaseSensitive(md, "usage");
    cJSON_AddItemToObject(md, "usage", rest);
    rest = NULL;
  }
  cJSON_Delete(u);
  return 0;
oom:
  cJSON_Delete(out);
  cJSON_Delete(rest);
  cJSON_Delete(u);
  return -1;
}

static int valid_type(const char *t) {
  return !strcmp(t, "general") || !strcmp(t, "tool") || !strcmp(t, "llm") ||
         !strcmp(t, "guardrail");
}

/* Opik needs valid UTF-8, and Lua strings are bytes: invalid sequences in any
 * field become U+FFFD. JSON's own syntax is ASCII, so repairing bytes inside
 * strings keeps the document valid. Returns NULL when `s` is already valid
 * (the common case, no copy), else a malloc'd repaired copy (or NULL with
 * *oom set). */
static char *utf8_repair(const char *s, int *oom) {
  const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
  size_t n = strlen(s), i = 0;
  utf8proc_int32_t cp;
  *oom = 0;
  while (i < n) {
    if (p[i] < 0x80) { /* ASCII, most of every record: no decoding */
      i++;
      continue;
    }
    utf8proc_ssize_t k = utf8proc_iterate(p + i, (utf8proc_ssize_t)(n - i), &cp);
    if (k < 0) break;
    i += (size_t)k;
  }
  if (i == n) return NULL;
  char *out = malloc(n * 3 + 1), *o = out;
  if (!out) {
    *oom = 1;
    return NULL;
  }
  memcpy(o, s, i);
  o += i;
  while (i < n) {
    utf8proc_ssize_t k = utf8proc_iterate(p + i, (utf8proc_ssize_t)(n - i), &cp);
    if (k < 0) {
      memcpy(o, "\xEF\xBF\xBD", 3);
      o += 3;
      i++;
    } else {
      memcpy(o, s + i, (size_t)k);
      o += k;
      i += (size_t)k;
    }
  }
  *o = 0;
  return out;
}

/* ---- upsert ------------------------------------------------------------------- */

typedef struct row {
  const char *id, *kind, *trace_id, *parent_id, *name, *type;
  int64_t start_ms, end_ms;
  const char *error_type, *error_message;
  const char *body;
} row;

/* Stores the record: its text made valid UTF-8, its error line for `lode
 * trace`, its export state. The upsert runs in the caller's transaction. */
static int store(lode_sysdb *db, const row *r, char *err, size_t errlen) {
  char errtxt[512];
  int rc = -1, oom1, oom2 = 0;
  char *fixed_body = utf8_repair(r->body, &oom1), *fixed_name = NULL;
  if (r->name) fixed_name = utf8_repair(r->name, &oom2);
  if (oom1 || oom2) {
    snprintf(err, errlen, "storing %s %s: out of memory", r->kind, r->id);
    goto done;
  }
  errtxt[0] = 0;
  if (r->error_type || r->error_message) {
    /* cut at a character boundary: `lode trace` prints this column */
    snprintf(errtxt, sizeof errtxt, "%s%s%s", r->error_type ? r->error_type : "Error",
             r->error_message ? ": " : "", r->error_message ? r->error_message : "");
    size_t n = strlen(errtxt);
    if (n == sizeof errtxt - 1)
      while (n > 0 && ((unsigned char)errtxt[n] & 0xC0) == 0x80) errtxt[n--] = 0;
  }
  lode_trace_row tr = {r->id, r->kind, r->trace_id, r->parent_id,
                       fixed_name ? fixed_name : r->name, r->type, r->start_ms, r->end_ms,
                       errtxt[0] ? errtxt : NULL, fixed_body ? fixed_body : r->body,
                       lode_trace_disabled() ? LODE_TRACE_DISABLED : LODE_TRACE_PENDING};
  rc = lode_sysdb_trace_put(db, &tr, err, errlen) == LODE_OK ? 0 : -1;
done:
  free(fixed_body);
  free(fixed_name);
  return rc;
}

static int check_id(const char *what, const char *id, char *err, size_t errlen) {
  if (id && strlen(id) == 36) return 0;
  snprintf(err, errlen, "%s: '%.40s' is not a UUID (use lode_uuid7)", what, id ? id : "(null)");
  return -1;
}

int lode_trace_put_span(lode_sysdb *db, const lode_span_rec *s, char *err, size_t errlen) {
  int rc = -1;
  char *body = NULL;
  cJSON *o = NULL;
  const char *type = s->type && *s->type ? s->type : "general";
  if (check_id("span id", s->id, err, errlen) || check_id("span trace_id", s->trace_id, err, errlen))
    return -1;
  if (s->parent_span_id && check_id("span parent_span_id", s->parent_span_id, err, errlen))
    return -1;
  if (!valid_type(type)) {
    snprintf(err, errlen, "span %s: type '%.40s' is not one of general, tool, llm, guardrail",
             s->id, type);
    return -1;
  }
  raw_field raw[3] = {{0}};
  if (!(o = cJSON_CreateObject())) goto oom;
  if (add_str(o, "id", s->id) || add_str(o, "trace_id", s->trace_id) ||
      add_str(o, "parent_span_id", s->parent_span_id) ||
      add_str(o, "name", s->name ? s->name : "span") || add_str(o, "type", type) ||
      add_time(o, "start_time", s->start_ms) ||
      (s->end_ms > 0 && add_time(o, "end_time", s->end_ms)) ||
      add_field(o, &raw[0], "input", s->input_json) ||
      add_field(o, &raw[1], "output", s->output_json) ||
      /* usage may add to metadata: then metadata takes the tree path */
      (s->usage_json ? add_json_field(o, "metadata", s->metadata_json, "metadata")
                     : add_field(o, &raw[2], "metadata", s->metadata_json)) ||
      add_tags(o, s->tags, s->ntags) || add_str(o, "model", s->model) ||
      add_str(o, "provider", s->provider) || add_usage(o, s->usage_json) ||
      add_error(o, s->error_type, s->error_message, s->error_traceback))
    goto oom;
  if (!(body = cJSON_PrintUnformatted(o)) || !(body = splice(body, raw, 3))) goto oom;
  row r = {s->id, "span", s->trace_id, s->parent_span_id, s->name ? s->name : "span", type,
           s->start_ms, s->end_ms, s->error_type, s->error_message, body};
  rc = store(db, &r, err, errlen);
  goto done;
oom:
  snprintf(err, errlen, "span %s: out of memory building its record", s->id);
done:
  cJSON_free(body);
  cJSON_Delete(o);
  return rc;
}

int lode_trace_put_trace(lode_sysdb *db, const lode_trace_rec *t, char *err, size_t errlen) {
  int rc = -1;
  char *body = NULL;
  cJSON *o = NULL;
  if (check_id("trace id", t->id, err, errlen)) return -1;
  raw_field raw[3] = {{0}};
  if (!(o = cJSON_CreateObject())) goto oom;
  if (add_str(o, "id", t->id) || add_str(o, "name", t->name ? t->name : "trace") ||
      add_time(o, "start_time", t->start_ms) ||
      (t->end_ms > 0 && add_time(o, "end_time", t->end_ms)) ||
      add_field(o, &raw[0], "input", t->input_json) ||
      add_field(o, &raw[1], "output", t->output_json) ||
      add_field(o, &raw[2], "metadata", t->metadata_json) ||
      add_tags(o, t->tags, t->ntags) ||
      add_error(o, t->error_type, t->error_message, t->error_traceback))
    goto oom;
  if (!(body = cJSON_PrintUnformatted(o)) || !(body = splice(body, raw, 3))) goto oom;
  row r = {t->id, "trace", t->id, NULL, t->name ? t->name : "trace", NULL,
           t->start_ms, t->end_ms, t->error_type, t->error_message, body};
  rc = store(db, &r, err, errlen);
  goto done;
oom:
  snprintf(err, errlen, "trace %s: out of memory building its record", t->id);
done:
  cJSON_free(body);
  cJSON_Delete(o);
  return rc;
}

int lode_trace_put_feedback(lode_sysdb *db, const char *trace_id, const char *name, double value,
                            const char *reason, char *err, size_t errlen) {
  int rc = -1;
  char *body = NULL, *rowid = NULL;
  cJSON *o = NULL;
  if (check_id("feedback trace_id", trace_id, err, errlen)) return -1;
  if (!name || !*name) {
    snprintf(err, errlen, "feedback on trace %s: the score needs a non-empty name", trace_id);
    return -1;
  }
  if (!(value >= -999999999.0 && value <= 999999999.0)) {
    snprintf(err, errlen, "feedback '%.80s' on trace %s: value must be a finite number "
             "within +-999999999", name, trace_id);
    return -1;
  }
  size_t n = strlen(trace_id) + strlen(name) + 5;
  if (!(rowid = malloc(n))) goto oom;
  /* one row per (trace, name): Opik keeps one score per name too */
  snprintf(rowid, n, "fb:%s:%s", trace_id, name);
  if (!(o = cJSON_CreateObject())) goto oom;
  if (add_str(o, "id", trace_id) || add_str(o, "name", name) ||
      !cJSON_AddNumberToObject(o, "value", value) || add_str(o, "reason", reason) ||
      add_str(o, "source", "sdk"))
    goto oom;
  if (!(body = cJSON_PrintUnformatted(o))) goto oom;
  row r = {rowid, "feedback", trace_id, NULL, name, NULL, lode_now_ms(), 0, NULL, NULL, body};
  rc = store(db, &r, err, errlen);
  goto done;
oom:
  snprintf(err, errlen, "feedback on trace %s: out of memory building its record", trace_id);
done:
  cJSON_free(body);
  cJSON_Delete(o);
  free(rowid);
  return rc;
}
