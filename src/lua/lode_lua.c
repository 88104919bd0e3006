/* lode_lua.c - state creation, protected calls and the list of API areas. */
#include "lua/lode_lua.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lode_config.h"

/* ---- rendering error values (docs/lua-api.md, "Errors") --------------------
 * An error value that is not a string is rendered: through its __tostring
 * (called protected: a __tostring that throws is reported as such, never as
 * an empty message), else a table as a short Lua-like constructor
 * ({code = 42, msg = "x"}: two levels, 16 fields, about 400 bytes), else its
 * type. */

#define ERR_FIELDS 16
#define ERR_BYTES 400

/* A fixed C buffer: lua_next pushes keys and values, which a luaL_Buffer
 * (whose box must stay on top) would not allow. Truncates silently; the
 * caller adds "..." when full. */
typedef struct errbuf {
  char p[ERR_BYTES + 64];
  size_t n;
} errbuf;

/* The length of s cut to at most max bytes without splitting a UTF-8
 * sequence (the text goes into rows and Opik's JSON). */
static size_t utf8_cut(const char *s, size_t n, size_t max) {
  if (n <= max) return n;
  while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80) max--;
  return max;
}

static void eb_add(errbuf *b, const char *s, size_t n) {
  n = utf8_cut(s, n, sizeof b->p - 1 - b->n);
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = 0;
}
static void eb_str(errbuf *b, const char *s) { eb_add(b, s, strlen(s)); }

static void render_value(lua_State *L, errbuf *b, int idx, int depth);

static int is_ident(const char *k, size_t n) {
  if (!k || n == 0 || n > 63 || !(k[0] == '_' || ((k[0] | 32) >= 'a' && (k[0] | 32) <= 'z')))
    return 0;
  for (size_t i = 1; i < n; i++)
    if (!(k[i] == '_' || (k[i] >= '0' && k[i] <= '9') || ((k[i] | 32) >= 'a' && (k[i] | 32) <= 'z')))
      return 0;
  return 1;
}

/* Appends a short form of the value at idx (absolute). No metamethod runs. */
static void render_value(lua_State *L, errbuf *b, int idx, int depth) {
  char tmp[64];
  switch (lua_type(L, idx)) {
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    eb_str(b, "\"");
    eb_add(b, s, utf8_cut(s, n, 80));
    eb_str(b, n > 80 ? "...\"" : "\"");
    break;
  }
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) snprintf(tmp, sizeof tmp, LUA_INTEGER_FMT, lua_tointeger(L, idx));
    else snprintf(tmp, sizeof tmp, LUA_NUMBER_FMT, lua_tonumber(L, idx));
    eb_str(b, tmp);
    break;
  case LUA_TBOOLEAN:
    eb_str(b, lua_toboolean(L, idx) ? "true" : "false");
    break;
  case LUA_TTABLE: {
    if (depth >= 2) {
      eb_str(b, "{...}");
      break;
    }
    eb_str(b, "{");
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) { /* [.., key, value] */
      int top = lua_gettop(L);
      if (n > 0) eb_str(b, ", ");
      if (n == ERR_FIELDS || b->n > ERR_BYTES) {
        eb_str(b, "...");
        lua_pop(L, 2);
        break;
      }
      size_t kn = 0;
      const char *k = lua_type(L, top - 1) == LUA_TSTRING ? lua_tolstring(L, top - 1, &kn) : NULL;
      if (is_ident(k, kn)) {
        eb_add(b, k, kn);
      } else {
        eb_str(b, "[");
        render_value(L, b, top - 1, 2);
        eb_str(b, "]");
      }
      eb_str(b, " = ");
      render_value(L, b, top, depth + 1);
      lua_pop(L, 1);
      n++;
    }
    eb_str(b, "}");
    break;
  }
  default:
    snprintf(tmp, sizeof tmp, "<%s>", luaL_typename(L, idx));
    eb_str(b, tmp);
  }
}

/* [value] -> [value, rendered string]; runs protected. */
static int render_protected(lua_State *L) {
  if (luaL_getmetafield(L, 1, "__tostring") != LUA_TNIL) {
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1);
    if (lua_type(L, -1) != LUA_TSTRING)
      return luaL_error(L, "'__tostring' returned a %s, not a string", luaL_typename(L, -1));
    return 1;
  }
  if (lua_type(L, 1) != LUA_TTABLE) {
    lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    return 1;
  }
  errbuf b;
  b.n = 0;
  b.p[0] = 0;
  render_value(L, &b, 1, 0);
  lua_pushlstring(L, b.p, b.n);
  return 1;
}

