# matrix and embedders: hash, model2vec, openai
pkg_check_modules(UTF8PROC REQUIRED IMPORTED_TARGET libutf8proc)
list(APPEND LODE_KERNEL_SOURCES src/kernels/matrix.c src/kernels/embed.c src/kernels/embed_hash.c
  src/kernels/embed_tok.c src/kernels/embed_tok_load.c src/kernels/embed_m2v.c src/kernels/embed_openai.c)
# the openai embedder's HTTP goes through src/base/http.c (libcurl opened there)
list(APPEND LODE_KERNEL_LIBS PkgConfig::UTF8PROC PkgConfig::XXHASH PkgConfig::CJSON)
list(APPEND LODE_LUA_AREA_SOURCES src/lua/lode_lua_matrix.c src/lua/lode_lua_embed.c)
list(APPEND LODE_C_TESTS test_embed test_embed_hash)
# the hash embedder's per-text loops (exact norm, conversion) want -O3 to be
# vectorised whatever the build type (RelWithDebInfo is -O2)
set_source_files_properties(src/kernels/embed_hash.c PROPERTIES COMPILE_OPTIONS -O3)
# throughput figures for bench/bench_embed.sh (not a test)
add_executable(bench_embed bench/bench_embed.c)
target_link_libraries(bench_embed PRIVATE lode_kernels)
