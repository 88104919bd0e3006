/* lode_lua_fs.c - `lode.fs` (placeholder until the kernel area lands). */
#include "lua/lode_lua.h"

void lode_lua_open_fs(lua_State *L) {
  lua_newtable(L);
  lua_setfield(L, -2, "fs");
}
