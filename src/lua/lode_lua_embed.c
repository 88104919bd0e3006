/* lode_lua_embed.c - `lode.embed` (placeholder until the kernel area lands). */
#include "lua/lode_lua.h"

void lode_lua_open_embed(lua_State *L) {
  lua_newtable(L);
  lua_setfield(L, -2, "embed");
}
