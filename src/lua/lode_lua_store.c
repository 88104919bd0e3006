/* lode_lua_store.c - `lode.store`: the Lua face of src/kernels/store.h.
 *
 * A store userdata holds one lode_store*, NULL until open succeeds and again
 * after close, so an error at any point leaks nothing and a closed store says
 * so plainly. Metadata and header paths cross into SQLite as JSON (cJSON);
 * the Lua -> JSON conversion never raises, so the C tree it builds is freed
 * before any Lua error. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/store.h"
#include "lua/lode_lua.h"
#include "lua/lode_lua_matrix.h"

#define STORE_TNAME "lode.store"
#define JSON_MAX_DEPTH 64

typedef struct store_ud {
  lode_store *s;
} store_ud;

/* ---- Lua <-> JSON ------------------------------------------------------------ */
/* Converts the value at idx; NULL with a message in `why` on failure (a
 * function, a cycle or too deep, a non-string key in a map). */
static cJSON *to_json(lua_State *L, int idx, int depth, char *why, size_t whylen) {
  idx = lua_absindex(L, idx);
  switch (lua_type(L, idx)) {
    case LUA_TNIL:
      return cJSON_CreateNull();
    case LUA_TBOOLEAN:
      return cJSON_CreateBool(lua_toboolean(L, idx));
    case LUA_TNUMBER:
      if (!isfinite(lua_tonumber(L, idx))) {
        snprintf(why, whylen, "a number that is not finite");
        return NULL;
      }
      return cJSON_CreateNumber(lua_tonumber(L, idx));
    case LUA_TSTRING:
      return cJSON_CreateString(lua_tostring(L, idx));
    case LUA_TTABLE:
      break;
    default:
      snprintf(why, whylen, "a %s value", luaL_typename(L, idx));
      return NULL;
  }
  if (depth >= JSON_MAX_DEPTH || !lua_checkstack(L, 4)) {
    snprintf(why, whylen, "tables nested deeper than %d (a cycle?)", JSON_MAX_DEPTH);
    return NULL;
  }
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx), count = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    count++;
    lua_pop(L, 1);
  }
  int is_array = count == n && (n > 0 || count == 0);
  cJSON *out = is_array ? cJSON_CreateArray() : cJSON_CreateObject();
  if (!out) goto nomem;
  if (is_array) {
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(L, idx, i);
      cJSON *v = to_json(L, -1, depth + 1, why, whylen);
      lua_pop(L, 1);
      if (!v) goto fail;
      cJSON_AddItemToArray(out, v);
    }
    return out;
  }
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING) {
      lua_pop(L, 2);
      snprintf(why, whylen, "a map key that is not a string");
      goto fail;
    }
    cJSON *v = to_json(L, -1, depth + 1, why, whylen);
    if (!v) {
      lua_pop(L, 2);
      goto fail;
    }
    cJSON_AddItemToObject(out, lua_tostring(L, -2), v);
    lua_pop(L, 1);
  }
  return out;
nomem:
  snprintf(why, whylen, "out of memory");
fail:
  cJSON_Delete(out);
  return NULL;
}

/* Pushes the JSON text at idx (nil stays nil) as a Lua string; strings are
 * stored as given when `raw_strings` (metadata may be JSON text already). */
static void push_json_arg(lua_State *L, int idx, const char *what, int raw_strings) {
  if (lua_isnoneornil(L, idx)) {
    lua_pushnil(L);
    return;
  }
  if (raw_strings && lua_type(L, idx) == LUA_TSTRING) {
    lua_pushvalue(L, idx);
    return;
  }
  char why[128] = "";
  cJSON *j = to_json(L, idx, 0, why, sizeof why);
  char *text = j ? cJSON_PrintUnformatted(j) : NULL;
  cJSON_Delete(j);
  if (!text) luaL_error(L, "%s cannot be stored: it holds %s", what, why[0] ? why : "out of memory");
  lua_pushstring(L, text);
  free(text);
}

