/* lode_lua_trace.c - span frames and `lode.trace` (update, feedback, current). */
#include "lua/lode_lua_trace.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/codec.h"
#include "base/error.h"
#include "base/util.h"
#include "lua/lode_lua_codec.h"
#include "lua/lode_lua_workflow.h"

#define STACK_MT "lode.trace.stack"
static const char stack_key = 's';

struct lode_span_frame {
  int kind;
  char id[37], trace_id[37], parent_id[37];
  char *name;
  char type[32];
  int64_t start_ms;
  int manual_root;
  /* lode.trace.update */
  char *u_meta, *u_input, *u_output, *u_usage, *u_model, *u_provider;
  char **u_tags;
  int u_ntags;
  /* finished descendants waiting to commit with this frame */
  lode_span_rec *buf;
  int nbuf, capbuf;
  /* what lode__frame_spans hands out */
  lode_span_rec *out;
  char **out_strs;
  int nout_strs;
  lode_span_frame *below;
};

typedef struct stack {
  lode_span_frame *top;
} stack;

/* ---- owned span records ------------------------------------------------------ */

static char *dup(const char *s) { return s ? strdup(s) : NULL; }

static void span_free(lode_span_rec *s) {
  free((char *)s->id);
  free((char *)s->trace_id);
  free((char *)s->parent_span_id);
  free((char *)s->name);
  free((char *)s->type);
  free((char *)s->input_json);
  free((char *)s->output_json);
  free((char *)s->metadata_json);
  for (int i = 0; i < s->ntags; i++) free((char *)s->tags[i]);
  free((void *)s->tags);
  free((char *)s->error_type);
  free((char *)s->error_message);
  free((char *)s->error_traceback);
  free((char *)s->usage_json);
  free((char *)s->model);
  free((char *)s->provider);
  memset(s, 0, sizeof *s);
}

static void span_copy(const lode_span_rec *a, lode_span_rec *b) {
  *b = *a;
  b->id = dup(a->id);
  b->trace_id = dup(a->trace_id);
  b->parent_span_id = dup(a->parent_span_id);
  b->name = dup(a->name);
  b->type = dup(a->type);
  b->input_json = dup(a->input_json);
  b->output_json = dup(a->output_json);
  b->metadata_json = dup(a->metadata_json);
  b->error_type = dup(a->error_type);
  b->error_message = dup(a->error_message);
  b->error_traceback = dup(a->error_traceback);
  b->usage_json = dup(a->usage_json);
  b->model = dup(a->model);
  b->provider = dup(a->provider);
  b->tags = NULL;
  b->ntags = 0;
  if (a->ntags > 0) {
    const char **t = calloc((size_t)a->ntags, sizeof *t);
    if (t)
      for (int i = 0; i < a->ntags; i++) t[b->ntags++] = dup(a->tags[i]);
    b->tags = t;
  }
}

/* Appends an owned copy; the buffer is capped so a runaway loop of tracked
 * calls inside one step cannot exhaust memory (the rest is counted). */
#define MAX_BUFFERED 100000
static void buf_add(lode_span_frame *f, const lode_span_rec *s) {
  if (f->nbuf >= MAX_BUFFERED) return;
  if (f->nbuf == f->capbuf) {
    int cap = f->capbuf ? f->capbuf * 2 : 8;
    lode_span_rec *p = realloc(f->buf, (size_t)cap * sizeof *p);
    if (!p) return;
    f->buf = p;
    f->capbuf = cap;
  }
  span_copy(s, &f->buf[f->nbuf++]);
}

static void frame_free(lode_span_frame *f) {
  free(f->name);
  free(f->u_meta);
  free(f->u_input);
  free(f->u_output);
  free(f->u_usage);
  free(f->u_model);
  free(f->u_provider);
  for (int i = 0; i < f->u_ntags; i++) free(f->u_tags[i]);
  free(f->u_tags);
  for (int i = 0; i < f->nbuf; i++) span_free(&f->buf[i]);
  free(f->buf);
  free(f->out);
  for (int i = 0; i < f->nout_strs; i++) free(f->out_strs[i]);
  free(f->out_strs);
  free(f);
}

