/* lode_lua_opts.c - checking the options of lode.workflow, lode.step,
 * lode.track and lode.queue when they are declared, so a mistake is reported
 * at the declaration (file and line) naming what is declared and the option,
 * not later by whatever code first reads it (docs/lua-api.md). Messages are
 * built in C buffers: a check allocates nothing, so raising leaks nothing. */
#include <stdio.h>
#include <string.h>

#include "lua/lode_lua_internal.h"

#include "base/util.h"

/* A short description of the value at idx: `string "soon"`, `number 0`,
 * `boolean true`, `function`. */
static void describe(lua_State *L, int idx, char *out, size_t n) {
  int t = lua_type(L, idx);
  if (t == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    snprintf(out, n, "string \"%.*s%s\"", len > 40 ? 40 : (int)len, s, len > 40 ? "..." : "");
  } else if (t == LUA_TNUMBER && lua_isinteger(L, idx)) {
    snprintf(out, n, "number %lld", (long long)lua_tointeger(L, idx));
  } else if (t == LUA_TNUMBER) {
    snprintf(out, n, "number %.14g", (double)lua_tonumber(L, idx));
  } else if (t == LUA_TBOOLEAN) {
    snprintf(out, n, "boolean %s", lua_toboolean(L, idx) ? "true" : "false");
  } else {
    snprintf(out, n, "%s", lua_typename(L, t));
  }
}

static const char *expects(int kind) {
  switch (kind) {
  case LODE_OPT_POS_NUMBER: return "a positive number";
  case LODE_OPT_SECONDS: return "a positive number of seconds, at most 1e9";
  case LODE_OPT_NONNEG_NUMBER: return "a number >= 0";
  case LODE_OPT_NUMBER_GE1: return "a number >= 1";
  case LODE_OPT_POS_INT: return "an integer >= 1";
  case LODE_OPT_STRING: return "a string";
  case LODE_OPT_BOOLEAN: return "a boolean";
  case LODE_OPT_STRINGS: return "a list of strings";
  default: return "a table";
  }
}

static int valid(lua_State *L, int idx, int kind) {
  switch (kind) {
  case LODE_OPT_POS_NUMBER: return lua_type(L, idx) == LUA_TNUMBER && lua_tonumber(L, idx) > 0;
  case LODE_OPT_SECONDS: /* also refuses NaN and math.huge */
    return lua_type(L, idx) == LUA_TNUMBER && lua_tonumber(L, idx) > 0 &&
           lua_tonumber(L, idx) <= LODE_MAX_SECONDS;
  case LODE_OPT_NONNEG_NUMBER:
    return lua_type(L, idx) == LUA_TNUMBER && lua_tonumber(L, idx) >= 0;
  case LODE_OPT_NUMBER_GE1:
    return lua_type(L, idx) == LUA_TNUMBER && lua_tonumber(L, idx) >= 1;
  case LODE_OPT_POS_INT: return lua_isinteger(L, idx) && lua_tointeger(L, idx) >= 1;
  case LODE_OPT_STRING: return lua_type(L, idx) == LUA_TSTRING;
  case LODE_OPT_BOOLEAN: return lua_type(L, idx) == LUA_TBOOLEAN;
  case LODE_OPT_STRINGS: {
    if (!lua_istable(L, idx)) return 0;
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    for (lua_Integer i = 1; i <= n; i++) {
      int ok = lua_rawgeti(L, idx, i) == LUA_TSTRING;
      lua_pop(L, 1);
      if (!ok) return 0;
    }
    return 1;
  }
  default: return lua_istable(L, idx);
  }
}

static void check_table(lua_State *L, int t, const char *api, const char *name,
                        const char *prefix, const lode_opt *spec) {
  t = lua_absindex(L, t);
  char got[96], known[512];
  /* unknown names first: a misspelt option is the likelier mistake */
  lua_pushnil(L);
  while (lua_next(L, t)) { /* [.., key, value] */
    int ok = 0;
    if (lua_type(L, -2) == LUA_TSTRING) {
      const char *k = lua_tostring(L, -2);
      for (const lode_opt *o = spec; o->name && !ok; o++) ok = !strcmp(o->name, k);
    }
    if (!ok) {
      size_t n = 0;
      known[0] = 0;
      for (const lode_opt *o = spec; o->name && n < sizeof known; o++)
        n += (size_t)snprintf(known + n, sizeof known - n, "%s%s%s", o == spec ? "" : ", ",
                              prefix, o->name);
      if (lua_type(L, -2) == LUA_TSTRING)
        luaL_error(L, "%s '%s': unknown option '%s%s' (known: %s)", api, name, prefix,
                   lua_tostring(L, -2), known);
      describe(L, -2, got, sizeof got);
      luaL_error(L, "%s '%s': unknown option key (%s) in %s (known: %s)", api, name, got,
                 *prefix ? prefix : "the options", known);
    }
    lua_pop(L, 1);
  }
  for (const lode_opt *o = spec; o->name; o++) {
    lua_getfield(L, t, o->name);
    if (!lua_isnil(L, -1) && !valid(L, -1, o->kind)) {
      describe(L, -1, got, sizeof got);
      luaL_error(L, "%s '%s': option '%s%s' must be %s (got %s)", api, name, prefix, o->name,
                 expects(o->kind), got);
    }
    if (o->sub && lua_istable(L, -1)) {
      char p[64];
      snprintf(p, sizeof p, "%s%s.", prefix, o->name);
      check_table(L, -1, api, name, p, o->sub);
    }
    lua_pop(L, 1);
  }
}

void lode__check_opts(lua_State *L, int idx, const char *api, const char *name,
                      const lode_opt *spec) {
  if (lua_isnoneornil(L, idx)) return;
  if (!lua_istable(L, idx)) {
    char got[96];
    describe(L, idx, got, sizeof got);
    luaL_error(L, "%s '%s': options must be a table (got %s)", api, name, got);
  }
  check_table(L, idx, api, name, "", spec);
}

void lode__check_declare(lua_State *L, const char *api, const char *name) {
  host *h = lode__host(L);
  if (h->loading && !h->current && !h->in_step) return;
  const char *where = h->in_step ? "inside a step"
                      : h->current ? "inside a running workflow"
                                   : "after the pipeline was loaded";
  luaL_error(L,
             "%s '%s' is declared %s; declare workflows, steps, tracked functions and "
             "queues at the top level of the pipeline file or of a module it requires "
             "(under 'lode test': of the spec file), not inside a workflow or step",
             api, name, where);
}
