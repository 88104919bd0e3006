/* lode_lua_fs.c - `lode.fs`: the Lua face of src/kernels/fs.h.
 *
 * Like io.open, functions that touch files return nil plus a message naming
 * the file when the file is the problem (missing, too big, binary, damaged),
 * and raise only for bad arguments. Whatever C memory a call holds while it
 * builds Lua values sits in a scratch userdata whose __gc frees it, so a
 * memory error half-way leaks nothing. */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "kernels/fs.h"
#include "lua/lode_lua.h"

#define SCRATCH_TNAME "lode.fs.scratch"

/* ---- scratch: C memory owned by the Lua stack ---------------------------------- */
typedef struct scratch {
  lode_buf buf;
  lode_fs_doc doc;
  char *data;
  int overflow;
} scratch;

static int scratch_gc(lua_State *L) {
  scratch *s = luaL_checkudata(L, 1, SCRATCH_TNAME);
  lode_buf_free(&s->buf);
  lode_fs_doc_free(&s->doc);
  free(s->data);
  s->data = NULL;
  return 0;
}

static scratch *push_scratch(lua_State *L) {
  scratch *s = lua_newuserdatauv(L, sizeof *s, 0);
  memset(s, 0, sizeof *s);
  lode_buf_init(&s->buf, 0);
  luaL_setmetatable(L, SCRATCH_TNAME);
  return s;
}

static int fail(lua_State *L, const char *err) {
  lua_pushnil(L);
  lua_pushstring(L, err);
  return 2;
}

static size_t opt_max_bytes(lua_State *L, int opts) {
  if (lua_type(L, opts) != LUA_TTABLE) {
    luaL_argexpected(L, lua_isnoneornil(L, opts), opts, "table or nil");
    return 0;
  }
  lua_getfield(L, opts, "max_bytes");
  lua_Integer v = lua_isnil(L, -1) ? 0 : luaL_checkinteger(L, -1);
  lua_pop(L, 1);
  if (v < 0) luaL_error(L, "max_bytes must be >= 0");
  return (size_t)v;
}

/* ---- walk ---------------------------------------------------------------------- */
/* Reads opts[key] (a string or a list of strings) into a pattern array that
 * lives in a userdata on the stack; the strings stay anchored in opts. */
static const char **patterns(lua_State *L, int opts, const char *key, size_t *n) {
  *n = 0;
  if (lua_type(L, opts) != LUA_TTABLE) {
    lua_pushnil(L);
    return NULL;
  }
  lua_getfield(L, opts, key); /* [v] */
  int v = lua_gettop(L);
  if (lua_isnil(L, v)) return NULL;
  if (lua_type(L, v) == LUA_TSTRING) {
    const char **p = lua_newuserdatauv(L, sizeof *p, 0);
    p[0] = lua_tostring(L, v);
    lua_insert(L, v); /* [ud, v]: v anchors the string */
    *n = 1;
    return p;
  }
  if (lua_type(L, v) != LUA_TTABLE)
    luaL_error(L, "walk: %s must be a glob or a list of globs, not %s", key,
               luaL_typename(L, v));
  size_t len = lua_rawlen(L, v);
  const char **p = lua_newuserdatauv(L, (len ? len : 1) * sizeof *p, 0); /* [v, ud] */
  for (size_t i = 0; i < len; i++) {
    if (lua_rawgeti(L, v, (lua_Integer)i + 1) != LUA_TSTRING)
      luaL_error(L, "walk: %s[%d] must be a string", key, (int)i + 1);
    p[i] = lua_tostring(L, -1); /* anchored by the list v */
    lua_pop(L, 1);
  }
  *n = len;
  return p;
}

static int walk_cb(void *ud, const char *rel) {
  scratch *s = ud;
  /* NUL-separated; a full buffer stops the walk and is reported below */
  if (lode_buf_append(&s->buf, rel, strlen(rel) + 1) != 0) {
    s->overflow = 1;
    return 1;
  }
  return 0;
}

/* Links not followed go into the same buffer after a '\1' mark, so one
 * scratch holds both lists. */
static int skipped_cb(void *ud, const char *rel, const char *why) {
  scratch *s = ud;
  (void)why;
  if (lode_buf_putc(&s->buf, '\1') || lode_buf_append(&s->buf, rel, strlen(rel) + 1) != 0) {
    s->overflow = 1;
    return 1;
  }
  return 0;
}

static int l_walk(lua_State *L) {
  const char *dir = luaL_checkstring(L, 1);
  lode_fs_walk_opts o = {0};
  o.include = patterns(L, 2, "include", &o.n_include);
  o.exclude = patterns(L, 2, "exclude", &o.n_exclude);
  o.skipped = skipped_cb;
  if (lua_type(L, 2) == LUA_TTABLE) {
    lua_getfield(L, 2, "max_files");
    o.max_files = (size_t)luaL_optinteger(L, -1, 0);
    lua_pop(L, 1);
    static const char *const modes[] = {"inside", "all", "none", NULL};
    lua_getfield(L, 2, "follow_links");
    if (!lua_isnil(L, -1)) {
      if (lua_type(L, -1) != LUA_TSTRING)
        return luaL_error(L, "walk: follow_links must be \"inside\", \"all\" or \"none\"");
      int m = luaL_checkoption(L, -1, NULL, modes);
      o.follow_links = m == 0 ? LODE_FS_LINKS_INSIDE : m == 1 ? LODE_FS_LINKS_ALL
                                                              : LODE_FS_LINKS_NONE;
    }
    lua_pop(L, 1);
  }
  char err[LODE_FS_ERRLEN];
  scratch *s = push_scratch(L);
  int rc = lode_fs_walk(dir, &o, walk_cb, s, err, sizeof err);
  if (s->overflow) {
    return fail(L, "walk: too many paths to return (over 2 GiB of names); narrow it with "
                   "include/exclude");
  }
  if (rc != 0) return fail(L, err);
  lua_newtable(L); /* [rels] */
  lua_Integer i = 0, k = 0;
  for (size_t off = 0; off < s->buf.len;) {
    const char *p = (const char *)s->buf.p + off;
    int link = p[0] == '\1';
    size_t n = strlen(p + link);
    if (link) {
      if (k == 0) {
        lua_newtable(L); /* [rels, skipped] */
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, "skipped");
      }
      lua_pushlstring(L, p + 1, n);
      lua_rawseti(L, -2, ++k);
    } else {
      lua_pushlstring(L, p, n);
      lua_rawseti(L, k ? -3 : -2, ++i);
    }
    off += n + 1 + (size_t)link;
  }
  if (k) lua_pop(L, 1);
  return 1;
}

