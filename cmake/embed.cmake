# matrix and embedders: hash, model2vec, openai
list(APPEND LODE_KERNEL_SOURCES src/kernels/matrix.c)
list(APPEND LODE_LUA_AREA_SOURCES src/lua/lode_lua_matrix.c src/lua/lode_lua_embed.c)
