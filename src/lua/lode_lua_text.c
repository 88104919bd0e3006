/* lode_lua_text.c - `lode.text`: normalize, split, split_markdown.
 *
 * The kernels (src/kernels/text*.c) do the work on the Lua string's bytes;
 * this file reads options strictly (unknown keys and wrong types are errors
 * that name the option) and turns chunk lists into Lua tables. A chunk list
 * is parked in a guard userdata while the tables are built, so a memory
 * error raised by Lua mid-way still frees it (__gc / __close). */
#include <stdlib.h>
#include <string.h>

#include "kernels/text.h"
#include "lua/lode_lua.h"

#define GUARD_MT "lode.text.chunks"
#define STR_GUARD_MT "lode.text.string"

/* ---- options ------------------------------------------------------------ */

/* Raises if the options table at `idx` has a key not in `known`. */
static void check_keys(lua_State *L, int idx, const char *fn, const char *const *known) {
  lua_pushnil(L); /* [.., nil] */
  while (lua_next(L, idx)) { /* [.., key, value] */
    lua_pop(L, 1);
    const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    int ok = 0;
    for (size_t i = 0; k && known[i]; i++) ok |= strcmp(k, known[i]) == 0;
    if (!ok) {
      const char *shown = k ? k : luaL_typename(L, -1);
      luaL_error(L, "lode.text.%s: unknown option '%s'", fn, shown);
    }
  }
}