/* lode.fs.walk_matches(rel, { include = ..., exclude = ... }) -> bool */
static int l_walk_matches(lua_State *L) {
  const char *rel = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lode_fs_walk_opts o = {0};
  o.include = patterns(L, 2, "include", &o.n_include);
  o.exclude = patterns(L, 2, "exclude", &o.n_exclude);
  int r = lode_fs_walk_matches(&o, rel);
  if (r < 0) return luaL_error(L, "walk_matches: out of memory");
  lua_pushboolean(L, r);
  return 1;
}

static int l_glob_match(lua_State *L) {
  lua_pushboolean(L, lode_fs_glob_match(luaL_checkstring(L, 1), luaL_checkstring(L, 2)));
  return 1;
}

/* ---- read and hash --------------------------------------------------------------- */
static int l_read(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  size_t max = opt_max_bytes(L, 2);
  char err[LODE_FS_ERRLEN];
  scratch *s = push_scratch(L);
  size_t n = 0;
  if (lode_fs_read(path, max, &s->data, &n, err, sizeof err) != 0) return fail(L, err);
  lua_pushlstring(L, s->data, n);
  free(s->data);
  s->data = NULL;
  return 1;
}

static int l_hash(lua_State *L) {
  size_t n;
  const char *p = luaL_checklstring(L, 1, &n);
  char hex[33];
  lode_fs_hash(p, n, hex);
  lua_pushstring(L, hex);
  return 1;
}

static int l_hash_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  char hex[33], err[LODE_FS_ERRLEN];
  if (lode_fs_hash_file(path, hex, err, sizeof err) != 0) return fail(L, err);
  lua_pushstring(L, hex);
  return 1;
}

/* ---- loaders ------------------------------------------------------------------------ */
static const char *const kind_names[] = {"auto", "text", "markdown", "html", "pdf", NULL};

static int load_as(lua_State *L, lode_fs_kind kind) {
  const char *path = luaL_checkstring(L, 1);
  size_t max = opt_max_bytes(L, 2);
  if (kind == LODE_FS_AUTO && lua_type(L, 2) == LUA_TTABLE) {
    lua_getfield(L, 2, "kind");
    kind = (lode_fs_kind)luaL_checkoption(L, -1, "auto", kind_names);
    lua_pop(L, 1);
  }
  char err[LODE_FS_ERRLEN];
  scratch *s = push_scratch(L);
  if (lode_fs_load(path, kind, max, &s->doc, err, sizeof err) != 0) return fail(L, err);
  lua_createtable(L, 0, 3);
  lua_pushlstring(L, s->doc.text, s->doc.text_len);
  lua_setfield(L, -2, "text");
  if (s->doc.title) {
    lua_pushstring(L, s->doc.title);
    lua_setfield(L, -2, "title");
  }
  lua_pushstring(L, s->doc.mime);
  lua_setfield(L, -2, "mime");
  lode_fs_doc_free(&s->doc);
  return 1;
}

static int l_load(lua_State *L) { return load_as(L, LODE_FS_AUTO); }
static int l_load_text(lua_State *L) { return load_as(L, LODE_FS_TEXT); }
static int l_load_markdown(lua_State *L) { return load_as(L, LODE_FS_MARKDOWN); }
static int l_load_html(lua_State *L) { return load_as(L, LODE_FS_HTML); }
static int l_load_pdf(lua_State *L) { return load_as(L, LODE_FS_PDF); }

static const luaL_Reg fs_funcs[] = {
    {"walk", l_walk},
    {"glob_match", l_glob_match},
    {"walk_matches", l_walk_matches},
    {"read", l_read},
    {"hash", l_hash},
    {"hash_file", l_hash_file},
    {"load", l_load},
    {"load_text", l_load_text},
    {"load_markdown", l_load_markdown},
    {"load_html", l_load_html},
    {"load_pdf", l_load_pdf},
    {NULL, NULL},
};

void lode_lua_open_fs(lua_State *L) {
  if (luaL_newmetatable(L, SCRATCH_TNAME)) { /* [lode, mt] */
    lua_pushcfunction(L, scratch_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  luaL_newlib(L, fs_funcs); /* [lode, fs] */
  lua_pushinteger(L, (lua_Integer)LODE_FS_DEFAULT_MAX_BYTES);
  lua_setfield(L, -2, "DEFAULT_MAX_BYTES");
  lua_setfield(L, -2, "fs");
}
