/* lode_lua_http.c - lode.http: an HTTP client for steps (docs/lua-api.md,
 * "lode.http").
 *
 * Each request is a span (type `tool` unless set) under the running one,
 * and carries the running context out: traceparent, baggage (with the Opik
 * ids) and opik_trace_id / opik_parent_span_id, naming the request's own
 * span as the parent, so a service that reads them nests its spans under
 * it. libcurl through src/base/http.c; TLS verification is always on (a
 * CA file may be given, never an off switch). A transport failure, a
 * timeout, a response over the size limit and (with `check`) an HTTP
 * error status raise an error naming the method and URL; the step's retry
 * options retry it like any other error.
 *
 * Ownership: everything a request allocates is freed before its result or
 * its error goes back to Lua (luaL_error does not return). */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/log.h"
#include "base/http.h"
#include "base/util.h"
#include "lua/lode_lua_internal.h"

#define DEFAULT_TIMEOUT_S 30.0
#define DEFAULT_MAX_BYTES ((size_t)16 << 20)
#define MAX_HEADER_BYTES ((size_t)256 << 10)
#define DEFAULT_REDIRECTS 5
#define MAX_REQ_HEADERS 64
#define SPAN_BODY_MAX ((size_t)64 << 10) /* request/response bodies kept in the span */

/* ---- JSON <-> Lua --------------------------------------------------------------- */

static cJSON *to_json(lua_State *L, int idx, int depth, char *err, size_t errlen);

/* A table is an array when its keys are exactly 1..n (n > 0). */
static int is_array(lua_State *L, int idx) {
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx), count = 0;
  if (n == 0) return 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    count++;
  }
  return count == n;
}

static cJSON *to_json(lua_State *L, int idx, int depth, char *err, size_t errlen) {
  idx = lua_absindex(L, idx);
  if (depth > 100) {
    snprintf(err, errlen, "nested more than 100 levels (a cycle?)");
    return NULL;
  }
  switch (lua_type(L, idx)) {
  case LUA_TNIL: return cJSON_CreateNull();
  case LUA_TBOOLEAN: return cJSON_CreateBool(lua_toboolean(L, idx));
  case LUA_TNUMBER: return cJSON_CreateNumber(lua_tonumber(L, idx));
  case LUA_TSTRING: return cJSON_CreateString(lua_tostring(L, idx));
  case LUA_TTABLE: break;
  default:
    snprintf(err, errlen, "a %s cannot be sent as JSON", luaL_typename(L, idx));
    return NULL;
  }
  luaL_checkstack(L, 4, "JSON");
  if (is_array(L, idx)) {
    cJSON *a = cJSON_CreateArray();
    for (lua_Integer i = 1; a && i <= (lua_Integer)lua_rawlen(L, idx); i++) {
      lua_rawgeti(L, idx, i);
      cJSON *v = to_json(L, -1, depth + 1, err, errlen);
      lua_pop(L, 1);
      if (!v) {
        cJSON_Delete(a);
        return NULL;
      }
      cJSON_AddItemToArray(a, v);
    }
    return a;
  }
  cJSON *o = cJSON_CreateObject();
  lua_pushnil(L);
  while (o && lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING && lua_type(L, -2) != LUA_TNUMBER) {
      lua_pop(L, 2);
      snprintf(err, errlen, "a JSON object's keys are strings");
      cJSON_Delete(o);
      return NULL;
    }
    lua_pushvalue(L, -2);
    const char *k = lua_tostring(L, -1); /* a copy: tostring on the key itself breaks next */
    cJSON *v = to_json(L, -2, depth + 1, err, errlen);
    if (!v) {
      lua_pop(L, 3);
      cJSON_Delete(o);
      return NULL;
    }
    cJSON_AddItemToObject(o, k, v);
    lua_pop(L, 2);
  }
  return o;
}