/* ---- the stack ----------------------------------------------------------------- */

static int stack_gc(lua_State *L) {
  stack *s = luaL_checkudata(L, 1, STACK_MT);
  while (s->top) {
    lode_span_frame *f = s->top;
    s->top = f->below;
    frame_free(f);
  }
  return 0;
}

static stack *get_stack(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &stack_key);
  stack *s = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (s) return s;
  s = lua_newuserdatauv(L, sizeof *s, 0);
  s->top = NULL;
  if (luaL_newmetatable(L, STACK_MT)) {
    lua_pushcfunction(L, stack_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &stack_key);
  return s;
}

static lode_span_frame *new_frame(lua_State *L, int kind) {
  lode_span_frame *f = calloc(1, sizeof *f);
  if (!f) luaL_error(L, "out of memory");
  f->kind = kind;
  f->start_ms = lode_now_ms();
  stack *s = get_stack(L);
  f->below = s->top;
  s->top = f;
  return f;
}

lode_span_frame *lode__frame_push_wf(lua_State *L, const char *trace_id, const char *span_id) {
  lode_span_frame *f = new_frame(L, LODE_FRAME_WF);
  lode_strlcpy(f->trace_id, trace_id ? trace_id : "", sizeof f->trace_id);
  lode_strlcpy(f->id, span_id ? span_id : "", sizeof f->id);
  return f;
}

lode_span_frame *lode__frame_push(lua_State *L, int kind, const char *name, const char *type) {
  stack *s = get_stack(L);
  lode_span_frame *parent = s->top;
  lode_span_frame *f = new_frame(L, kind);
  f->name = dup(name);
  lode_strlcpy(f->type, type ? type : "general", sizeof f->type);
  lode_uuid7(f->id);
  if (parent) {
    lode_strlcpy(f->trace_id, parent->trace_id, sizeof f->trace_id);
    lode_strlcpy(f->parent_id, parent->id, sizeof f->parent_id);
  } else {
    lode_uuid7(f->trace_id);
    f->manual_root = 1;
  }
  return f;
}

void lode__frame_pop(lua_State *L, lode_span_frame *f) {
  stack *s = get_stack(L);
  if (s->top != f) return; /* unbalanced: leave it to __gc rather than corrupt */
  s->top = f->below;
  frame_free(f);
}

lode_span_frame *lode__frames_set(lua_State *L, lode_span_frame *top) {
  stack *s = get_stack(L);
  lode_span_frame *old = s->top;
  s->top = top;
  return old;
}

void lode__frame_chain_free(lode_span_frame *f) {
  while (f) {
    lode_span_frame *below = f->below;
    frame_free(f);
    f = below;
  }
}
const char *lode__frame_id(const lode_span_frame *f) { return f->id; }
const char *lode__frame_trace_id(const lode_span_frame *f) { return f->trace_id; }
int64_t lode__frame_start(const lode_span_frame *f) { return f->start_ms; }

int lode__frame_plain(const lode_span_frame *f) {
  return !f->u_meta && !f->u_input && !f->u_output && !f->u_usage && !f->u_model &&
         !f->u_provider && f->u_ntags == 0 && f->nbuf == 0 && !strcmp(f->type, "general") &&
         f->parent_id[0];
}

/* ---- building spans -------------------------------------------------------------- */

static char *keep(lode_span_frame *f, char *s) {
  if (!s) return NULL;
  char **p = realloc(f->out_strs, (size_t)(f->nout_strs + 1) * sizeof *p);
  if (!p) {
    free(s);
    return NULL;
  }
  f->out_strs = p;
  f->out_strs[f->nout_strs++] = s;
  return s;
}

/* Merges `extra` (a JSON object) into `base` (a JSON object); returns a new
 * malloc'd text. Later keys win. */