void lode_lua_push_errmsg(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TSTRING || lua_type(L, idx) == LUA_TNUMBER) {
    lua_pushvalue(L, idx);
    lua_tostring(L, -1); /* the copy is converted, not the value */
    return;
  }
  const char *type = luaL_typename(L, idx);
  lua_pushcfunction(L, render_protected);
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    const char *why = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(not a string)";
    lua_pushfstring(L, "(error object is a %s value; rendering it failed: %s)", type, why);
    lua_remove(L, -2);
  }
}

/* ---- lode.fail: an error that is not a bug --------------------------------
 * A failure the code expected and explained (bad arguments, "3 of 40 files
 * failed", a cancel) carries no traceback: the message handler passes its
 * message on as it is. The value is a table { message = ... } whose
 * metatable is LODE_FAIL_MT, so a pcall in the user's code can tell it
 * apart; tostring() gives the message. */
#define LODE_FAIL_MT "lode.fail"

static int fail_tostring(lua_State *L) {
  lua_getfield(L, 1, "message");
  if (lua_type(L, -1) != LUA_TSTRING) lua_pushliteral(L, "(lode.fail without a message)");
  return 1;
}

int lode__is_fail(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx)) return 0;
  luaL_getmetatable(L, LODE_FAIL_MT);
  int same = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return same;
}