static void push_json_value(lua_State *L, const cJSON *j) {
  luaL_checkstack(L, 4, "JSON too deep");
  if (cJSON_IsBool(j)) {
    lua_pushboolean(L, cJSON_IsTrue(j));
  } else if (cJSON_IsNumber(j)) {
    double d = j->valuedouble;
    if (d == floor(d) && fabs(d) < 9007199254740992.0)
      lua_pushinteger(L, (lua_Integer)d);
    else
      lua_pushnumber(L, d);
  } else if (cJSON_IsString(j)) {
    lua_pushstring(L, j->valuestring);
  } else if (cJSON_IsArray(j) || cJSON_IsObject(j)) {
    lua_newtable(L);
    lua_Integer i = 1;
    for (const cJSON *c = j->child; c; c = c->next) {
      push_json_value(L, c);
      if (cJSON_IsArray(j))
        lua_rawseti(L, -2, i++);
      else
        lua_setfield(L, -2, c->string);
    }
  } else {
    lua_pushnil(L);
  }
}

static int json_gc(lua_State *L) {
  cJSON **holder = lua_touserdata(L, 1);
  cJSON_Delete(*holder);
  *holder = NULL;
  return 0;
}

/* Pushes the decoded JSON text (nil for NULL; the text itself if it is not
 * JSON, which only a foreign writer could have stored). */
static void push_json_text(lua_State *L, const char *text) {
  if (!text) {
    lua_pushnil(L);
    return;
  }
  /* the parsed tree is held by a userdata while it is pushed, so a memory
   * error half-way still frees it (__gc) */
  cJSON **holder = lua_newuserdatauv(L, sizeof *holder, 0);
  *holder = NULL;
  if (luaL_newmetatable(L, "lode.store.json")) {
    lua_pushcfunction(L, json_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  *holder = cJSON_Parse(text);
  if (!*holder)
    lua_pushstring(L, text);
  else
    push_json_value(L, *holder);
  cJSON_Delete(*holder);
  *holder = NULL;
  lua_remove(L, -2);
}

/* ---- the store userdata ------------------------------------------------------ */
static lode_store *check_open(lua_State *L) {
  store_ud *u = luaL_checkudata(L, 1, STORE_TNAME);
  if (!u->s) luaL_error(L, "store is closed");
  return u->s;
}

static int raise_err(lua_State *L, const char *err) { return luaL_error(L, "%s", err); }

static const char *opt_string_field(lua_State *L, int t, const char *k) {
  lua_getfield(L, t, k);
  const char *v = NULL;
  if (!lua_isnil(L, -1)) {
    /* strings only: a number converted here would live only in this stack
     * slot, and the pointer must outlive the pop below */
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "field '%s' must be a string, not %s", k, luaL_typename(L, -1));
    v = lua_tostring(L, -1);
  }
  lua_pop(L, 1); /* the table (an argument) keeps the string alive */
  return v;
}

/* The embedder identity: a string, or a table/embedder with `id`, or with
 * provider/model/dims. Pushes it (or nil). */
static void push_embedder_id(lua_State *L, int opts) {
  if (lua_type(L, opts) != LUA_TTABLE) {
    lua_pushnil(L);
    return;
  }
  lua_getfield(L, opts, "embedder"); /* [e] */
  int e = lua_gettop(L);
  if (lua_isnil(L, e) || lua_type(L, e) == LUA_TSTRING) return;
  if (lua_type(L, e) != LUA_TTABLE && lua_type(L, e) != LUA_TUSERDATA)
    luaL_error(L, "open: embedder must be a string or a table, not %s", luaL_typename(L, e));
  lua_getfield(L, e, "id");
  if (lua_type(L, -1) == LUA_TSTRING) {
    lua_remove(L, e);
    return;
  }
  lua_pop(L, 1);
  int base = lua_gettop(L);
  static const char *keys[] = {"provider", "model", "dims"};
  for (int i = 0; i < 3; i++) {
    if (i) lua_pushliteral(L, "/");
    lua_getfield(L, e, keys[i]);
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      lua_pushliteral(L, "-");
    } else {
      luaL_tolstring(L, -1, NULL);
      lua_remove(L, -2);
    }
  }
  lua_concat(L, lua_gettop(L) - base); /* [e, "provider/model/dims"] */
  lua_remove(L, e);
}

