/* lode_lua_text.c - `lode.text` (placeholder until the kernel area lands). */
#include "lua/lode_lua.h"

void lode_lua_open_text(lua_State *L) {
  lua_newtable(L);
  lua_setfield(L, -2, "text");
}