int lode__raise_fail(lua_State *L, const char *msg) {
  lua_createtable(L, 0, 1);
  lua_pushstring(L, msg);
  lua_setfield(L, -2, "message");
  if (luaL_newmetatable(L, LODE_FAIL_MT)) {
    lua_pushcfunction(L, fail_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_setmetatable(L, -2);
  return lua_error(L);
}

/* lode.fail(message): raises a failure that prints without a traceback. */
static int l_fail(lua_State *L) {
  const char *msg = luaL_checkstring(L, 1);
  return lode__raise_fail(L, msg);
}

/* A traceback is added once: an error that already carries one (a step's
 * error re-raised in its workflow) is passed on as it is. */
#define TRACEBACK_MARK "\nstack traceback:\n"

int lode__has_traceback(const char *msg) { return msg && strstr(msg, TRACEBACK_MARK) != NULL; }

int lode_lua_traceback(lua_State *L) {
  if (lode__is_fail(L, 1)) {
    lua_getfield(L, 1, "message");
    return 1;
  }
  const char *msg = lua_tostring(L, 1);
  if (msg && strstr(msg, TRACEBACK_MARK)) return 1;
  if (msg == NULL) {
    lode_lua_push_errmsg(L, 1);
    msg = lua_tostring(L, -1);
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int lode_lua_pcall(lua_State *L, int nargs, int nresults) {
  int base = lua_gettop(L) - nargs; /* function index */
  lua_pushcfunction(L, lode_lua_traceback);
  lua_insert(L, base);
  int rc = lua_pcall(L, nargs, nresults, base);
  lua_remove(L, base);
  return rc;
}

const char *lode_lua_errstr(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TSTRING) return lua_tostring(L, idx);
  /* rendered in place, so the string lives while the value stays there */
  idx = lua_absindex(L, idx);
  lode_lua_push_errmsg(L, idx);
  lua_replace(L, idx);
  return lua_tostring(L, idx);
}

static int open_lode(lua_State *L) {
  lode_lua_open_all(L);
  return 1;
}

void lode_lua_open_all(lua_State *L) {
  lua_newtable(L); /* [lode] */
  lua_pushliteral(L, LODE_VERSION);
  lua_setfield(L, -2, "version");
  lua_pushcfunction(L, l_fail);
  lua_setfield(L, -2, "fail");
  lode_lua_open_workflow(L);
  lode_lua_open_codec(L);
  lode_lua_open_trace(L);
  lode_lua_open_sched(L);
  lode_lua_open_matrix(L);
  lode_lua_open_text(L);
  lode_lua_open_embed(L);
  lode_lua_open_store(L);
  lode_lua_open_fs(L);
  lode_lua_open_progress(L);
}

/* The folder holding the running binary (/proc/self/exe, links resolved);
 * 0 when unknown. */
static int exe_dir(char *out, size_t n) {
  char buf[PATH_MAX];
  ssize_t k = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (k <= 0) return 0;
  buf[k] = 0;
  char *slash = strrchr(buf, '/');
  if (!slash) return 0;
  *slash = 0;
  if ((size_t)snprintf(out, n, "%s", buf[0] ? buf : "/") >= n) return 0;
  return 1;
}

static int same_dir(const char *a, const char *b) {
  char ra[PATH_MAX], rb[PATH_MAX];
  return realpath(a, ra) && realpath(b, rb) && !strcmp(ra, rb);
}

/* lode's library folders, in the order require() tries them: $LODE_LUA_PATH,
 * then the source tree's lua/ for the build-folder binary, or for an
 * installed one BINDIR/../share/lode/lua (so a moved prefix, or one other
 * than the configured, works) and the configured prefix's. Each kept in
 * `tried` (";"-separated, for the not-found message) whether or not it
 * exists. */
static int lode_dirs(const char *dirs[4], char rel[PATH_MAX]) {
  int n = 0;
  const char *env = getenv("LODE_LUA_PATH");
  if (env && *env) dirs[n++] = env;
  char bin[PATH_MAX];
  int have_bin = exe_dir(bin, sizeof bin);
  if (have_bin && same_dir(bin, LODE_BUILD_DIR)) {
    dirs[n++] = LODE_LUA_DIR_BUILD;
  } else {
    if (have_bin && (size_t)snprintf(rel, PATH_MAX, "%s/../share/lode/lua", bin) < PATH_MAX) {
      char real[PATH_MAX];
      /* shown resolved when it exists: "/opt/x/bin/../share" reads badly */
      if (realpath(rel, real)) memcpy(rel, real, strlen(real) + 1);
      dirs[n++] = rel;
    }
    if (!(n && !strcmp(dirs[n - 1], LODE_LUA_DIR_INSTALL))) dirs[n++] = LODE_LUA_DIR_INSTALL;
  }
  return n;
}

/* A searcher that finds nothing: when no searcher finds a module, say which lode library
 * folders were looked in (Lua's own message lists only package.path's
 * patterns, which leave out folders that do not exist). */
static int lode_searcher(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  lua_pushfstring(L, "lode's library folders tried for '%s': %s", name,
                  lua_tostring(L, lua_upvalueindex(1)));
  return 1;
}

/* package.path: pipeline folder first (user modules shadow nothing of ours
 * by accident only if they choose lode's names), then lode's library, then the
 * system paths Lua was built with. */
static void set_paths(lua_State *L, const char *extra_dir) {
  luaL_Buffer b;
  lua_getglobal(L, "package");
  luaL_buffinit(L, &b);
  if (extra_dir && *extra_dir) {
    luaL_addstring(&b, extra_dir);
    luaL_addstring(&b, "/?.lua;");
    luaL_addstring(&b, extra_dir);
    luaL_addstring(&b, "/?/init.lua;");
  }
  const char *dirs[4];
  char rel[PATH_MAX];
  int n = lode_dirs(dirs, rel);
  luaL_Buffer t;
  for (int i = 0; i < n; i++) {
    if (access(dirs[i], R_OK) != 0) continue;
    luaL_addstring(&b, dirs[i]);
    luaL_addstring(&b, "/?.lua;");
    luaL_addstring(&b, dirs[i]);
    luaL_addstring(&b, "/?/init.lua;");
  }
  lua_getfield(L, -2, "path");
  luaL_addvalue(&b);
  luaL_pushresult(&b);
  lua_setfield(L, -2, "path");
  /* [package] */
  luaL_buffinit(L, &t);
  for (int i = 0; i < n; i++) {
    if (i) luaL_addstring(&t, ", ");
    luaL_addstring(&t, dirs[i]);
    if (access(dirs[i], R_OK) != 0) luaL_addstring(&t, " (missing)");
  }
  luaL_pushresult(&t);
  lua_getfield(L, -2, "searchers"); /* [package, tried, searchers] */
  lua_insert(L, -2);                /* [package, searchers, tried] */
  lua_pushcclosure(L, lode_searcher, 1);
  /* second, after preload: its line then leads the not-found message, which
   * lode cuts when long */
  for (lua_Integer i = (lua_Integer)lua_rawlen(L, -2); i >= 2; i--) {
    lua_rawgeti(L, -2, i);
    lua_rawseti(L, -3, i + 1);
  }
  lua_rawseti(L, -2, 2);
  lua_pop(L, 2);
}

static void *l_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  (void)osize;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  return realloc(ptr, nsize);
}

lua_State *lode_lua_new(const char *extra_dir) {
  lua_State *L = lua_newstate(l_alloc, NULL);
  if (!L) return NULL;
  luaL_openlibs(L);
  set_paths(L, extra_dir);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, open_lode);
  lua_setfield(L, -2, "lode");
  lua_pop(L, 1);
  return L;
}
