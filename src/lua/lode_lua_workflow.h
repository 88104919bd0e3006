#ifndef LODE_LUA_WORKFLOW_H
#define LODE_LUA_WORKFLOW_H
/* lode_lua_workflow.h - `lode.workflow`, `lode.step`, `lode.track`,
 * `lode.now`, `lode.uuid`, and the host context the CLI drives.
 *
 * The host context (one per lua_State) holds the executor and the workflow
 * whose body is running. It lives in a userdata anchored in the registry and
 * closes the executor when the state closes. */
#include "core/executor.h"
#include "lua/lode_lua.h"

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
/* While loading a pipeline file, lode.workflow/lode.step may be declared. */
void lode_host_set_loading(lua_State *L, int on);

/* The next top-level workflow started gets this timeout (lode run --timeout). */
void lode_host_set_timeout(lua_State *L, double seconds);

/* Id of the last top-level workflow started in this state, or NULL. */
const char *lode_host_last_id(lua_State *L);

/* 1 if the value at idx is a workflow object; its name is pushed if so. */
int lode_lua_is_workflow(lua_State *L, int idx);
/* Pushes the workflow declared with this name, or nil. */
void lode_lua_push_workflow(lua_State *L, const char *name);

/* Runs the workflow object at wf_idx as a top-level workflow with the nargs
 * values on top of the stack (popped), under workflow id `id` (NULL: new).
 * Protected: returns LODE_OK and pushes its result, or another status
 * (LODE_ECONFLICT, ..., or LODE_EUSAGE meaning "the workflow failed") and
 * pushes the error message; *status receives the workflow's final status. */
int lode_lua_run_top(lua_State *L, int wf_idx, const char *id, int nargs, int *status);
/* Resumes the recorded workflow `id` with its recorded input (recovery,
 * `lode workflow resume`). Same results as lode_lua_run_top. */
int lode_lua_resume(lua_State *L, const char *id, int *status);

#endif
