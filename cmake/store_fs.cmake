# store (documents, chunks, vectors, exact top-k search) and fs (walk, read,
# hash, loaders for text, Markdown, HTML, PDF). Pure C in lode_kernels; Lua
# faces in lode_lua_store.c and lode_lua_fs.c. Package prefixes are LODE_SF_*
# so they never clash with another area loading the same package.
pkg_check_modules(LODE_SF_SQLITE REQUIRED IMPORTED_TARGET sqlite3)
pkg_check_modules(LODE_SF_XXHASH REQUIRED IMPORTED_TARGET libxxhash)
pkg_check_modules(LODE_SF_XML REQUIRED IMPORTED_TARGET libxml-2.0)
pkg_check_modules(LODE_SF_POPPLER REQUIRED IMPORTED_TARGET poppler-glib)
pkg_check_modules(LODE_SF_GLIB REQUIRED IMPORTED_TARGET glib-2.0)
pkg_check_modules(LODE_SF_MD4C REQUIRED IMPORTED_TARGET md4c)
# gzip-compressed documents (x.md.gz) are inflated by fs_load.c
pkg_check_modules(LODE_SF_ZLIB REQUIRED IMPORTED_TARGET zlib)
# the store on PostgreSQL (src/kernels/store_pg.c)
pkg_check_modules(LODE_SF_PQ REQUIRED IMPORTED_TARGET libpq)

list(APPEND LODE_KERNEL_SOURCES
  src/kernels/store.c
  src/kernels/store_search.c
  src/kernels/store_share.c
  src/kernels/store_sqlite.c
  src/kernels/store_sqlite_read.c
  src/kernels/store_pg.c
  src/kernels/fs.c
  src/kernels/fs_load.c
  src/kernels/fs_html.c
  src/kernels/fs_pdf.c
)
# the search scan is the hot loop: -O3 lets GCC vectorise the dot product
# whatever the build type (the default RelWithDebInfo is -O2)
set_source_files_properties(src/kernels/store_search.c PROPERTIES COMPILE_OPTIONS -O3)
# poppler-glib is opened at the first PDF (dlopen, src/kernels/fs_pdf.c): only
# its headers and its soname are taken here; gobject is linked for the
# g_object_unref the loader calls.
pkg_check_modules(LODE_SF_GOBJECT REQUIRED IMPORTED_TARGET gobject-2.0)
lode_soname(LODE_POPPLER_GLIB_SONAME poppler-glib ${LODE_SF_POPPLER_LIBRARY_DIRS})
set_source_files_properties(src/kernels/fs_pdf.c PROPERTIES
  COMPILE_DEFINITIONS "LODE_POPPLER_GLIB_SONAME=\"${LODE_POPPLER_GLIB_SONAME}\""
  INCLUDE_DIRECTORIES "${LODE_SF_POPPLER_INCLUDE_DIRS}")
list(APPEND LODE_KERNEL_LIBS PkgConfig::LODE_SF_SQLITE PkgConfig::LODE_SF_XXHASH
  PkgConfig::LODE_SF_XML PkgConfig::LODE_SF_GOBJECT PkgConfig::LODE_SF_GLIB
  PkgConfig::LODE_SF_MD4C PkgConfig::LODE_SF_ZLIB PkgConfig::LODE_SF_PQ ${CMAKE_DL_LIBS})
list(APPEND LODE_LUA_AREA_SOURCES src/lua/lode_lua_store.c src/lua/lode_lua_fs.c)
list(APPEND LODE_C_TESTS test_store test_fs)

# search benchmark driver (bench/bench_store.sh runs it); target names resolve
# at generate time, so lode_kernels may be declared after this file
add_executable(bench_store bench/bench_store.c)
target_link_libraries(bench_store PRIVATE lode_kernels)
set_source_files_properties(bench/bench_store.c PROPERTIES COMPILE_OPTIONS -O3)

if(LODE_FUZZ)
  add_compile_options(-fsanitize=fuzzer-no-link)
  add_executable(fuzz_html tests/fuzz/fuzz_html.c)
  target_link_libraries(fuzz_html PRIVATE lode_kernels)
  target_link_options(fuzz_html PRIVATE -fsanitize=fuzzer)
endif()