static char *merge_objects(const char *base, const char *extra) {
  cJSON *b = cJSON_Parse(base ? base : "{}");
  cJSON *e = extra ? cJSON_Parse(extra) : NULL;
  if (!b) b = cJSON_CreateObject();
  if (e && cJSON_IsObject(e)) {
    cJSON *it = e->child;
    while (it) {
      cJSON *next = it->next;
      cJSON_DetachItemViaPointer(e, it);
      cJSON_DeleteItemFromObjectCaseSensitive(b, it->string);
      cJSON_AddItemToObject(b, it->string, it);
      it = next;
    }
  }
  char *out = cJSON_PrintUnformatted(b);
  cJSON_Delete(b);
  cJSON_Delete(e);
  return out;
}

/* The frame's own span, with its updates applied. Strings are kept by f. */
static void frame_span(lode_span_frame *f, const char *meta_json, const char *input_json,
                       const char *output_json, const char *error, lode_span_rec *sp) {
  memset(sp, 0, sizeof *sp);
  sp->id = f->id;
  sp->trace_id = f->trace_id;
  sp->parent_span_id = f->parent_id[0] ? f->parent_id : NULL;
  sp->name = f->name;
  sp->type = f->type;
  sp->start_ms = f->start_ms;
  sp->end_ms = lode_now_ms();
  if (sp->end_ms <= sp->start_ms) sp->end_ms = sp->start_ms;
  sp->input_json = f->u_input ? f->u_input : input_json;
  sp->output_json = f->u_output ? f->u_output : output_json;
  /* meta_json may live on the caller's stack: keep a copy with the frame */
  sp->metadata_json = f->u_meta ? keep(f, merge_objects(meta_json, f->u_meta))
                                : (meta_json ? keep(f, strdup(meta_json)) : NULL);
  sp->tags = (const char *const *)f->u_tags;
  sp->ntags = f->u_ntags;
  sp->usage_json = f->u_usage;
  sp->model = f->u_model;
  sp->provider = f->u_provider;
  if (error) {
    char *msg = malloc(512);
    if (msg) lode_first_line(error, msg, 512);
    sp->error_type = "LuaError";
    sp->error_message = keep(f, msg);
    sp->error_traceback = error;
  }
}

int lode__frame_spans(lode_span_frame *f, lode_exec *ex, const char *wf_id, int64_t step_no,
                      int recovery, const char *input_json, const char *output_json,
                      const char *error, const lode_attempt *attempts, int nattempts,
                      const lode_span_rec **spans) {
  (void)ex;
  int nfail = 0;
  for (int i = 0; i < nattempts; i++) nfail += attempts[i].error != NULL;
  int n = 1 + nfail + f->nbuf;
  free(f->out);
  f->out = calloc((size_t)n, sizeof *f->out);
  if (!f->out) {
    *spans = NULL;
    return 0;
  }
  /* the same metadata as a span rendered from the checkpoint row */
  char *meta = keep(f, lode_step_span_meta(wf_id, step_no, nattempts, recovery));
  frame_span(f, meta, input_json, output_json, error, &f->out[0]);
  int k = 1;
  for (int i = 0; i < nattempts; i++) {
    if (!attempts[i].error) continue;
    /* failed attempts are visible as child spans carrying their error */
    lode_span_rec *a = &f->out[k++];
    char *id = malloc(37), *name = malloc(strlen(f->name) + 32), *msg = malloc(512);
    char *am = malloc(128);
    if (id) lode_uuid7(id);
    if (name) sprintf(name, "%s attempt %d", f->name, i + 1);
    if (msg) lode_first_line(attempts[i].error, msg, 512);
    if (am) snprintf(am, 128, "{\"attempt\":%d,\"step\":%lld}", i + 1, (long long)step_no);
    a->id = keep(f, id);
    a->trace_id = f->trace_id;
    a->parent_span_id = f->id;
    a->name = keep(f, name);
    a->type = "general";
    a->start_ms = attempts[i].start_ms;
    a->end_ms = attempts[i].end_ms;
    a->metadata_json = keep(f, am);
    a->error_type = "LuaError";
    a->error_message = keep(f, msg);
    a->error_traceback = attempts[i].error;
  }
  for (int i = 0; i < f->nbuf; i++) f->out[k++] = f->buf[i];
  *spans = f->out;
  return k;
}

