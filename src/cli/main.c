/* main.c - the lode command line: parses, dispatches, reports. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli/cli.h"
#include "state/sysdb.h"
#include "kernels/store.h"
#include "lode_config.h"

/* Splits common options out of argv; positional args stay in order. Options
 * after the pipeline's own arguments are still lode's only if they are known;
 * everything after "--" is positional. `own_timeout`: the command parses
 * --timeout itself (lode export: seconds to deliver, 0 allowed), so it stays
 * in argv. */
static int parse(int argc, char **argv, lode_cli *c, int own_timeout) {
  c->argv = calloc((size_t)argc + 1, sizeof *c->argv);
  if (!c->argv) return -1;
  c->argc = 0;
  int rest = 0;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    const char **slot = NULL;
    if (!rest && !strcmp(a, "--")) { rest = 1; continue; }
    if (!rest && !strcmp(a, "--json")) { c->json = 1; continue; }
    if (!rest && !strcmp(a, "--db")) slot = &c->db;
    else if (!rest && !strcmp(a, "--id")) slot = &c->id;
    else if (!rest && !strcmp(a, "--sync")) slot = &c->sync;
    else if (!rest && !strcmp(a, "--trace-context")) slot = &c->trace_context;
    else if (!rest && !own_timeout && !strcmp(a, "--timeout")) {
      if (i + 1 >= argc || !(atof(argv[i + 1]) > 0) || atof(argv[i + 1]) > LODE_MAX_SECONDS) {
        fprintf(stderr, "lode: --timeout needs a number of seconds > 0, at most 1e9\n");
        return -1;
      }
      c->timeout = atof(argv[++i]);
      continue;
    } else if (!rest && !strcmp(a, "--workers")) {
      if (i + 1 >= argc) { fprintf(stderr, "lode: --workers needs a number\n"); return -1; }
      c->workers = atoi(argv[++i]);
      if (c->workers < 1) { fprintf(stderr, "lode: --workers needs a number >= 1\n"); return -1; }
      continue;
    }
    if (slot) {
      if (i + 1 >= argc) { fprintf(stderr, "lode: %s needs a value\n", a); return -1; }
      *slot = argv[++i];
      continue;
    }
    c->argv[c->argc++] = argv[i];
  }
  if (c->sync && strcmp(c->sync, "normal") && strcmp(c->sync, "full")) {
    fprintf(stderr, "lode: --sync takes 'normal' or 'full', not '%s'\n", c->sync);
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    lode_cmd_help(NULL);
    return LODE_EXIT_USAGE;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
    printf("lode %s\n", LODE_VERSION);
    return 0;
  }
  if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h"))
    return lode_cmd_help(argc > 2 ? argv[2] : NULL) ? LODE_EXIT_USAGE : 0;

  lode_cli c;
  memset(&c, 0, sizeof c);
  int rc;
  if (!strcmp(cmd, "test")) {
    /* busted parses its own options: pass everything through */
    c.argc = argc - 2;
    c.argv = argv + 2;
    return lode_cmd_test(&c);
  }
  if (parse(argc - 2, argv + 2, &c, !strcmp(cmd, "export"))) return LODE_EXIT_USAGE;
  if (!c.db) c.db = lode_sysdb_default_path();
  if (!strcmp(cmd, "run")) rc = lode_cmd_run(&c);
  else if (!strcmp(cmd, "workflow")) rc = lode_cmd_workflow(&c);
  else if (!strcmp(cmd, "worker")) rc = lode_cmd_worker(&c);
  else if (!strcmp(cmd, "trace")) rc = lode_cmd_trace(&c);
  else if (!strcmp(cmd, "export")) rc = lode_cmd_export(&c);
  else {
    fprintf(stderr, "lode: unknown command '%s'; see 'lode help'\n", cmd);
    rc = LODE_EXIT_USAGE;
  }
  free(c.argv);
  if (getenv("LODE_STATS"))
    fprintf(stderr, "lode-stats: busy_wait_ms=%lld store_busy_wait_ms=%lld\n",
            (long long)lode_sysdb_busy_ms(), (long long)lode_store_busy_ms());
  return rc;
}
