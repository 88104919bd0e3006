/* lode_lua_embed.c - `lode.embed`: embedder userdata over kernels/embed.h.
 *
 *   local e = lode.embed.new{ provider = "hash", dims = 384 }
 *   local m = e:embed({ "first text", "second text" })   -- lode.matrix
 *   e:dims(), e:info(), e:usage(), e:close()
 *
 * Ownership: the userdata owns its lode_embedder (freed by __gc, __close or
 * close()); it is created empty, then filled, so a Lua error in between
 * leaks nothing. C resources are released before any Lua error is raised. */
#include <stdlib.h>
#include <string.h>

#include "kernels/embed.h"
#include "lua/lode_lua.h"
#include "lua/lode_lua_matrix.h"

#define EMBEDDER_TNAME "lode.embedder"

typedef struct ud {
  lode_embedder *e;
} ud;

static ud *check(lua_State *L) {
  ud *u = luaL_checkudata(L, 1, EMBEDDER_TNAME);
  if (!u->e) luaL_error(L, "embedder is closed");
  return u;
}

static const char *opt_str(lua_State *L, const char *k) {
  lua_getfield(L, 1, k);
  const char *s = NULL;
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "lode.embed.new: option '%s' must be a string", k);
    s = lua_tostring(L, -1); /* anchored: the options table holds it */
  }
  lua_pop(L, 1);
  return s;
}

static int64_t opt_int(lua_State *L, const char *k) {
  lua_getfield(L, 1, k);
  int64_t v = 0;
  if (!lua_isnil(L, -1)) {
    int ok;
    v = (int64_t)lua_tointegerx(L, -1, &ok);
    if (!ok) luaL_error(L, "lode.embed.new: option '%s' must be an integer", k);
  }
  lua_pop(L, 1);
  return v;
}

static double opt_num(lua_State *L, const char *k) {
  lua_getfield(L, 1, k);
  double v = 0;
  if (!lua_isnil(L, -1)) {
    int ok;
    v = lua_tonumberx(L, -1, &ok);
    if (!ok) luaL_error(L, "lode.embed.new: option '%s' must be a number", k);
  }
  lua_pop(L, 1);
  return v;
}

static int l_new(lua_State *L) {
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  lode_embed_opts o = {0};
  o.provider = opt_str(L, "provider");
  o.dims = opt_int(L, "dims");
  o.path = opt_str(L, "path");
  o.max_length = opt_int(L, "max_length");
  o.base_url = opt_str(L, "base_url");
  o.api_key = opt_str(L, "api_key");
  o.model = opt_str(L, "model");
  o.dimensions = opt_int(L, "dimensions");
  o.batch_size = opt_int(L, "batch_size");
  o.concurrency = opt_int(L, "concurrency");
  lua_getfield(L, 1, "max_retries");
  int has_retries = !lua_isnil(L, -1);
  lua_pop(L, 1);
  o.max_retries = opt_int(L, "max_retries");
  if (has_retries && o.max_retries == 0) o.max_retries = -1; /* explicit 0: no retry */
  o.retry_base = opt_num(L, "retry_base");
  o.timeout = opt_num(L, "timeout");
  ud *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->e = NULL;
  luaL_setmetatable(L, EMBEDDER_TNAME);
  char err[1024];
  if (lode_embedder_new(&o, &u->e, err, sizeof err) != 0) return luaL_error(L, "%s", err);
  return 1;
}

static void push_usage(lua_State *L, lode_embedder *e) {
  const lode_embed_usage *us = lode_embedder_usage(e);
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, (lua_Integer)us->prompt_tokens);
  lua_setfield(L, -2, "prompt_tokens");
  lua_pushinteger(L, (lua_Integer)us->total_tokens);
  lua_setfield(L, -2, "total_tokens");
  lua_pushstring(L, us->model[0] ? us->model : lode_embedder_model(e));
  lua_setfield(L, -2, "model");
}

/* An openai call records its usage on the current span (docs/embed.md) through
 * lode.trace.update when the tracing API is loaded. Outside any span there is
 * nothing to record, so an error from update is dropped, not raised: the
 * embedding itself succeeded. */