/* Pushes the Lua value of a JSON value (null: nil). */
static void push_json(lua_State *L, const cJSON *v, int depth) {
  luaL_checkstack(L, 4, "JSON");
  if (depth > 200 || cJSON_IsNull(v) || !v) {
    lua_pushnil(L);
  } else if (cJSON_IsBool(v)) {
    lua_pushboolean(L, cJSON_IsTrue(v));
  } else if (cJSON_IsNumber(v)) {
    double d = v->valuedouble;
    if (d == (double)(lua_Integer)d && d >= -9007199254740992.0 && d <= 9007199254740992.0)
      lua_pushinteger(L, (lua_Integer)d);
    else lua_pushnumber(L, d);
  } else if (cJSON_IsString(v)) {
    lua_pushstring(L, v->valuestring);
  } else if (cJSON_IsArray(v)) {
    lua_createtable(L, cJSON_GetArraySize(v), 0);
    int i = 1;
    const cJSON *it;
    cJSON_ArrayForEach(it, v) {
      push_json(L, it, depth + 1);
      lua_rawseti(L, -2, i++);
    }
  } else {
    lua_newtable(L);
    const cJSON *it;
    cJSON_ArrayForEach(it, v) {
      push_json(L, it, depth + 1);
      lua_setfield(L, -2, it->string);
    }
  }
}

/* ---- a request -------------------------------------------------------------------- */

typedef struct req {
  char method[16];
  const char *url; /* anchored by the options table */
  char shown[1024]; /* the URL for messages and the span: no user:password, no query */
  const char *body;
  size_t body_len;
  char *json_body; /* malloc'd (cJSON) when `json` was given */
  double timeout_s;
  size_t max_bytes;
  int redirects, check, want_json;
  const char *ca_file, *name, *type;
  char *lines[MAX_REQ_HEADERS]; /* "Name: value", malloc'd */
  int nlines;
  lode_buf out, hdrs;
} req;

static void req_free(req *r) {
  free(r->json_body);
  for (int i = 0; i < r->nlines; i++) free(r->lines[i]);
  lode_buf_free(&r->out);
  lode_buf_free(&r->hdrs);
}

/* url without its user information and query, for messages and spans (a
 * token in either must not reach a log or a trace). */
static void shown_url(const char *url, char *out, size_t outlen) {
  const char *scheme = strstr(url, "://");
  const char *host = scheme ? scheme + 3 : url;
  const char *path = host + strcspn(host, "/?#");
  const char *at = memchr(host, '@', (size_t)(path - host));
  size_t plen = strcspn(path, "?#");
  snprintf(out, outlen, "%.*s%.*s%.*s%s", (int)(host - url), url,
           (int)(path - (at ? at + 1 : host)), at ? at + 1 : host, (int)plen, path,
           path[plen] == '?' ? "?..." : "");
}

/* A header a trace must not keep the value of. */
static int secret_header(const char *name) {
  static const char *const words[] = {"authorization", "cookie", "key", "token", "secret",
                                      "password"};
  char low[128];
  size_t n = strlen(name);
  if (n >= sizeof low) n = sizeof low - 1;
  for (size_t i = 0; i < n; i++) low[i] = (char)tolower((unsigned char)name[i]);
  low[n] = 0;
  for (size_t i = 0; i < sizeof words / sizeof *words; i++)
    if (strstr(low, words[i])) return 1;
  return 0;
}

static int has_line(const req *r, const char *name) {
  size_t n = strlen(name);
  for (int i = 0; i < r->nlines; i++)
    if (!strncasecmp(r->lines[i], name, n) && r->lines[i][n] == ':') return 1;
  return 0;
}

static int add_line(req *r, const char *name, const char *value) {
  if (r->nlines >= MAX_REQ_HEADERS) return -1;
  size_t n = strlen(name) + strlen(value) + 3;
  if (!(r->lines[r->nlines] = malloc(n))) return -1;
  snprintf(r->lines[r->nlines++], n, "%s: %s", name, value);
  return 0;
}

/* Reads the options table at 1 into r. Returns NULL or an error message
 * (static or in errbuf). Raises only through luaL_check* before anything
 * is allocated... except headers, which are freed by the caller. */
