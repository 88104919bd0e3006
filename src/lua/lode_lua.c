/* lode_lua.c - state creation, protected calls and the list of API areas. */
#include "lua/lode_lua.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lode_config.h"

int lode_lua_traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      msg = lua_tostring(L, -1);
    else
      msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
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
  const char *s = lua_tostring(L, idx);
  return s ? s : "(error object is not a string)";
}

static int open_lode(lua_State *L) {
  lode_lua_open_all(L);
  return 1;
}

void lode_lua_open_all(lua_State *L) {
  lua_newtable(L); /* [lode] */
  lua_pushliteral(L, LODE_VERSION);
  lua_setfield(L, -2, "version");
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
  const char *env = getenv("LODE_LUA_PATH");
  const char *dirs[3] = {env, LODE_LUA_DIR_BUILD, LODE_LUA_DIR_INSTALL};
  for (int i = 0; i < 3; i++) {
    if (!dirs[i] || access(dirs[i], R_OK) != 0) continue;
    luaL_addstring(&b, dirs[i]);
    luaL_addstring(&b, "/?.lua;");
    luaL_addstring(&b, dirs[i]);
    luaL_addstring(&b, "/?/init.lua;");
  }
  lua_getfield(L, -2, "path");
  luaL_addvalue(&b);
  luaL_pushresult(&b);
  lua_setfield(L, -2, "path");
  lua_pop(L, 1);
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