int lode__frame_finish(lua_State *L, lode_span_frame *f, lode_exec *ex, const char *input_json,
                       const char *output_json, const char *error, char *err, size_t errlen) {
  lode_span_rec sp;
  frame_span(f, NULL, input_json, output_json, error, &sp);
  lode_span_frame *parent = f->below;
  if (parent && parent->kind != LODE_FRAME_WF) {
    /* commits with the enclosing step (or tracked function) */
    buf_add(parent, &sp);
    for (int i = 0; i < f->nbuf; i++) buf_add(parent, &f->buf[i]);
    return LODE_OK;
  }
  if (!ex || !lode_exec_tracing(ex)) return LODE_OK;
  int n = 1 + f->nbuf;
  lode_span_rec *all = calloc((size_t)n, sizeof *all);
  if (!all) {
    snprintf(err, errlen, "out of memory");
    return LODE_ENOMEM;
  }
  all[0] = sp;
  for (int i = 0; i < f->nbuf; i++) all[1 + i] = f->buf[i];
  int rc;
  if (f->manual_root) {
    static const char *const manual_tags[] = {"execution:manual"};
    lode_trace_rec t;
    memset(&t, 0, sizeof t);
    t.id = f->trace_id;
    t.name = f->name;
    t.start_ms = sp.start_ms;
    t.end_ms = sp.end_ms;
    t.input_json = sp.input_json;
    t.output_json = sp.output_json;
    t.metadata_json = f->u_meta;
    t.tags = manual_tags;
    t.ntags = 1;
    t.error_type = sp.error_type;
    t.error_message = sp.error_message;
    t.error_traceback = sp.error_traceback;
    rc = lode_exec_trace_write(ex, &t, all, n, err, errlen);
  } else {
    rc = lode_exec_trace_write(ex, NULL, all, n, err, errlen);
  }
  free(all);
  (void)L;
  return rc;
}

void lode__frame_extra(lode_span_frame *f, lode_span_extra *x) {
  memset(x, 0, sizeof *x);
  if (!f) return;
  x->metadata_json = f->u_meta;
  x->tags = (const char *const *)f->u_tags;
  x->ntags = f->u_ntags;
  x->input_json = f->u_input;
  x->output_json = f->u_output;
  x->usage_json = f->u_usage;
  x->model = f->u_model;
  x->provider = f->u_provider;
  x->type = f->type[0] && f->kind == LODE_FRAME_WF ? f->type : NULL;
}

/* ---- lode.trace ------------------------------------------------------------------- */

/* JSON text of the Lua value at idx (via the checkpoint codec); NULL if it
 * cannot be encoded (err filled). */
static char *to_json(lua_State *L, int idx, char *err, size_t errlen) {
  lode_buf enc;
  lode_buf_init(&enc, 0);
  if (lode_lua_encode(L, idx, &enc, err, errlen)) {
    lode_buf_free(&enc);
    return NULL;
  }
  char *j = lode_span_json(enc.p, enc.len, 0);
  lode_buf_free(&enc);
  if (!j) snprintf(err, errlen, "cannot render as JSON");
  return j;
}

static void set_field(lua_State *L, int t, const char *k, char **slot, int as_json) {
  lua_getfield(L, t, k);
  if (!lua_isnil(L, -1)) {
    char err[256];
    char *v;
    if (as_json) {
      v = to_json(L, -1, err, sizeof err);
      if (!v) luaL_error(L, "lode.trace.update: %s: %s", k, err);
    } else {
      v = dup(luaL_checkstring(L, -1));
    }
    free(*slot);
    *slot = v;
  }
  lua_pop(L, 1);
}

