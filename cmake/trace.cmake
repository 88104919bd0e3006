# tracing: Opik records, local trace store, exporter, HTTP, `lode trace`/`export`
list(APPEND LODE_TRACE_SOURCES
  src/trace/trace.c
  src/trace/render.c
  src/trace/trace_tree.c
  src/trace/trace_view.c
  src/trace/trace_export.c
  src/trace/opik_config.c
)
# utf8proc: invalid UTF-8 from Lua strings is repaired before it reaches Opik
pkg_check_modules(LODE_TRACE_UTF8PROC REQUIRED IMPORTED_TARGET libutf8proc)
list(APPEND LODE_TRACE_LIBS PkgConfig::LODE_TRACE_UTF8PROC)
list(APPEND LODE_CLI_SOURCES src/cli/cli_trace.c)
list(APPEND LODE_C_TESTS test_trace test_trace_view test_otlp)

if(LODE_TESTING)
  # Test and bench helper: fills a database through the C API and optionally
  # runs the background exporter. Built next to `lode` so integration tests
  # find it beside $LODE_BIN.
  add_executable(lode_trace_fill tests/c/trace_fill.c)
  target_link_libraries(lode_trace_fill PRIVATE lode_core)
  set_target_properties(lode_trace_fill PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR})
endif()

# `lode trace --html`: the page (HTML, CSS, JS) is src/trace/trace_page.html,
# embedded at build time as a C array (no hand-escaped strings in C)
add_custom_command(
  OUTPUT ${CMAKE_BINARY_DIR}/trace_page.c
  COMMAND ${CMAKE_COMMAND} -DIN=${CMAKE_SOURCE_DIR}/src/trace/trace_page.html
          -DOUT=${CMAKE_BINARY_DIR}/trace_page.c -DNAME=lode__trace_page
          -P ${CMAKE_SOURCE_DIR}/cmake/embed_file.cmake
  DEPENDS ${CMAKE_SOURCE_DIR}/src/trace/trace_page.html ${CMAKE_SOURCE_DIR}/cmake/embed_file.cmake
  COMMENT "Embedding the trace page")
list(APPEND LODE_TRACE_SOURCES src/trace/trace_html.c ${CMAKE_BINARY_DIR}/trace_page.c)

# OTLP/HTTP export (src/trace/otlp.c): C for the OpenTelemetry protocol
# definitions (third_party/otel-proto, Apache-2.0), generated at build time
# with protoc-c (Debian protobuf-c-compiler, libprotobuf-c-dev)
pkg_check_modules(LODE_PROTOBUF_C REQUIRED IMPORTED_TARGET libprotobuf-c)
find_program(LODE_PROTOC_C protoc-c REQUIRED)
set(LODE_OTEL_PROTO_DIR ${CMAKE_SOURCE_DIR}/third_party/otel-proto)
set(LODE_OTEL_PROTOS
  opentelemetry/proto/common/v1/common
  opentelemetry/proto/resource/v1/resource
  opentelemetry/proto/trace/v1/trace
  opentelemetry/proto/collector/trace/v1/trace_service)
set(LODE_OTEL_GEN "")
set(LODE_OTEL_PROTO_FILES "")
foreach(p ${LODE_OTEL_PROTOS})
  list(APPEND LODE_OTEL_GEN ${CMAKE_BINARY_DIR}/otlp/${p}.pb-c.c)
  list(APPEND LODE_OTEL_PROTO_FILES ${LODE_OTEL_PROTO_DIR}/${p}.proto)
endforeach()
add_custom_command(
  OUTPUT ${LODE_OTEL_GEN}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/otlp
  COMMAND ${LODE_PROTOC_C} -I${LODE_OTEL_PROTO_DIR} --c_out=${CMAKE_BINARY_DIR}/otlp
          ${LODE_OTEL_PROTO_FILES}
  DEPENDS ${LODE_OTEL_PROTO_FILES}
  COMMENT "Generating C for the OTLP protocol definitions (protoc-c)")
# generated code: not ours to hold to -Werror
set_source_files_properties(${LODE_OTEL_GEN} PROPERTIES COMPILE_OPTIONS "-w")
list(APPEND LODE_TRACE_SOURCES src/trace/otlp.c src/trace/otlp_config.c src/trace/trace_ctx.c
  ${LODE_OTEL_GEN})
list(APPEND LODE_TRACE_LIBS PkgConfig::LODE_PROTOBUF_C)
set_source_files_properties(src/trace/otlp.c PROPERTIES
  COMPILE_DEFINITIONS "LODE_SCOPE_VERSION=\"${PROJECT_VERSION}\"")
# lode.http (src/lua/lode_lua_http.c): requests from steps, each a span
list(APPEND LODE_LUA_AREA_SOURCES src/lua/lode_lua_http.c)