static int l_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  char err[LODE_STORE_ERRLEN];
  store_ud *u = lua_newuserdatauv(L, sizeof *u, 0); /* [ud] */
  u->s = NULL;
  luaL_setmetatable(L, STORE_TNAME);
  push_embedder_id(L, 2); /* [ud, id] */
  const char *emb = lua_tostring(L, -1);
  if (lode_store_open(path, emb, &u->s, err, sizeof err) != 0) return raise_err(L, err);
  lua_pop(L, 1);
  return 1;
}

static int l_has(lua_State *L) {
  lode_store *s = check_open(L);
  const char *path = luaL_checkstring(L, 2), *hash = luaL_optstring(L, 3, NULL);
  char err[LODE_STORE_ERRLEN];
  int found = 0;
  if (lode_store_has(s, path, hash, &found, err, sizeof err) != 0) return raise_err(L, err);
  lua_pushboolean(L, found);
  return 1;
}

/* One chunk: a string, or a table { text=, start=, ["end"]=, headers= }.
 * Strings it points at are anchored in the table at `anchor`. */
static void read_chunk(lua_State *L, int chunks, lua_Integer i, int anchor,
                       lode_store_chunk *c) {
  lua_rawgeti(L, chunks, i); /* [chunk] */
  memset(c, 0, sizeof *c);
  if (lua_type(L, -1) == LUA_TSTRING) {
    c->text = lua_tolstring(L, -1, &c->text_len);
    c->end = (int64_t)c->text_len;
    lua_rawseti(L, anchor, 2 * i - 1);
    return;
  }
  if (lua_type(L, -1) != LUA_TTABLE)
    luaL_error(L, "put: chunk %d must be a string or a table, not %s", (int)i,
               luaL_typename(L, -1));
  int t = lua_gettop(L);
  lua_getfield(L, t, "text");
  if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "put: chunk %d has no text", (int)i);
  c->text = lua_tolstring(L, -1, &c->text_len);
  lua_rawseti(L, anchor, 2 * i - 1);
  lua_getfield(L, t, "start");
  lua_getfield(L, t, "end");
  c->start = (int64_t)luaL_optinteger(L, -2, 0);
  c->end = (int64_t)luaL_optinteger(L, -1, c->start + (int64_t)c->text_len);
  lua_pop(L, 2);
  lua_getfield(L, t, "headers");
  push_json_arg(L, lua_gettop(L), "chunk headers", 0);
  c->headers = lua_tostring(L, -1);
  if (c->headers) lua_pushvalue(L, -1), lua_rawseti(L, anchor, 2 * i);
  lua_pop(L, 3); /* [] */
}

