#ifndef LODE_LUA_H
#define LODE_LUA_H
/* lode_lua.h - the Lua face of lode.
 *
 * One lua_State per OS thread, never shared. Each API area has one
 * lode_lua_open_<area>(L) that receives the `lode` module table on top of the
 * stack and adds its fields to it (stack unchanged: [lode] -> [lode]).
 * lode_lua_open_all() lists them all, so the whole Lua surface reads in one
 * place. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "base/buf.h"

typedef struct lode_host lode_host; /* per-state context, see lode_lua_workflow.h */

/* A new state with the standard libraries, `require("lode")` preloaded and
 * package.path covering lode's Lua library, `extra_dir` (the pipeline's
 * folder; may be NULL) and the system Lua paths. NULL if out of memory. */
lua_State *lode_lua_new(const char *extra_dir);

/* Builds the `lode` module table and leaves it on the stack. */
void lode_lua_open_all(lua_State *L);

void lode_lua_open_workflow(lua_State *L);
void lode_lua_open_codec(lua_State *L);
void lode_lua_open_trace(lua_State *L);
void lode_lua_open_sched(lua_State *L);
void lode_lua_open_matrix(lua_State *L);
void lode_lua_open_text(lua_State *L);
void lode_lua_open_embed(lua_State *L);
void lode_lua_open_store(lua_State *L);
void lode_lua_open_fs(lua_State *L);

/* lua_pcall with a message handler that appends a traceback and copes with
 * non-string error values. On error the message is left on the stack. */
int lode_lua_pcall(lua_State *L, int nargs, int nresults);
/* The message handler itself (usable with lua_pcall / coroutines). */
int lode_lua_traceback(lua_State *L);
/* tostring() of any error value, with __tostring honoured. Pushes nothing. */
const char *lode_lua_errstr(lua_State *L, int idx);

#endif