static const char *read_opts(lua_State *L, req *r, char *errbuf, size_t errlen) {
  lua_getfield(L, 1, "url");
  r->url = lua_tostring(L, -1);
  lua_pop(L, 1); /* the string stays anchored in the table */
  if (!r->url || !*r->url) return "lode.http.request: `url` (a string) is required";
  shown_url(r->url, r->shown, sizeof r->shown);
  lua_getfield(L, 1, "body");
  if (!lua_isnil(L, -1)) {
    if (!lua_isstring(L, -1)) return "lode.http.request: `body` must be a string";
    r->body = lua_tolstring(L, -1, &r->body_len);
  }
  lua_pop(L, 1);
  lua_getfield(L, 1, "json");
  if (!lua_isnil(L, -1)) {
    char jerr[200];
    cJSON *j = to_json(L, -1, 0, jerr, sizeof jerr);
    if (!j) {
      lua_pop(L, 1);
      snprintf(errbuf, errlen, "lode.http.request: `json`: %s", jerr);
      return errbuf;
    }
    r->json_body = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!r->json_body) return "out of memory";
    r->body = r->json_body;
    r->body_len = strlen(r->json_body);
    r->want_json = 1;
  }
  lua_pop(L, 1);
  lua_getfield(L, 1, "method");
  const char *m = lua_isnil(L, -1) ? (r->body ? "POST" : "GET") : lua_tostring(L, -1);
  if (!m || !*m || strlen(m) >= sizeof r->method || strspn(m, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(m)) {
    lua_pop(L, 1);
    return "lode.http.request: `method` must be an upper-case HTTP method (GET, POST, ...)";
  }
  lode_strlcpy(r->method, m, sizeof r->method);
  lua_pop(L, 1);
  r->timeout_s = DEFAULT_TIMEOUT_S;
  lua_getfield(L, 1, "timeout");
  if (!lua_isnil(L, -1)) {
    r->timeout_s = lua_tonumber(L, -1);
    if (!(r->timeout_s > 0) || r->timeout_s > 86400)
      return "lode.http.request: `timeout` is seconds, > 0";
  }
  lua_pop(L, 1);
  r->max_bytes = DEFAULT_MAX_BYTES;
  lua_getfield(L, 1, "max_bytes");
  if (!lua_isnil(L, -1)) {
    lua_Integer mb = lua_tointeger(L, -1);
    if (mb < 1) return "lode.http.request: `max_bytes` must be a positive integer";
    r->max_bytes = (size_t)mb;
  }
  lua_pop(L, 1);
  r->redirects = DEFAULT_REDIRECTS;
  lua_getfield(L, 1, "redirects");
  if (!lua_isnil(L, -1)) {
    lua_Integer n = lua_tointeger(L, -1);
    if (n < 0 || n > 50) return "lode.http.request: `redirects` is how many to follow, 0 to 50";
    r->redirects = (int)n;
  }
  lua_pop(L, 1);
  lua_getfield(L, 1, "check");
  r->check = lua_toboolean(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, 1, "json_response");
  r->want_json = r->want_json || lua_toboolean(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, 1, "ca_file");
  r->ca_file = lua_tostring(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, 1, "name");
  r->name = lua_tostring(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, 1, "type");
  r->type = lua_isnil(L, -1) ? "tool" : lua_tostring(L, -1);
  lua_pop(L, 1);
  if (!r->type || (strcmp(r->type, "general") && strcmp(r->type, "tool") &&
                   strcmp(r->type, "llm") && strcmp(r->type, "guardrail")))
    return "lode.http.request: `type` must be general, tool, llm or guardrail";
  lua_getfield(L, 1, "headers");
  if (!lua_isnil(L, -1)) {
    if (!lua_istable(L, -1)) {
      lua_pop(L, 1);
      return "lode.http.request: `headers` must be a table of name = value";
    }
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
      const char *v = lua_isstring(L, -1) ? lua_tostring(L, -1) : NULL;
      if (!k || !v || strpbrk(k, ":\r\n") || strpbrk(v, "\r\n")) {
        lua_pop(L, 3);
        return "lode.http.request: each header is name = value, without ':' in the name "
               "or line breaks";
      }
      if (add_line(r, k, v)) {
        lua_pop(L, 3);
        return "lode.http.request: too many headers";
      }
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  if (r->json_body && !has_line(r, "Content-Type") &&
      add_line(r, "Content-Type", "application/json"))
    return "out of memory";
  if (r->want_json && !has_line(r, "Accept") && add_line(r, "Accept", "application/json"))
    return "out of memory";
  return NULL;
}

/* The span's input: method, shown URL, headers (secret values hidden), body. */
static char *span_input(const req *r) {
  cJSON *o = cJSON_CreateObject(), *h = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "method", r->method);
  cJSON_AddStringToObject(o, "url", r->shown);
  for (int i = 0; i < r->nlines; i++) {
    const char *c = strchr(r->lines[i], ':');
    char name[128];
    snprintf(name, sizeof name, "%.*s", (int)(c - r->lines[i]), r->lines[i]);
    cJSON_AddStringToObject(h, name, secret_header(name) ? "[hidden]" : c + 2);
  }
  cJSON_AddItemToObject(o, "headers", h);
  if (r->body && r->body_len <= SPAN_BODY_MAX && memchr(r->body, 0, r->body_len) == NULL)
    cJSON_AddStringToObject(o, "body", r->body);
  else if (r->body)
    cJSON_AddNumberToObject(o, "body_bytes", (double)r->body_len);
  char *t = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  return t;
}