static int l_put(lua_State *L) {
  lode_store *s = check_open(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  lode_matrix *m = lua_isnoneornil(L, 4) ? NULL : lode_lua_matrix_check(L, 4);
  lua_settop(L, 4);
  char err[LODE_STORE_ERRLEN];
  lode_store_doc doc = {0};
  doc.path = opt_string_field(L, 2, "path");
  if (!doc.path || !*doc.path) return luaL_error(L, "put: the document needs a path");
  doc.hash = opt_string_field(L, 2, "hash");
  doc.title = opt_string_field(L, 2, "title");
  doc.mime = opt_string_field(L, 2, "mime");
  lua_getfield(L, 2, "bytes");
  if (!lua_isnil(L, -1) && !lua_isinteger(L, -1))
    return luaL_error(L, "put: field 'bytes' must be an integer, not %s", luaL_typename(L, -1));
  doc.bytes = lua_isnil(L, -1) ? -1 : (int64_t)lua_tointeger(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, 2, "metadata"); /* [5: metadata] */
  push_json_arg(L, 5, "document metadata", 1); /* [5, 6: json] */
  doc.metadata = lua_tostring(L, 6);

  lua_Integer n = (lua_Integer)lua_rawlen(L, 3);
  if (m && m->rows != n)
    return luaL_error(L, "put '%s': %d chunks but the matrix has %d rows", doc.path, (int)n,
                      (int)m->rows);
  lua_createtable(L, (int)(2 * n), 0); /* [7: anchor] */
  lode_store_chunk *chunks = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *chunks, 0);
  for (lua_Integer i = 1; i <= n; i++) read_chunk(L, 3, i, 7, &chunks[i - 1]);
  if (lode_store_put(s, &doc, chunks, (size_t)n, m ? m->data : NULL, m ? m->dims : 0, err,
                     sizeof err) != 0)
    return raise_err(L, err);
  lua_pushinteger(L, n);
  return 1;
}

static int record_gc(lua_State *L) {
  lode_store_record_free(lua_touserdata(L, 1));
  return 0;
}

/* The C record lives in a userdata with __gc while it is turned into a Lua
 * table, so a memory error half-way still frees it. */
