/* lode_lua_store.c - `lode.store` (placeholder until the kernel area lands). */
#include "lua/lode_lua.h"

void lode_lua_open_store(lua_State *L) {
  lua_newtable(L);
  lua_setfield(L, -2, "store");
}
