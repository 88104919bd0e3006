#ifndef LODE_HOST_H
#define LODE_HOST_H
/* lode_host.h - what a host program (the CLI) needs from lode's Lua face:
 * create a state, load a pipeline, run or resume a workflow, serve queues,
 * report values. The one header of src/lua that src/cli includes.
 *
 * Ownership: a host creates one lua_State per OS thread with lode_lua_new and
 * closes it with lua_close, which closes its executor (nothing is written
 * after). Results and errors are left on the state's stack as documented per
 * function; strings returned point into the state and live while the value
 * stays on the stack. */
#include <lua.h>
#include <stddef.h>

#include "base/buf.h"
#include "core/executor.h"

/* ---- states ---------------------------------------------------------------- */

/* A new state with the standard libraries, `require("lode")` preloaded and
 * package.path covering lode's Lua library, `extra_dir` (the pipeline's
 * folder; may be NULL) and the system Lua paths. NULL if out of memory. */
lua_State *lode_lua_new(const char *extra_dir);
/* lua_pcall with a message handler that appends a traceback and copes with
 * non-string error values. On error the message is left on the stack. */
int lode_lua_pcall(lua_State *L, int nargs, int nresults);
/* The error value at idx as a string: a string as is, else rendered as
 * lode_lua_push_errmsg does, replacing the value at idx (so the string lives
 * while it stays there). Pushes nothing. */
const char *lode_lua_errstr(lua_State *L, int idx);
/* Pushes the error value at idx rendered as a string: strings and numbers as
 * is, else its __tostring (called protected), else a short Lua-like form of a
 * table ({code = 42}), else its type; when rendering fails, a message saying
 * so and why. Never raises (docs/lua-api.md, "Errors"). */
void lode_lua_push_errmsg(lua_State *L, int idx);
/* Runs a chunk of Lua code (named chunkname) with no arguments and no
 * results. 0, or -1 with the error (traceback included) in err. */
int lode_host_run_chunk(lua_State *L, const char *code, const char *chunkname, char *err,
                        size_t errlen);

/* ---- the host context ------------------------------------------------------- */

typedef struct lode_host_opts {
  const char *db_path;
  int sync_full;
  const char *pipeline; /* absolute path, or NULL */
  const char *version;  /* pipeline version, or NULL */
} lode_host_opts;

/* Sets how the executor will be opened (lazily, at the first workflow call,
 * or now with lode_host_exec). Closes an executor already open. */
void lode_host_configure(lua_State *L, const lode_host_opts *o);
/* The executor, opened on first use; NULL with err on failure. */
lode_exec *lode_host_exec(lua_State *L, char *err, size_t errlen);
/* Declarations (lode.workflow, lode.step, lode.track, lode.queue) are
 * allowed while on (the default for a new state), outside running workflows
 * and steps; lode_host_load_pipeline turns it off once the file is loaded. */
void lode_host_set_loading(lua_State *L, int on);
/* The next top-level workflow started gets this timeout (lode run --timeout). */
void lode_host_set_timeout(lua_State *L, double seconds);
/* Id of the last top-level workflow started in this state, or NULL. */
const char *lode_host_last_id(lua_State *L);

/* ---- pipelines and workflows ------------------------------------------------ */

/* Loads and runs the pipeline file `path` (declarations allowed meanwhile,
 * not after). Returns 0 with its main workflow pushed, or -1 with err
 * naming the file (and line) and what to do. */
int lode_host_load_pipeline(lua_State *L, const char *path, char *err, size_t errlen);
/* After lode_host_load_pipeline: checks the nargs values at idx (the
 * command line after the pipeline file) against the arguments the pipeline
 * declared with lode.args.declare, before anything is recorded. Returns 0
 * (they fit, or nothing was declared), 1 with the help text appended to out
 * (--help), or 2 with the usage error and the usage line appended to out. */
int lode_host_check_args(lua_State *L, int idx, int nargs, lode_buf *out);
/* 1 if the value at idx is a workflow object; its name is pushed if so. */
int lode_lua_is_workflow(lua_State *L, int idx);
/* Pushes the workflow declared with this name, or nil. */
void lode_lua_push_workflow(lua_State *L, const char *name);
/* Runs the workflow object at wf_idx as a top-level workflow with the nargs
 * values on top of the stack (popped), under workflow id `id` (NULL: new).
 * Protected: returns LODE_OK and pushes its result, or another status
 * (LODE_ECONFLICT, ..., or LODE_EUSAGE meaning "the workflow failed") and
 * pushes the error message; *status receives the workflow's final status
 * (-1 if it never started). */
int lode_lua_run_top(lua_State *L, int wf_idx, const char *id, int nargs, int *status);
/* Resumes the recorded workflow `id` with its recorded input (recovery,
 * `lode workflow resume`). Same results as lode_lua_run_top. */
int lode_lua_resume(lua_State *L, const char *id, int *status);

/* ---- serving queues ----------------------------------------------------------- */

/* One scheduling pass of this thread: runs the tasks that are ready and,
 * when none was, claims queued work. Returns how many made progress. */
int lode_host_sched_pass(lua_State *L);
/* Puts the queued workflows this thread holds back on their queues; returns
 * how many. */
int lode_host_sched_release(lua_State *L);
/* 1, with the message, when the state database has not been writable (a
 * full disk, I/O errors) for longer than lode waits (LODE_STATE_RETRY_S):
 * a worker stops. */
int lode_host_state_gave_up(char *msg, size_t n);

/* ---- values ------------------------------------------------------------------ */

/* Encodes the value at idx with the checkpoint codec (version byte
 * included), appended to out. 0, or -1 with err naming the offending part. */
int lode_lua_encode(lua_State *L, int idx, lode_buf *out, char *err, size_t errlen);
/* Encodes n values starting at idx as one array table {v1..vn} with n kept
 * in field "n" (so trailing nils survive). */
int lode_lua_encode_args(lua_State *L, int idx, int n, lode_buf *out, char *err,
                         size_t errlen);

#endif