/* Pushes the response headers as a table of lower-case names (repeats
 * joined with ", ") and returns the Content-Type's value (in the table). */
static void push_headers(lua_State *L, const lode_buf *hb) {
  lua_newtable(L);
  if (!hb->len) return;
  const char *p = (const char *)hb->p, *end = p + hb->len;
  while (p && p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *le = nl ? nl : end;
    const char *colon = memchr(p, ':', (size_t)(le - p));
    if (colon && strncmp(p, "HTTP/", 5)) {
      luaL_Buffer name;
      luaL_buffinit(L, &name);
      for (const char *q = p; q < colon; q++) luaL_addchar(&name, (char)tolower((unsigned char)*q));
      luaL_pushresult(&name);
      const char *v = colon + 1;
      while (v < le && (*v == ' ' || *v == '\t')) v++;
      const char *ve = le;
      while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ')) ve--;
      lua_pushvalue(L, -1);
      lua_rawget(L, -3); /* [tbl, name, old] */
      if (lua_isstring(L, -1)) {
        lua_pushliteral(L, ", ");
        lua_pushlstring(L, v, (size_t)(ve - v));
        lua_concat(L, 3);
      } else {
        lua_pop(L, 1);
        lua_pushlstring(L, v, (size_t)(ve - v));
      }
      lua_rawset(L, -3);
    }
    p = nl ? nl + 1 : NULL;
  }
}

