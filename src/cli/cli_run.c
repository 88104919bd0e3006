/* cli_run.c - `lode run`: load a pipeline, recover, run its main workflow. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_common.h"
#include "base/error.h"
#include "base/util.h"
#include "base/codec.h"
#include "state/sysdb.h"

/* lode run's options: they come before the pipeline file (cli.h). */
static const lode_cli_opt run_opts[] = {
    {"--id", "ID"},     {"--workers", "N"},    {"--timeout", "SECONDS"}, {"--db", "PATH"},
    {"--sync", "MODE"}, {"--json", NULL},      {NULL, NULL}};

/* `lode run --id ID` where ID is recorded with other arguments: as in DBOS
 * the id is an idempotency key, so the recorded run is returned (never run
 * again with the new arguments); a warning says so (docs/cli.md). */
static void warn_other_input(lode_exec *ex, const char *id, const char *name, const lode_buf *in) {
  lode_wf_row r;
  char err[512];
  if (lode_sysdb_wf_get(lode_exec_db(ex), id, &r, err, sizeof err) != LODE_OK) return;
  int same = r.input_len == in->len && (in->len == 0 || !memcmp(r.input, in->p, in->len));
  if (!same && name && r.name && !strcmp(r.name, name)) {
    lode_buf was, now;
    lode_buf_init(&was, 0);
    lode_buf_init(&now, 0);
    if (lode_codec_args_to_json(r.input, r.input_len, 200, &was, err, sizeof err))
      lode_buf_puts(&was, "(unreadable)");
    if (lode_codec_args_to_json(in->p, in->len, 200, &now, err, sizeof err))
      lode_buf_puts(&now, "(unreadable)");
    fprintf(stderr,
            "lode run: warning: workflow %s was recorded with other arguments: %s, not %s;\n"
            "  its recorded outcome (%s) is returned and nothing runs with the new ones\n"
            "  (--id is an idempotency key; use another id to run with these arguments)\n",
            id, lode_buf_cstr(&was), lode_buf_cstr(&now), lode_wf_status_name(r.status));
    lode_buf_free(&was);
    lode_buf_free(&now);
  }
  lode_wf_row_clear(&r);
}

int lode_cmd_run(lode_cli *c, int argc, char **argv) {
  int pr = lode_cli_parse(c, "run", run_opts, argc, argv, 1);
  if (pr) return pr > 0 ? LODE_EXIT_OK : LODE_EXIT_USAGE;
  const char *t = lode_cli_get(c, "--timeout");
  if (t) {
    char *end;
    c->timeout = strtod(t, &end);
    if (end == t || *end || !(c->timeout > 0) || c->timeout > LODE_MAX_SECONDS) {
      fprintf(stderr, "lode run: --timeout needs a number of seconds > 0, at most 1e9, not '%s'\n",
              t);
      return LODE_EXIT_USAGE;
    }
  }
  if (c->argc < 1) {
    fprintf(stderr, "lode run: no pipeline file\n");
    lode_cmd_usage("run");
    return LODE_EXIT_USAGE;
  }
  if (lode_cli_check_db(c)) return LODE_EXIT_USAGE;
  lua_State *L;
  char abs[PATH_MAX], version[17], err[1024];
  int rc = lode_pipeline_load(c, c->argv[0], &L, abs, version);
  if (rc != LODE_EXIT_OK) return rc;
  int wf_idx = lua_gettop(L);
  int nargs = c->argc - 1;
  if (!lua_checkstack(L, nargs + 8)) {
    fprintf(stderr, "lode: too many arguments\n");
    lua_close(L);
    return LODE_EXIT_USAGE;
  }
  for (int i = 0; i < nargs; i++) lua_pushstring(L, c->argv[i + 1]);
  int args_idx = wf_idx + 1;

  /* the pipeline's declared arguments, checked before anything is recorded */
  lode_buf msg;
  lode_buf_init(&msg, 0);
  int chk = lode_host_check_args(L, args_idx, nargs, &msg);
  if (chk) {
    if (chk == 1) fputs(lode_buf_cstr(&msg), stdout);
    else fprintf(stderr, "lode run: %s: %s\n(see 'lode run %s --help')\n", c->argv[0],
                 lode_buf_cstr(&msg), c->argv[0]);
    /* one of lode's options after the pipeline file: say where it goes */
    for (int i = 0; chk == 2 && run_opts[i].name; i++) {
      char unknown[64];
      snprintf(unknown, sizeof unknown, "unknown option '%s'", run_opts[i].name);
      if (strstr(lode_buf_cstr(&msg), unknown))
        fprintf(stderr, "%s is an option of lode run: put it before the pipeline file "
                        "(lode run %s%s%s %s ...)\n",
                run_opts[i].name, run_opts[i].name, run_opts[i].metavar ? " " : "",
                run_opts[i].metavar ? run_opts[i].metavar : "", c->argv[0]);
    }
    lode_buf_free(&msg);
    lua_close(L);
    return chk == 1 ? LODE_EXIT_OK : LODE_EXIT_USAGE;
  }
  lode_buf_free(&msg);
  /* the state database is opened (made) only now */
  lode_exec *ex = lode_host_exec(L, err, sizeof err);
  if (!ex) {
    fprintf(stderr, "lode: %s\n", err);
    lua_close(L);
    return LODE_EXIT_FAILED;
  }
  lode_cli_exporter_start(L, c->db);

  /* this thread runs the main workflow (and queued work while it waits);
   * --workers N adds N-1 threads that serve the pipeline's queues */
  int n = c->workers > 0 ? c->workers : lode_default_workers();
  lode_workers *w = lode_workers_start(c, abs, n - 1);

  /* recovery first: this pipeline's unfinished workflows */
  lode_buf in;
  lode_buf_init(&in, 0);
  lua_getfield(L, wf_idx, "name");
  const char *main_name = lua_tostring(L, -1);
  int encoded = lode_lua_encode_args(L, args_idx, nargs, &in, err, sizeof err) == 0;
  if (c->id && encoded) warn_other_input(ex, c->id, main_name, &in);
  int can_adopt = !c->id && encoded;
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
