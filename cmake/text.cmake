# text kernels: normalize (utf8proc), split (LangChain's recursive splitter),
# split_markdown (md4c). Pure C in lode_kernels; Lua face in lode_lua_text.c.
pkg_check_modules(UTF8PROC REQUIRED IMPORTED_TARGET libutf8proc)
pkg_check_modules(MD4C REQUIRED IMPORTED_TARGET md4c)

list(APPEND LODE_KERNEL_SOURCES
  src/kernels/text_split.c
  src/kernels/text_normalize.c
  src/kernels/text_markdown.c
)
list(APPEND LODE_KERNEL_LIBS PkgConfig::UTF8PROC PkgConfig::MD4C)
list(APPEND LODE_LUA_AREA_SOURCES src/lua/lode_lua_text.c)
list(APPEND LODE_C_TESTS test_text)

# Targets that need lode_kernels are declared once the main file has made it.
function(lode_text_late_targets)
  # split throughput benchmark (bench/bench_text.sh runs it)
  add_executable(bench_text_split bench/bench_text_split.c)
  target_link_libraries(bench_text_split PRIVATE lode_kernels)

  if(LODE_FUZZ)
    foreach(f fuzz_normalize fuzz_split fuzz_split_markdown)
      add_executable(${f} tests/fuzz/${f}.c)
      target_link_libraries(${f} PRIVATE lode_kernels)
      target_link_options(${f} PRIVATE -fsanitize=fuzzer)
    endforeach()
  endif()

  if(LODE_TESTING AND NOT LODE_FUZZ)
    # a few seconds of every fuzz target, when clang is there to build them
    find_program(LODE_CLANG clang)
    if(LODE_CLANG)
      add_test(NAME fuzz.smoke COMMAND ${CMAKE_SOURCE_DIR}/tests/fuzz/run.sh)
      set_tests_properties(fuzz.smoke PROPERTIES TIMEOUT 240
        ENVIRONMENT "FUZZ_TIME=4;FUZZ_BUILD=${CMAKE_BINARY_DIR}/fuzz-smoke")
    endif()
  endif()
endfunction()
cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL lode_text_late_targets)

if(LODE_FUZZ)
  # coverage for libFuzzer in every library the targets link
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