/* Sends r. Returns NULL with *resp filled, or the error message in errbuf. */
static const char *perform(req *r, lode_http_resp *resp, char *errbuf, size_t errlen) {
  char err[512];
  lode_http_batch *b = lode_http_batch_new(1, err, sizeof err);
  if (!b) {
    snprintf(errbuf, errlen, "lode.http: %s %s: %.400s", r->method, r->shown, err);
    return errbuf;
  }
  lode_http_req hr;
  memset(&hr, 0, sizeof hr);
  hr.method = r->method;
  hr.url = r->url;
  hr.headers = (const char *const *)r->lines;
  hr.nheaders = r->nlines;
  hr.body = r->body;
  hr.len = r->body_len;
  hr.timeout_s = r->timeout_s;
  hr.user_agent = "lode-http/1";
  hr.max_redirects = r->redirects;
  hr.ca_file = r->ca_file;
  hr.resp_headers = &r->hdrs;
  const char *fail = NULL;
  void *ud = NULL;
  if (lode_http_batch_add(b, &hr, &r->out, r, err, sizeof err)) {
    snprintf(errbuf, errlen, "lode.http: %s %s: %.400s", r->method, r->shown, err);
    fail = errbuf;
    goto done;
  }
  for (;;) {
    int got = lode_http_batch_next(b, 1.0, &ud, resp, err, sizeof err);
    if (got < 0) {
      snprintf(errbuf, errlen, "lode.http: %s %s: %.400s", r->method, r->shown, err);
      fail = errbuf;
      goto done;
    }
    if (got == 1) break;
  }
  if (resp->status == 0) {
    const char *e = resp->error;
    if (strstr(e, "timed out") || strstr(e, "Timeout"))
      snprintf(errbuf, errlen, "lode.http: %s %s: timed out after %g s (the request's "
               "`timeout`): %s", r->method, r->shown, r->timeout_s, e);
    else if (strstr(e, "response larger than"))
      snprintf(errbuf, errlen, "lode.http: %s %s: the response is larger than %zu bytes "
               "(the request's `max_bytes`)", r->method, r->shown, r->max_bytes);
    else if (strstr(e, "SSL") || strstr(e, "certificate"))
      snprintf(errbuf, errlen, "lode.http: %s %s: %s (TLS verification is always on: give the "
               "server's CA certificate with `ca_file`)", r->method, r->shown, e);
    else if (strstr(e, "redirect"))
      snprintf(errbuf, errlen, "lode.http: %s %s: %s (the request's `redirects` is %d)",
               r->method, r->shown, e, r->redirects);
    else snprintf(errbuf, errlen, "lode.http: %s %s: %s", r->method, r->shown, e);
    fail = errbuf;
  }
done:
  lode_http_batch_free(b);
  return fail;
}

static int l_request(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  req r;
  memset(&r, 0, sizeof r);
  char errbuf[2048];
  const char *fail = read_opts(L, &r, errbuf, sizeof errbuf);
  if (fail) {
    lua_pushstring(L, fail);
    req_free(&r);
    return lua_error(L);
  }
  lode_buf_init(&r.out, r.max_bytes);
  lode_buf_init(&r.hdrs, MAX_HEADER_BYTES);
  char name[1100];
  snprintf(name, sizeof name, "%s", r.name ? r.name : "");
  if (!r.name) snprintf(name, sizeof name, "HTTP %s %s", r.method, r.shown);
  char errtmp[LODE_LUA_ERRLEN];
  lode_exec *ex = lode_host_exec(L, errtmp, sizeof errtmp); /* NULL: untraced, still runs */
  lode_span_frame *f = lode__frame_push(L, LODE_FRAME_TRACK, name, r.type);
  /* the context goes out naming this request's span as the parent; the
   * step's own headers win */
  lode_ctx_headers *ch = malloc(sizeof *ch);
  if (ch && lode_ctx_headers_make(ch, lode__frame_trace_id(f), lode__frame_id(f)) == 0)
    for (int i = 0; i < LODE_CTX_HEADERS; i++)
      if (!has_line(&r, ch->name[i])) add_line(&r, ch->name[i], ch->value[i]);
  free(ch);
  char *in = span_input(&r);
  lode_http_resp *resp = calloc(1, sizeof *resp);
  if (!resp) fail = "out of memory";
  else fail = perform(&r, resp, errbuf, sizeof errbuf);
  if (!fail && r.check && (resp->status < 200 || resp->status >= 300)) {
    snprintf(errbuf, sizeof errbuf, "lode.http: %s %s: HTTP %ld: %.300s", r.method, r.shown,
             resp->status, r.out.len ? lode_buf_cstr(&r.out) : "");
    fail = errbuf;
  }
  /* the span: OTel's HTTP client attributes as metadata, the response */
  char meta[1400];
  snprintf(meta, sizeof meta, "{\"http.request.method\":\"%s\",\"http.response.status_code\":%ld}",
           r.method, resp ? resp->status : 0);
  lode__frame_set_meta(f, meta);
  cJSON *o = cJSON_CreateObject();
  char *out = NULL;
  if (o && resp && resp->status) {
    cJSON_AddNumberToObject(o, "status", (double)resp->status);
    if (r.out.len == 0 || (r.out.len <= SPAN_BODY_MAX && !memchr(r.out.p, 0, r.out.len)))
      cJSON_AddStringToObject(o, "body", r.out.len ? lode_buf_cstr(&r.out) : "");
    else cJSON_AddNumberToObject(o, "body_bytes", (double)r.out.len);
    out = cJSON_PrintUnformatted(o);
  }
  cJSON_Delete(o);
  int rc = lode__frame_finish(L, f, ex, in, out, fail, errtmp, sizeof errtmp);
  lode__frame_pop(L, f);
  free(in);
  free(out);
  if (rc != LODE_OK) lode_warn("span '%s' not recorded: %s", name, errtmp);
  if (fail) {
    lua_pushstring(L, fail);
    free(resp);
    req_free(&r);
    return lua_error(L);
  }
  /* { status, headers, body [, json] } */
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, resp->status);
  lua_setfield(L, -2, "status");
  push_headers(L, &r.hdrs);
  lua_getfield(L, -1, "content-type");
  int is_json = lua_isstring(L, -1) && strstr(lua_tostring(L, -1), "json") != NULL;
  lua_pop(L, 1);
  lua_setfield(L, -2, "headers");
  lua_pushlstring(L, r.out.len ? (const char *)r.out.p : "", r.out.len);
  lua_setfield(L, -2, "body");
  lua_pushstring(L, r.shown);
  lua_setfield(L, -2, "url");
  int want = r.want_json || is_json;
  cJSON *doc = want && r.out.len ? cJSON_ParseWithLength((const char *)r.out.p, r.out.len) : NULL;
  if (doc) {
    push_json(L, doc, 0);
    lua_setfield(L, -2, "json");
    cJSON_Delete(doc);
  }
  free(resp);
  req_free(&r);
  return 1;
}