static int l_get(lua_State *L) {
  lode_store *s = check_open(L);
  const char *path = luaL_checkstring(L, 2);
  char err[LODE_STORE_ERRLEN];
  int found = 0;
  lode_store_record *r = lua_newuserdatauv(L, sizeof *r, 0); /* [.., holder] */
  memset(r, 0, sizeof *r);
  if (luaL_newmetatable(L, "lode.store.record")) {
    lua_pushcfunction(L, record_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  if (lode_store_get(s, path, r, &found, err, sizeof err) != 0) return raise_err(L, err);
  if (!found) {
    lua_pushnil(L);
    return 1;
  }
  lua_createtable(L, 0, 8);
  const char *fields[] = {"path", "hash", "title", "mime"};
  const char *values[] = {r->path, r->hash, r->title, r->mime};
  for (int i = 0; i < 4; i++) {
    if (!values[i]) continue;
    lua_pushstring(L, values[i]);
    lua_setfield(L, -2, fields[i]);
  }
  push_json_text(L, r->metadata);
  lua_setfield(L, -2, "metadata");
  if (r->bytes >= 0) {
    lua_pushinteger(L, r->bytes);
    lua_setfield(L, -2, "bytes");
  }
  lua_pushinteger(L, r->updated_at);
  lua_setfield(L, -2, "updated_at");
  lua_pushinteger(L, r->chunks);
  lua_setfield(L, -2, "chunks");
  lode_store_record_free(r);
  return 1;
}

static int l_delete(lua_State *L) {
  lode_store *s = check_open(L);
  const char *path = luaL_checkstring(L, 2);
  char err[LODE_STORE_ERRLEN];
  int removed = 0;
  if (lode_store_delete(s, path, &removed, err, sizeof err) != 0) return raise_err(L, err);
  lua_pushboolean(L, removed);
  return 1;
}

/* Paths are collected into a Lua table from a C callback: pushing can only
 * fail on memory, and then SQLite's statement is finalised by the store's
 * __gc (sqlite3_close_v2), so nothing leaks for long. */
typedef struct paths_ctx {
  lua_State *L;
  lua_Integer n;
} paths_ctx;

static int paths_cb(void *ud, const char *path) {
  paths_ctx *c = ud;
  lua_pushstring(c->L, path);
  lua_rawseti(c->L, -2, ++c->n);
  return 0;
}

static int l_paths(lua_State *L) {
  lode_store *s = check_open(L);
  char err[LODE_STORE_ERRLEN];
  paths_ctx c = {L, 0};
  lua_newtable(L);
  if (lode_store_paths(s, paths_cb, &c, err, sizeof err) != 0) return raise_err(L, err);
  return 1;
}

static int l_count(lua_State *L) {
  lode_store *s = check_open(L);
  char err[LODE_STORE_ERRLEN];
  int64_t docs = 0, chunks = 0;
  if (lode_store_count(s, &docs, &chunks, err, sizeof err) != 0) return raise_err(L, err);
  lua_pushinteger(L, docs);
  lua_pushinteger(L, chunks);
  return 2;
}

static int l_embedder(lua_State *L) {
  lode_store *s = check_open(L);
  const char *e = lode_store_embedder(s);
  if (e)
    lua_pushstring(L, e);
  else
    lua_pushnil(L);
  lua_pushinteger(L, lode_store_dims(s));
  return 2;
}

/* Hits live in a userdata while they are turned into Lua tables, so a memory
 * error half-way frees them through __gc. */
typedef struct hits_ud {
  lode_store_hit *hits;
  size_t n;
} hits_ud;

static int hits_gc(lua_State *L) {
  hits_ud *h = lua_touserdata(L, 1);
  lode_store_hits_free(h->hits, h->n);
  h->hits = NULL;
  h->n = 0;
  return 0;
}

/* opts.filter -> f; its strings stay anchored in opts (an argument) */
static void read_filter(lua_State *L, int opts, lode_store_filter *f) {
  memset(f, 0, sizeof *f);
  if (lua_type(L, opts) != LUA_TTABLE) return;
  lua_getfield(L, opts, "filter");
  if (lua_type(L, -1) == LUA_TTABLE) {
    int t = lua_gettop(L);
    f->path_prefix = opt_string_field(L, t, "path_prefix");
    f->mime = opt_string_field(L, t, "mime");
    f->path_glob = opt_string_field(L, t, "path");
  } else if (!lua_isnil(L, -1)) {
    luaL_error(L, "search: filter must be a table, not %s", luaL_typename(L, -1));
  }
  lua_pop(L, 1); /* the filter table stays alive in opts */
}

static void push_hits(lua_State *L, const hits_ud *h, int hybrid) {
  lua_createtable(L, (int)h->n, 0);
  for (size_t i = 0; i < h->n; i++) {
    const lode_store_hit *x = &h->hits[i];
    lua_createtable(L, 0, 10);
    lua_pushnumber(L, x->score);
    lua_setfield(L, -2, "score");
    lua_pushstring(L, x->path);
    lua_setfield(L, -2, "path");
    lua_pushlstring(L, x->text, x->text_len);
    lua_setfield(L, -2, "text");
    lua_pushinteger(L, x->ordinal);
    lua_setfield(L, -2, "ordinal");
    lua_pushinteger(L, x->start);
    lua_setfield(L, -2, "start");
    lua_pushinteger(L, x->end);
    lua_setfield(L, -2, "end");
    lua_pushinteger(L, x->chunk_id);
    lua_setfield(L, -2, "chunk_id");
    push_json_text(L, x->headers);
    lua_setfield(L, -2, "headers");
    if (x->n_paths) {
      lua_createtable(L, (int)x->n_paths, 0);
      for (size_t j = 0; j < x->n_paths; j++) {
        lua_pushstring(L, x->paths[j]);
        lua_rawseti(L, -2, (lua_Integer)j + 1);
      }
      lua_setfield(L, -2, "paths");
    }
    if (hybrid) {
      if (x->vector_rank) {
        lua_pushinteger(L, x->vector_rank);
        lua_setfield(L, -2, "vector_rank");
      }
      if (x->keyword_rank) {
        lua_pushinteger(L, x->keyword_rank);
        lua_setfield(L, -2, "keyword_rank");
      }
    }
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

static hits_ud *new_hits(lua_State *L) {
  hits_ud *h = lua_newuserdatauv(L, sizeof *h, 0);
  h->hits = NULL;
  h->n = 0;
  lua_newtable(L); /* a metatable just for __gc */
  lua_pushcfunction(L, hits_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  return h;
}

/* store:search(vector, k [, { filter =, text =, mode = }]): mode "vector"
 * (the default without text), "hybrid" (the default with text) or "keyword"
 * (vector may then be nil). */
static int l_search(lua_State *L) {
  lode_store *s = check_open(L);
  lua_Integer k = luaL_optinteger(L, 3, 10);
  lode_store_filter f;
  read_filter(L, 4, &f);
  const char *text = NULL, *mode = NULL;
  if (lua_type(L, 4) == LUA_TTABLE) {
    text = opt_string_field(L, 4, "text");
    mode = opt_string_field(L, 4, "mode");
  }
  if (!mode) mode = text ? "hybrid" : "vector";
  int m = !strcmp(mode, "vector") ? 0 : !strcmp(mode, "keyword") ? 1 : !strcmp(mode, "hybrid") ? 2 : -1;
  if (m < 0) return luaL_error(L, "search: mode must be vector, keyword or hybrid, not '%s'", mode);
  if (m > 0 && !text) return luaL_error(L, "search: mode '%s' needs opts.text", mode);
  float *tmp = NULL;
  int64_t dims = 0;
  const float *q = m == 1 ? NULL : lode_lua_vector_arg(L, 2, &dims, &tmp);
  char err[LODE_STORE_ERRLEN];
  hits_ud *h = new_hits(L);
  int rc = m == 0   ? lode_store_search(s, q, dims, (int64_t)k, &f, &h->hits, &h->n, err,
                                        sizeof err)
           : m == 1 ? lode_store_search_text(s, text, (int64_t)k, &f, &h->hits, &h->n, err,
                                             sizeof err)
                    : lode_store_search_hybrid(s, q, dims, text, (int64_t)k, &f, &h->hits,
                                               &h->n, err, sizeof err);
  free(tmp);
  if (rc != 0) return raise_err(L, err);
  push_hits(L, h, m == 2);
  return 1;
}

/* store:search_text(text, k [, { filter = }]): keyword search alone. */
static int l_search_text(lua_State *L) {
  lode_store *s = check_open(L);
  const char *text = luaL_checkstring(L, 2);
  lua_Integer k = luaL_optinteger(L, 3, 10);
  lode_store_filter f;
  read_filter(L, 4, &f);
  char err[LODE_STORE_ERRLEN];
  hits_ud *h = new_hits(L);
  if (lode_store_search_text(s, text, (int64_t)k, &f, &h->hits, &h->n, err, sizeof err) != 0)
    return raise_err(L, err);
  push_hits(L, h, 0);
  return 1;
}

static int l_close(lua_State *L) {
  store_ud *u = luaL_checkudata(L, 1, STORE_TNAME);
  lode_store_free(u->s);
  u->s = NULL;
  return 0;
}

static int l_tostring(lua_State *L) {
  store_ud *u = luaL_checkudata(L, 1, STORE_TNAME);
  lua_pushfstring(L, "lode.store (%s)", u->s ? "open" : "closed");
  return 1;
}

static const luaL_Reg store_methods[] = {
    {"has", l_has},       {"get", l_get},     {"put", l_put},     {"delete", l_delete},
    {"paths", l_paths},   {"count", l_count}, {"search", l_search},
    {"search_text", l_search_text},
    {"embedder", l_embedder}, {"close", l_close}, {NULL, NULL}};

static const luaL_Reg store_meta[] = {
    {"__gc", l_close}, {"__close", l_close}, {"__tostring", l_tostring}, {NULL, NULL}};

void lode_lua_open_store(lua_State *L) {
  if (luaL_newmetatable(L, STORE_TNAME)) { /* [lode, mt] */
    luaL_setfuncs(L, store_meta, 0);
    luaL_newlib(L, store_methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  lua_newtable(L); /* [lode, store] */
  lua_pushcfunction(L, l_open);
  lua_setfield(L, -2, "open");
  lua_setfield(L, -2, "store");
}
