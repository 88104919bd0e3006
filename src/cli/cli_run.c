/* cli_run.c - `lode run`: load a pipeline, recover, run its main workflow. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_common.h"
#include "base/error.h"

int lode_cmd_run(lode_cli *c) {
  if (c->argc < 1) {
    fprintf(stderr, "usage: lode run PIPELINE.lua [ARG...]\n");
    return LODE_EXIT_USAGE;
  }
  lua_State *L;
  char abs[PATH_MAX], version[17], err[1024];
  lode_cli_join_trace(c); /* before any thread starts */
  int rc = lode_pipeline_load(c, c->argv[0], &L, abs, version);
  if (rc != LODE_EXIT_OK) return rc;
  int wf_idx = lua_gettop(L);
  lode_exec *ex = lode_host_exec(L, err, sizeof err);
  if (!ex) {
    fprintf(stderr, "lode: %s\n", err);
    lua_close(L);
    return LODE_EXIT_FAILED;
  }
  int nargs = c->argc - 1;
  if (!lua_checkstack(L, nargs + 8)) {
    fprintf(stderr, "lode: too many arguments\n");
    lua_close(L);
    return LODE_EXIT_USAGE;
  }
  lode_cli_exporter_start(L, c->db);
  for (int i = 0; i < nargs; i++) lua_pushstring(L, c->argv[i + 1]);
  int args_idx = wf_idx + 1;

  /* this thread runs the main workflow (and queued work while it waits);
   * --workers N adds N-1 threads that serve the pipeline's queues */
  int n = c->workers > 0 ? c->workers : lode_default_workers();
  lode_workers *w = lode_workers_start(c, abs, n - 1);

  /* recovery first: this pipeline's unfinished workflows */
  lode_buf in;
  lode_buf_init(&in, 0);
  lua_getfield(L, wf_idx, "name");
  const char *main_name = lua_tostring(L, -1);
  int can_adopt = !c->id && lode_lua_encode_args(L, args_idx, nargs, &in, err, sizeof err) == 0;
  char adopted[512] = "";
  int status;
  int got = lode_cli_recover(L, abs, version, can_adopt ? main_name : NULL, in.p, in.len,
                             adopted, &rc, &status);
  lode_buf_free(&in);

  const char *id;
  if (got) {
    id = adopted;
  } else {
    lua_settop(L, args_idx + nargs - 1);
    if (c->timeout > 0) lode_host_set_timeout(L, c->timeout);
    rc = lode_lua_run_top(L, wf_idx, c->id, nargs, &status);
    id = c->id;
  }
  lode_workers_stop(w);
  lode_host_sched_release(L);
  int exit_code = lode_cli_report_result(L, rc, status, id, c->json);
  lua_close(L); /* closes the executor: nothing more is written */
  lode_cli_exporter_stop();
  return exit_code;
}
