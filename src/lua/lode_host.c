/* lode_host.c - the pieces of lode_host.h that are not a Lua API area:
 * loading a pipeline file, running a chunk, serving queues. */
#include "lua/lode_host.h"

#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "lua/lode_lua_internal.h"

int lode_host_run_chunk(lua_State *L, const char *code, const char *chunkname, char *err,
                        size_t errlen) {
  if (luaL_loadbuffer(L, code, strlen(code), chunkname) != LUA_OK ||
      lode_lua_pcall(L, 0, 0) != LUA_OK) {
    snprintf(err, errlen, "%s", lode_lua_errstr(L, -1));
    lua_pop(L, 1);
    return -1;
  }
  return 0;
}

/* The number of the file's last line (where its `return` belongs). */
static int count_lines(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return 1;
  int c, lines = 1, last = '\n';
  while ((c = fgetc(f)) != EOF) {
    if (c == '\n') lines++;
    last = c;
  }
  fclose(f);
  return last == '\n' && lines > 1 ? lines - 1 : lines;
}

int lode_host_load_pipeline(lua_State *L, const char *path, char *err, size_t errlen) {
  int top = lua_gettop(L);
  lode_host_set_loading(L, 1);
  if (luaL_loadfile(L, path) != LUA_OK) {
    snprintf(err, errlen, "%s", lode_lua_errstr(L, -1));
    goto fail;
  }
  if (lode_lua_pcall(L, 0, 1) != LUA_OK) {
    snprintf(err, errlen, "error while loading %s:\n%s", path, lode_lua_errstr(L, -1));
    goto fail;
  }
  lode_host_set_loading(L, 0); /* from here on, declarations are refused */
  if (!lode_lua_is_workflow(L, -1)) {
    if (lua_isnil(L, -1))
      snprintf(err, errlen,
               "%s:%d: the pipeline returns nothing; end it with 'return <workflow>' (a value "
               "made by lode.workflow)",
               path, count_lines(path));
    else
      snprintf(err, errlen,
               "%s:%d: the pipeline returns a %s, not a workflow; end it with 'return "
               "<workflow>' (a value made by lode.workflow)",
               path, count_lines(path), luaL_typename(L, -1));
    goto fail;
  }
  lua_pop(L, 1); /* the name pushed by lode_lua_is_workflow */
  return 0;
fail:
  lua_settop(L, top);
  return -1;
}

int lode_host_sched_pass(lua_State *L) { return lode__sched_pass(L, 1); }

int lode_host_sched_release(lua_State *L) { return lode__sched_release(L); }

int lode_host_state_gave_up(char *msg, size_t n) { return lode__state_gave_up(msg, n); }

int lode_host_check_args(lua_State *L, int idx, int nargs, lode_buf *out) {
  int top = lua_gettop(L);
  idx = lua_absindex(L, idx);
  int code = 0;
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "loaded");
  lua_getfield(L, -1, "lode.args"); /* [package, loaded, args?] */
  if (lua_type(L, -1) != LUA_TTABLE) goto done; /* nothing declared */
  lua_getfield(L, -1, "_host_check");
  if (lua_type(L, -1) != LUA_TFUNCTION) goto done;
  lua_createtable(L, nargs, 0);
  for (int i = 0; i < nargs; i++) {
    lua_pushvalue(L, idx + i);
    lua_rawseti(L, -2, i + 1);
  }
  if (lode_lua_pcall(L, 1, 3) != LUA_OK) {
    /* a broken declaration (its check function raised): the pipeline's bug */
    lode_buf_printf(out, "the pipeline's argument check failed: %s", lode_lua_errstr(L, -1));
    code = 2;
    goto done;
  }
  /* [.., kind, a, b] */
  const char *kind = lua_tostring(L, -3);
  if (kind && !strcmp(kind, "help")) {
    lode_buf_puts(out, lua_tostring(L, -2) ? lua_tostring(L, -2) : "");
    code = 1;
  } else if (kind && !strcmp(kind, "usage")) {
    lode_buf_printf(out, "%s\nusage: %s", lua_tostring(L, -2) ? lua_tostring(L, -2) : "bad usage",
                    lua_tostring(L, -1) ? lua_tostring(L, -1) : "");
    code = 2;
  }
done:
  lua_settop(L, top);
  return code;
}
