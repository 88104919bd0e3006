# tracing: Opik records, local trace store, exporter, HTTP, `lode trace`/`export`
list(APPEND LODE_CLI_SOURCES src/cli_trace.c)