/* lode.http.get(url [, opts]) / lode.http.post(url, body [, opts]): the same
 * request with the URL (and body) given first. */
static int with_url(lua_State *L, const char *method, int has_body, int force_json) {
  luaL_checkstring(L, 1);
  int opts = has_body ? 3 : 2;
  if (lua_isnoneornil(L, opts)) lua_newtable(L);
  else luaL_checktype(L, opts, LUA_TTABLE);
  lua_settop(L, opts);
  /* a copy of the options: the caller's table is left as it was */
  lua_newtable(L);
  lua_pushnil(L);
  while (lua_next(L, opts)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
  lua_pushvalue(L, 1);
  lua_setfield(L, -2, "url");
  lua_pushstring(L, method);
  lua_setfield(L, -2, "method");
  if (has_body) {
    lua_pushvalue(L, 2);
    lua_setfield(L, -2, force_json || lua_type(L, 2) == LUA_TTABLE ? "json" : "body");
  }
  lua_replace(L, 1);
  lua_settop(L, 1);
  return l_request(L);
}
static int l_get(lua_State *L) { return with_url(L, "GET", 0, 0); }
static int l_post(lua_State *L) { return with_url(L, "POST", 1, 0); }

/* lode.http.get_json(url [, opts]) / lode.http.post_json(url, value [, opts]):
 * JSON in and out; an HTTP error status raises. Returns the decoded body. */
static int json_call(lua_State *L, int post) {
  int opts = post ? 3 : 2;
  if (lua_isnoneornil(L, opts)) {
    lua_settop(L, opts - 1);
    lua_newtable(L);
  }
  luaL_checktype(L, opts, LUA_TTABLE);
  lua_pushboolean(L, 1);
  lua_setfield(L, opts, "check");
  lua_pushboolean(L, 1);
  lua_setfield(L, opts, "json_response");
  with_url(L, post ? "POST" : "GET", post, 1);
  lua_getfield(L, -1, "json");
  return 1;
}
static int l_get_json(lua_State *L) { return json_call(L, 0); }
static int l_post_json(lua_State *L) { return json_call(L, 1); }

static const luaL_Reg http_api[] = {{"request", l_request},     {"get", l_get},
                                    {"post", l_post},           {"get_json", l_get_json},
                                    {"post_json", l_post_json}, {NULL, NULL}};

void lode_lua_open_http(lua_State *L) {
  luaL_newlib(L, http_api);
  lua_setfield(L, -2, "http");
}