static int opt_bool(lua_State *L, int idx, const char *fn, const char *key, int dflt) {
  int v = dflt;
  lua_getfield(L, idx, key);
  if (!lua_isnil(L, -1)) {
    if (!lua_isboolean(L, -1))
      luaL_error(L, "lode.text.%s: option '%s' must be a boolean, got %s", fn, key,
                 luaL_typename(L, -1));
    v = lua_toboolean(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

static long opt_int(lua_State *L, int idx, const char *fn, const char *key, long dflt) {
  long v = dflt;
  lua_getfield(L, idx, key);
  if (!lua_isnil(L, -1)) {
    int isnum = 0;
    lua_Integer i = lua_tointegerx(L, -1, &isnum);
    if (!isnum)
      luaL_error(L, "lode.text.%s: option '%s' must be an integer, got %s", fn, key,
                 luaL_typename(L, -1));
    if (i > 0x7fffffffL || i < -0x7fffffffL)
      luaL_error(L, "lode.text.%s: option '%s' is out of range", fn, key);
    v = (long)i;
  }
  lua_pop(L, 1);
  return v;
}

/* Reads split options from the table at idx (which may be absent). The
 * separator strings stay referenced by that table, on the stack. */
static void read_split_opts(lua_State *L, int idx, const char *fn,
                            struct lode_text_split_opts *o) {
  lode_text_split_opts_default(o);
  if (lua_isnoneornil(L, idx)) return;
  o->size = opt_int(L, idx, fn, "size", o->size);
  o->overlap = opt_int(L, idx, fn, "overlap", o->overlap);
  o->keep_separator = opt_bool(L, idx, fn, "keep_separator", 1);
  lua_getfield(L, idx, "separators"); /* [.., seps] */
  if (!lua_isnil(L, -1)) {
    if (!lua_istable(L, -1))
      luaL_error(L, "lode.text.%s: option 'separators' must be an array of strings", fn);
    lua_Integer n = luaL_len(L, -1);
    if (n < 1 || n > LODE_TEXT_MAX_SEPARATORS)
      luaL_error(L, "lode.text.%s: 'separators' needs 1 to %d strings, got %d", fn,
                 LODE_TEXT_MAX_SEPARATORS, (int)n);
    for (lua_Integer i = 1; i <= n; i++) {
      lua_geti(L, -1, i);
      if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "lode.text.%s: separators[%d] must be a string, got %s", fn, (int)i,
                   luaL_typename(L, -1));
      o->separators[i - 1] = lua_tolstring(L, -1, &o->separator_lens[i - 1]);
      lua_pop(L, 1); /* still referenced by the separators table */
    }
    o->nseparators = (size_t)n;
  }
  lua_pop(L, 1);
  char err[LODE_TEXT_ERRLEN];
  if (lode_text_split_opts_check(o, err) < 0) luaL_error(L, "lode.text.%s: %s", fn, err + 7);
}

/* ---- the guard ------------------------------------------------------------ */

static int guard_gc(lua_State *L) {
  struct lode_text_chunks **g = luaL_checkudata(L, 1, GUARD_MT);
  lode_text_chunks_free(*g);
  *g = NULL;
  return 0;
}

static const luaL_Reg guard_meta[] = {
    {"__gc", guard_gc},
    {"__close", guard_gc},
    {NULL, NULL},
};

static int str_guard_gc(lua_State *L) {
  char **g = luaL_checkudata(L, 1, STR_GUARD_MT);
  free(*g);
  *g = NULL;
  return 0;
}

static const luaL_Reg str_guard_meta[] = {
    {"__gc", str_guard_gc},
    {"__close", str_guard_gc},
    {NULL, NULL},
};

static char **push_str_guard(lua_State *L) {
  char **g = lua_newuserdatauv(L, sizeof *g, 0);
  *g = NULL;
  luaL_setmetatable(L, STR_GUARD_MT);
  return g;
}

/* Pushes an empty guard; fill it right after. */
static struct lode_text_chunks **push_guard(lua_State *L) {
  struct lode_text_chunks **g = lua_newuserdatauv(L, sizeof *g, 0);
  *g = NULL;
  luaL_setmetatable(L, GUARD_MT);
  return g;
}

/* Turns the guarded list into an array of chunk tables: [.., guard] ->
 * [.., guard, array]. */
static void push_chunks(lua_State *L, const struct lode_text_chunks *c, int with_headers) {
  lua_createtable(L, (int)c->n, 0);
  for (size_t i = 0; i < c->n; i++) {
    const struct lode_text_chunk *k = &c->v[i];
    lua_createtable(L, 0, 4);
    lua_pushlstring(L, k->text, k->len);
    lua_setfield(L, -2, "text");
    lua_pushinteger(L, (lua_Integer)k->start);
    lua_setfield(L, -2, "start");
    lua_pushinteger(L, (lua_Integer)k->end);
    lua_setfield(L, -2, "end");
    if (!k->exact) {
      lua_pushboolean(L, 0);
      lua_setfield(L, -2, "exact");
    }
    if (with_headers) {
      lua_createtable(L, (int)k->nheaders, 0);
      for (size_t h = 0; h < k->nheaders; h++) {
        const struct lode_text_header *hd = &c->headers[k->header_first + h];
        lua_pushlstring(L, hd->text, hd->len);
        lua_rawseti(L, -2, (lua_Integer)h + 1);
      }
      lua_setfield(L, -2, "headers");
    }
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

/* ---- functions ------------------------------------------------------------ */

static const char *const normalize_keys[] = {"nfc", "nfkc", "controls", "whitespace", NULL};

/* lode.text.normalize(s [, opts]) -> string */
static int l_normalize(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  struct lode_text_normalize_opts o;
  lode_text_normalize_opts_default(&o);
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    check_keys(L, 2, "normalize", normalize_keys);
    o.nfc = opt_bool(L, 2, "normalize", "nfc", 1);
    o.nfkc = opt_bool(L, 2, "normalize", "nfkc", 0);
    o.controls = opt_bool(L, 2, "normalize", "controls", 1);
    o.whitespace = opt_bool(L, 2, "normalize", "whitespace", 1);
  }
  lua_settop(L, 2);
  char **out = push_str_guard(L); /* [s, opts, guard] */
  char err[LODE_TEXT_ERRLEN];
  size_t olen = 0;
  if (lode_text_normalize(s, len, &o, out, &olen, err) < 0)
    return luaL_error(L, "lode.text.%s", err);
  lua_pushlstring(L, *out, olen); /* may raise: the guard frees `out` */
  free(*out);
  *out = NULL;
  return 1;
}

static const char *const split_keys[] = {"size", "overlap", "separators", "keep_separator",
                                         NULL};

/* lode.text.split(s [, opts]) -> { {text=, start=, ["end"]=}, ... } */
static int l_split(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  struct lode_text_split_opts o;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    check_keys(L, 2, "split", split_keys);
  }
  read_split_opts(L, 2, "split", &o);
  lua_settop(L, 2);
  struct lode_text_chunks **g = push_guard(L); /* [s, opts, guard] */
  char err[LODE_TEXT_ERRLEN];
  if (lode_text_split(s, len, &o, g, err) < 0) return luaL_error(L, "lode.text.%s", err);
  push_chunks(L, *g, 0); /* [s, opts, guard, chunks] */
  lode_text_chunks_free(*g);
  *g = NULL;
  return 1;
}

static const char *const markdown_keys[] = {"size",   "overlap",       "separators",
                                            "keep_separator", "levels", "strip_headers",
                                            NULL};

/* lode.text.split_markdown(s [, opts]) -> chunks with `headers` */
static int l_split_markdown(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  struct lode_text_markdown_opts o;
  lode_text_markdown_opts_default(&o);
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    check_keys(L, 2, "split_markdown", markdown_keys);
    o.strip_headers = opt_bool(L, 2, "split_markdown", "strip_headers", 1);
    lua_getfield(L, 2, "levels");
    if (!lua_isnil(L, -1)) {
      if (!lua_istable(L, -1))
        luaL_error(L, "lode.text.split_markdown: option 'levels' must be an array of 1..6");
      o.levels = 0;
      lua_Integer n = luaL_len(L, -1);
      for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, -1, i);
        int isnum = 0;
        lua_Integer lv = lua_tointegerx(L, -1, &isnum);
        if (!isnum || lv < 1 || lv > 6)
          luaL_error(L, "lode.text.split_markdown: levels[%d] must be an integer 1..6", (int)i);
        o.levels |= 1u << lv;
        lua_pop(L, 1);
      }
      if (!o.levels) luaL_error(L, "lode.text.split_markdown: 'levels' is empty");
    }
    lua_pop(L, 1);
  }
  read_split_opts(L, 2, "split_markdown", &o.split);
  lua_settop(L, 2);
  struct lode_text_chunks **g = push_guard(L);
  char err[LODE_TEXT_ERRLEN];
  if (lode_text_split_markdown(s, len, &o, g, err) < 0) return luaL_error(L, "lode.text.%s", err);
  push_chunks(L, *g, 1);
  lode_text_chunks_free(*g);
  *g = NULL;
  return 1;
}

static const luaL_Reg text_funcs[] = {
    {"normalize", l_normalize},
    {"split", l_split},
    {"split_markdown", l_split_markdown},
    {NULL, NULL},
};

void lode_lua_open_text(lua_State *L) {
  if (luaL_newmetatable(L, GUARD_MT)) luaL_setfuncs(L, guard_meta, 0);
  if (luaL_newmetatable(L, STR_GUARD_MT)) luaL_setfuncs(L, str_guard_meta, 0);
  lua_pop(L, 2);
  luaL_newlib(L, text_funcs); /* [lode, text] */
  lua_setfield(L, -2, "text");
}