static void record_usage(lua_State *L, lode_embedder *e) {
  int top = lua_gettop(L);
  if (lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE) == LUA_TTABLE &&
      lua_getfield(L, -1, "lode") == LUA_TTABLE && lua_getfield(L, -1, "trace") == LUA_TTABLE &&
      lua_getfield(L, -1, "update") == LUA_TFUNCTION) {
    lua_createtable(L, 0, 3);
    push_usage(L, e);
    lua_getfield(L, -1, "model");
    lua_setfield(L, -3, "model");
    lua_pushnil(L);
    lua_setfield(L, -2, "model"); /* usage = { prompt_tokens, total_tokens } */
    lua_setfield(L, -2, "usage");
    lua_pushliteral(L, "openai");
    lua_setfield(L, -2, "provider");
    (void)lua_pcall(L, 1, 0, 0);
  }
  lua_settop(L, top);
}

static int l_embed(lua_State *L) {
  ud *u = check(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  size_t n = (size_t)lua_rawlen(L, 2);
  /* pointer arrays live in a userdata so a Lua error cannot leak them */
  size_t bytes = (n ? n : 1) * (sizeof(const char *) + sizeof(size_t));
  void *mem = lua_newuserdatauv(L, bytes, 0);
  const char **texts = mem;
  size_t *lens = (size_t *)(texts + (n ? n : 1));
  for (size_t i = 0; i < n; i++) {
    lua_rawgeti(L, 2, (lua_Integer)i + 1);
    if (lua_type(L, -1) != LUA_TSTRING)
      return luaL_error(L, "embed: texts[%d] is a %s, expected a string", (int)i + 1,
                        luaL_typename(L, -1));
    texts[i] = lua_tolstring(L, -1, &lens[i]); /* anchored by the texts table */
    lua_pop(L, 1);
  }
  lode_matrix m;
  char err[1024];
  if (lode_embed(u->e, texts, lens, n, &m, err, sizeof err) != 0) return luaL_error(L, "%s", err);
  lode_lua_matrix_adopt(L, m.rows, m.dims, m.data);
  if (strcmp(lode_embedder_provider(u->e), "openai") == 0) record_usage(L, u->e);
  return 1;
}

static int l_dims(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lode_embedder_dims(check(L)->e));
  return 1;
}

static int l_info(lua_State *L) {
  lode_embedder *e = check(L)->e;
  lua_createtable(L, 0, 3);
  lua_pushstring(L, lode_embedder_provider(e));
  lua_setfield(L, -2, "provider");
  lua_pushstring(L, lode_embedder_model(e));
  lua_setfield(L, -2, "model");
  lua_pushinteger(L, (lua_Integer)lode_embedder_dims(e));
  lua_setfield(L, -2, "dims");
  return 1;
}

static int l_usage(lua_State *L) {
  push_usage(L, check(L)->e);
  return 1;
}

static int l_close(lua_State *L) {
  ud *u = luaL_checkudata(L, 1, EMBEDDER_TNAME);
  lode_embedder_free(u->e);
  u->e = NULL;
  return 0;
}

static int l_tostring(lua_State *L) {
  ud *u = luaL_checkudata(L, 1, EMBEDDER_TNAME);
  if (!u->e) lua_pushstring(L, "lode.embedder (closed)");
  else lua_pushfstring(L, "lode.embedder (%s, %d dims)", lode_embedder_provider(u->e),
                       (int)lode_embedder_dims(u->e));
  return 1;
}

void lode_lua_open_embed(lua_State *L) {
  static const luaL_Reg methods[] = {{"embed", l_embed}, {"dims", l_dims}, {"info", l_info},
                                     {"usage", l_usage}, {"close", l_close}, {NULL, NULL}};
  if (luaL_newmetatable(L, EMBEDDER_TNAME)) {
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, l_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, l_new);
  lua_setfield(L, -2, "new");
  lua_setfield(L, -2, "embed");
}
