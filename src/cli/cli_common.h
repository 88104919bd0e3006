#ifndef LODE_CLI_COMMON_H
#define LODE_CLI_COMMON_H
/* cli_common.h - helpers shared by the CLI commands. */
#include <limits.h>
#include <stdint.h>

#include <lua.h>

#include "cli/cli.h"
#include "lua/lode_host.h"

/* Loads a pipeline file (cli_pipeline.c): on success *L holds the state with the returned
 * workflow on top; abs_out (PATH_MAX) and version_out (17) are filled. On
 * failure prints the error (file and line) and returns LODE_EXIT_USAGE. */
int lode_pipeline_load(lode_cli *c, const char *file, lua_State **L, char *abs_out,
                       char *version_out);
/* Prints a workflow outcome left by lode_lua_run_top / lode_lua_resume (the
 * result or error on top of L's stack) and returns the exit code. */
int lode_cli_report_result(lua_State *L, int rc, int status, const char *id, int json);
/* Starts delivering this state's trace records to Opik in the background
 * when Opik is configured (no-op otherwise). */
void lode_cli_exporter_start(lua_State *L, const char *db_path);
/* Waits for the outbox up to OPIK_DEFAULT_FLUSH_TIMEOUT and says what is
 * left for the next run or `lode export`. */
void lode_cli_exporter_stop(void);
/* `lode run` joins a caller's trace: --trace-context (a JSON object of
 * headers: opik_trace_id, opik_parent_span_id, traceparent, baggage, as
 * Opik's get_distributed_trace_headers() returns) over the environment
 * (OPIK_TRACE_ID, OPIK_PARENT_SPAN_ID, TRACEPARENT, BAGGAGE). Anything
 * malformed is ignored with a warning. */
void lode_cli_join_trace(const lode_cli *c);
/* Points this state's executor at the running exporter (worker threads). */
void lode_cli_exporter_attach(lua_State *L);
/* Recovers the pipeline's unfinished workflows (cli_pipeline.c). If
 * want_name is set, an unfinished workflow with that name and input is
 * adopted: its id is copied to adopted (512 bytes), its outcome left on the
 * stack, *rc and *status set as lode_lua_resume sets them, and 1 returned.
 * 0 otherwise (nothing pushed). */
int lode_cli_recover(lua_State *L, const char *abs, const char *version, const char *want_name,
                     const uint8_t *want_input, size_t want_len, char *adopted, int *rc,
                     int *status);

/* Worker threads (cli_worker.c). */
typedef struct lode_workers lode_workers;
lode_workers *lode_workers_start(lode_cli *c, const char *pipeline, int n);
void lode_workers_stop(lode_workers *w);
int lode_default_workers(void);

/* "2026-11-22 04:06:32" in local time, from a static buffer. */
const char *lode_cli_time(int64_t ms);
#endif
