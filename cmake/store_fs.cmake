# store (documents, chunks, vectors, search) and fs (walk, read, hash, loaders)
list(APPEND LODE_LUA_AREA_SOURCES src/lua/lode_lua_store.c src/lua/lode_lua_fs.c)
