# text kernels: normalize, split, split_markdown
list(APPEND LODE_LUA_AREA_SOURCES src/lua/lode_lua_text.c)
