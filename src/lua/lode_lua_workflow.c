#include "lua/lode_lua.h"
void lode_lua_open_workflow(lua_State *L) { (void)L; }
