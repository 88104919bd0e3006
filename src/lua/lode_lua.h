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
#include "lua/lode_host.h" /* lode_lua_new, lode_lua_pcall, lode_lua_errstr */

typedef struct lode_host lode_host; /* per-state context, see lode_lua_workflow.h */

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
void lode_lua_open_progress(lua_State *L);

/* The message handler itself (usable with lua_pcall / coroutines). */
int lode_lua_traceback(lua_State *L);
/* Raises a lode.fail error with msg: a failure that is not a bug, which the
 * message handler passes on without a traceback (lode.fail in Lua). */
int lode__raise_fail(lua_State *L, const char *msg);
/* 1 if the value at idx is a lode.fail error. */
int lode__is_fail(lua_State *L, int idx);
/* 1 if an error message already carries a Lua traceback. */
int lode__has_traceback(const char *msg);

#endif