static int l_update(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lode_span_frame *f = get_stack(L)->top;
  if (!f) return luaL_error(L, "lode.trace.update: no span is running (call it inside a "
                               "workflow, step or tracked function)");
  lua_getfield(L, 1, "metadata");
  if (!lua_isnil(L, -1)) {
    luaL_checktype(L, -1, LUA_TTABLE);
    char err[256];
    char *j = to_json(L, -1, err, sizeof err);
    if (!j) return luaL_error(L, "lode.trace.update: metadata: %s", err);
    char *m = merge_objects(f->u_meta, j);
    free(j);
    free(f->u_meta);
    f->u_meta = m;
  }
  lua_pop(L, 1);
  set_field(L, 1, "input", &f->u_input, 1);
  set_field(L, 1, "output", &f->u_output, 1);
  set_field(L, 1, "usage", &f->u_usage, 1);
  set_field(L, 1, "model", &f->u_model, 0);
  set_field(L, 1, "provider", &f->u_provider, 0);
  lua_getfield(L, 1, "type");
  if (!lua_isnil(L, -1)) {
    const char *t = luaL_checkstring(L, -1);
    if (strcmp(t, "general") && strcmp(t, "tool") && strcmp(t, "llm") && strcmp(t, "guardrail"))
      return luaL_error(L, "lode.trace.update: type must be general, tool, llm or guardrail");
    lode_strlcpy(f->type, t, sizeof f->type);
  }
  lua_pop(L, 1);
  lua_getfield(L, 1, "tags");
  if (!lua_isnil(L, -1)) {
    luaL_checktype(L, -1, LUA_TTABLE);
    int n = (int)lua_rawlen(L, -1);
    char **t = realloc(f->u_tags, (size_t)(f->u_ntags + n + 1) * sizeof *t);
    if (!t) return luaL_error(L, "out of memory");
    f->u_tags = t;
    for (int i = 1; i <= n; i++) {
      lua_rawgeti(L, -1, i);
      const char *s = luaL_checkstring(L, -1);
      f->u_tags[f->u_ntags++] = strdup(s);
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  return 0;
}

static int l_current(lua_State *L) {
  lode_span_frame *f = get_stack(L)->top;
  if (!f) {
    lua_pushnil(L);
    return 1;
  }
  lua_createtable(L, 0, 2);
  lua_pushstring(L, f->trace_id);
  lua_setfield(L, -2, "trace_id");
  lua_pushstring(L, f->id);
  lua_setfield(L, -2, "span_id");
  return 1;
}

void lode__frame_set_meta(lode_span_frame *f, const char *json) {
  char *m = merge_objects(f->u_meta, json);
  if (!m) return;
  free(f->u_meta);
  f->u_meta = m;
}

int lode__trace_headers(lua_State *L, lode_ctx_headers *h) {
  lode_span_frame *f = get_stack(L)->top;
  return f ? lode_ctx_headers_make(h, f->trace_id, f->id) : -1;
}

/* lode.trace.headers(): the running span's context as headers for any
 * client (docs/lua-api.md); an empty table when no span runs. */
static int l_headers(lua_State *L) {
  lode_ctx_headers *h = malloc(sizeof *h);
  if (!h) return luaL_error(L, "out of memory");
  lua_newtable(L);
  if (lode__trace_headers(L, h) == 0)
    for (int i = 0; i < LODE_CTX_HEADERS; i++) {
      lua_pushstring(L, h->value[i]);
      lua_setfield(L, -2, h->name[i]);
    }
  free(h);
  return 1;
}

static int l_feedback(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  double value = luaL_checknumber(L, 2);
  const char *reason = luaL_optstring(L, 3, NULL);
  lode_span_frame *f = get_stack(L)->top;
  if (!f) return luaL_error(L, "lode.trace.feedback: no trace is running");
  char err[512];
  lode_exec *ex = lode_host_exec(L, err, sizeof err);
  if (!ex) return luaL_error(L, "%s", err);
  if (lode_exec_trace_feedback(ex, f->trace_id, name, value, reason, err, sizeof err) != LODE_OK)
    return luaL_error(L, "lode.trace.feedback: %s", err);
  return 0;
}

static const luaL_Reg trace_api[] = {
    {"update", l_update},     {"current", l_current}, {"feedback", l_feedback},
    {"headers", l_headers},   {NULL, NULL}};

void lode_lua_open_trace(lua_State *L) {
  get_stack(L);
  luaL_newlib(L, trace_api);
  lua_setfield(L, -2, "trace");
}
