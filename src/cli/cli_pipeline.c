/* cli_pipeline.c - loading a pipeline file for a command, and recovering
 * its unfinished workflows (`lode run`, `lode worker`, resume and fork). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "cli/cli.h"
#include "cli/cli_common.h"
#include "base/error.h"
#include "base/util.h"
#include "state/sysdb.h"

typedef struct recover_ctx {
  lua_State *L;
  const char *version;
  const char *pipeline;
  const char *want_name; /* the run being asked for, to adopt a match */
  const uint8_t *want_input;
  size_t want_input_len;
  char adopted[512];
  int adopted_rc, adopted_status;
  int others;
} recover_ctx;

static int recover_one(void *ud, const lode_wf_row *r) {
  recover_ctx *rc = ud;
  lua_State *L = rc->L;
  char err[512];
  lode_exec *ex = lode_host_exec(L, err, sizeof err);
  if (r->executor_id && strcmp(r->executor_id, lode_exec_id(ex)) != 0 &&
      lode_sysdb_executor_alive(lode_exec_db(ex), r->executor_id))
    return 0; /* a live process is running it */
  if (!r->version || strcmp(r->version, rc->version) != 0) {
    if (rc->others++ == 0)
      fprintf(stderr, "lode: workflows recorded by another version of %s were left alone:\n",
              rc->pipeline);
    fprintf(stderr,
            "  %s (%s), started %s\n"
            "      resume it:  lode workflow resume %s\n"
            "      cancel it:  lode workflow cancel %s\n",
            r->id, r->name, lode_cli_time(r->created_at), r->id, r->id);
    return 0;
  }
  int match = rc->want_name && !rc->adopted[0] && !strcmp(r->name, rc->want_name) &&
              r->input_len == rc->want_input_len &&
              (r->input_len == 0 || !memcmp(r->input, rc->want_input, r->input_len));
  fprintf(stderr, "lode: recovering workflow %s (%s)\n", r->id, r->name);
  int status;
  int res = lode_lua_resume(L, r->id, &status);
  if (match) {
    /* the interrupted run of this very command: its outcome is ours */
    lode_strlcpy(rc->adopted, r->id, sizeof rc->adopted);
    rc->adopted_rc = res;
    rc->adopted_status = status;
    return 1; /* leave the result on the stack */
  }
  if (res == LODE_OK)
    fprintf(stderr, "lode: recovered workflow %s: %s\n", r->id, lode_wf_status_name(status));
  else
    fprintf(stderr, "lode: recovered workflow %s: %s\n%s\n", r->id,
            status >= 0 ? lode_wf_status_name(status) : "not run", lode_lua_errstr(L, -1));
  lua_pop(L, 1);
  return 0;
}

static int read_version(const char *path, char out[17], char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errlen, "%s: cannot open pipeline file", path);
    return -1;
  }
  XXH3_state_t *st = XXH3_createState();
  XXH3_64bits_reset(st);
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) XXH3_64bits_update(st, buf, n);
  fclose(f);
  snprintf(out, 17, "%016llx", (unsigned long long)XXH3_64bits_digest(st));
  XXH3_freeState(st);
  return 0;
}

int lode_pipeline_load(lode_cli *c, const char *file, lua_State **out, char *abs_out,
                       char *version_out) {
  *out = NULL;
  char err[1024];
  if (!realpath(file, abs_out)) {
    fprintf(stderr, "lode: %s: pipeline file not found\n", file);
    return LODE_EXIT_USAGE;
  }
  if (read_version(abs_out, version_out, err, sizeof err)) {
    fprintf(stderr, "lode: %s\n", err);
    return LODE_EXIT_USAGE;
  }
  char dir[PATH_MAX];
  lode_strlcpy(dir, abs_out, sizeof dir);
  char *slash = strrchr(dir, '/');
  if (slash) *slash = 0;
  lua_State *L = lode_lua_new(dir);
  if (!L) {
    fprintf(stderr, "lode: out of memory\n");
    return LODE_EXIT_FAILED;
  }
  lode_host_opts o = {c->db, c->sync && !strcmp(c->sync, "full"), abs_out, version_out};
  lode_host_configure(L, &o);
  if (lode_host_load_pipeline(L, abs_out, err, sizeof err) != 0) {
    fprintf(stderr, "lode: %s\n", err);
    lua_close(L);
    return LODE_EXIT_USAGE;
  }
  *out = L;
  return LODE_EXIT_OK;
}

int lode_cli_recover(lua_State *L, const char *abs, const char *version, const char *want_name,
                     const uint8_t *want_input, size_t want_len, char *adopted, int *rc,
                     int *status) {
  char err[1024];
  lode_exec *ex = lode_host_exec(L, err, sizeof err);
  if (!ex) return 0;
  recover_ctx rctx;
  memset(&rctx, 0, sizeof rctx);
  rctx.L = L;
  rctx.version = version;
  rctx.pipeline = abs;
  rctx.want_name = want_name;
  rctx.want_input = want_input;
  rctx.want_input_len = want_len;
  /* queued work of dead processes goes back to its queue first */
  lode_sysdb_requeue_dead(lode_exec_db(ex), err, sizeof err);
  lode_wf_filter f = {LODE_WF_PENDING, NULL, abs, 1, 0, 0, 0, 1};
  lode_sysdb_wf_list(lode_exec_db(ex), &f, recover_one, &rctx, err, sizeof err);
  if (!rctx.adopted[0]) return 0;
  lode_strlcpy(adopted, rctx.adopted, 512);
  if (rc) *rc = rctx.adopted_rc;
  if (status) *status = rctx.adopted_status;
  return 1;
}

