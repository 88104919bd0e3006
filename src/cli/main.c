/* main.c - the lode command line: global options, then the command.
 *
 *   lode [--db PATH] [--json] [--sync MODE] COMMAND [options] [arguments]
 *
 * Each command parses the rest of the line against its own option table
 * (cli.h, lode_cli_parse). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli/cli.h"
#include "state/sysdb.h"
#include "kernels/store.h"
#include "lode_config.h"

static const char *const commands[] = {"run", "workflow", "worker", "trace", "export",
                                       "test", "help", "version", NULL};

/* The closest command to a mistyped one, or NULL. */
static const char *suggest_command(const char *given) {
  lode_cli_opt as_opts[16];
  int n = 0;
  for (; commands[n]; n++) as_opts[n] = (lode_cli_opt){commands[n], NULL};
  as_opts[n] = (lode_cli_opt){NULL, NULL};
  const char *s = lode_cli_suggest(given, as_opts);
  return s && s[0] != '-' ? s : NULL;
}

int main(int argc, char **argv) {
  lode_cli c;
  memset(&c, 0, sizeof c);
  /* global options, before the command */
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--version")) {
      printf("lode %s\n", LODE_VERSION);
      return LODE_EXIT_OK;
    }
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      lode_cmd_help(NULL);
      return LODE_EXIT_OK;
    }
    if (!strcmp(a, "--")) {
      i++;
      break;
    }
    /* one global option at a time, through the same parser as a command's */
    int take = 1;
    const char *eq = strchr(a, '=');
    if (!eq && (!strcmp(a, "--db") || !strcmp(a, "--sync"))) take = 2;
    if (i + take > argc) take = argc - i;
    lode_cli g = c;
    int r = lode_cli_parse(&g, "", lode_cli_globals(), take, argv + i, 0);
    if (r != 0) return r > 0 ? LODE_EXIT_OK : LODE_EXIT_USAGE;
    if (g.argc) break; /* not an option after all */
    c.db = g.db;
    c.json = g.json;
    c.sync = g.sync;
    i += take - 1;
  }
  if (i >= argc) {
    lode_cmd_help(NULL);
    return LODE_EXIT_USAGE;
  }
  const char *cmd = argv[i];
  int rest_argc = argc - i - 1;
  char **rest = argv + i + 1;
  if (!strcmp(cmd, "version")) {
    printf("lode %s\n", LODE_VERSION);
    return LODE_EXIT_OK;
  }
  if (!strcmp(cmd, "help"))
    return lode_cmd_help(rest_argc > 0 ? rest[0] : NULL) ? LODE_EXIT_USAGE : LODE_EXIT_OK;
  if (!c.db) {
    const char *env = getenv("LODE_DB");
    c.db_default = !env || !*env;
    c.db = lode_sysdb_default_path();
  }
  int rc;
  if (!strcmp(cmd, "run")) rc = lode_cmd_run(&c, rest_argc, rest);
  else if (!strcmp(cmd, "workflow")) rc = lode_cmd_workflow(&c, rest_argc, rest);
  else if (!strcmp(cmd, "worker")) rc = lode_cmd_worker(&c, rest_argc, rest);
  else if (!strcmp(cmd, "trace")) rc = lode_cmd_trace(&c, rest_argc, rest);
  else if (!strcmp(cmd, "export")) rc = lode_cmd_export(&c, rest_argc, rest);
  else if (!strcmp(cmd, "test")) rc = lode_cmd_test(&c, rest_argc, rest);
  else {
    const char *s = suggest_command(cmd);
    if (cmd[0] == '-')
      fprintf(stderr, "lode: unknown option '%s' before the command; see 'lode help'\n", cmd);
    else if (s)
      fprintf(stderr, "lode: unknown command '%s'; did you mean '%s'? (see 'lode help')\n", cmd,
              s);
    else
      fprintf(stderr, "lode: unknown command '%s'; see 'lode help'\n", cmd);
    rc = LODE_EXIT_USAGE;
  }
  if (getenv("LODE_STATS"))
    fprintf(stderr, "lode-stats: busy_wait_ms=%lld store_busy_wait_ms=%lld\n",
            (long long)lode_sysdb_busy_ms(), (long long)lode_store_busy_ms());
  return rc;
}
