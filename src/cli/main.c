/* main.c - the lode command line: parses, dispatches, reports. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "state/sysdb.h"
#include "kernels/store.h"
#include "lode_config.h"

static const struct {
  const char *name;
  const char *usage;
  const char *text;
} commands[] = {
    {"run", "lode run PIPELINE.lua [ARG...] [--id ID] [--workers N] [--timeout S] [--db PATH] [--sync normal|full] [--json]",
     "Runs the workflow that PIPELINE.lua returns, with the ARGs as its arguments.\n"
     "Before starting, unfinished workflows of this pipeline are recovered: a run\n"
     "killed mid-way resumes where it stopped when the same command runs again\n"
     "(finished steps are replayed from their checkpoints, not run again).\n"
     "Workflows recorded by another version of the pipeline file are listed with\n"
     "the commands that resume or cancel them, and left alone.\n\n"
     "  --id ID        idempotency key: an id that exists returns its recorded result\n"
     "  --db PATH      state database (default $LODE_DB, else .lode/lode.db)\n"
     "  --sync MODE    normal (default): a kill -9 loses no finished step;\n"
     "                 full: every checkpoint also survives power loss\n"
     "  --timeout S    cancel the workflow (and its children) after S seconds\n"
     "  --workers N    threads serving the pipeline's queues while it runs\n"
     "                 (default: the number of cores)\n"
     "  --json         print {workflow_id, status, result|error} as JSON\n\n"
     "Exit status: 0 success, 1 the workflow failed, 2 bad usage or pipeline file."},
    {"workflow",
     "lode workflow list|get|steps|cancel|resume|fork|queue ... [--db PATH] [--json]",
     "Manages recorded workflows, like DBOS's CLI:\n\n"
     "  lode workflow list [--status S] [--name N] [--limit K] [--json]\n"
     "      newest first; S is ENQUEUED, PENDING, SUCCESS, ERROR, CANCELLED or\n"
     "      MAX_RECOVERY_ATTEMPTS_EXCEEDED\n"
     "  lode workflow get ID [--json]      status, input, result, error, trace id\n"
     "  lode workflow steps ID [--json]    each step: name, status, duration,\n"
     "                                     output preview, every attempt's error\n"
     "  lode workflow cancel ID            it stops before its next step;\n"
     "                                     CANCELLED is final unless resumed\n"
     "  lode workflow resume ID            runs it on with the pipeline file\n"
     "                                     recorded for it, from any directory\n"
     "  lode workflow cancel ID --children cancels its descendants too\n"
     "  lode workflow fork ID --step N [--id NEW]\n"
     "                                     a new workflow keeping the checkpoints\n"
     "                                     before step N; steps >= N run again\n"
     "  lode workflow queue [--json]       what is enqueued and running, per queue"},
    {"worker", "lode worker PIPELINE.lua [--workers N] [--db PATH]",
     "Serves the pipeline's queues until SIGINT or SIGTERM: N threads (default:\n"
     "the number of cores), each with its own Lua state, claim queued workflows\n"
     "within their queues' limits (concurrency is global across processes,\n"
     "worker_concurrency per process, limiter = { limit, period }). Several\n"
     "workers and runs may share one state database. On stop, what a worker\n"
     "holds goes back to its queue and is claimed again: never lost."},
    {"trace", "lode trace WORKFLOW_ID|TRACE_ID [--json] [--db PATH]",
     "Draws the trace tree of a run from the local database: spans with their\n"
     "durations, status and error lines, and the trace id. Works without Opik.\n"
     "Workflow and step spans are kept in their checkpoint rows while a run goes\n"
     "on; this first renders any not yet in the trace store (so it writes)."},
    {"export", "lode export [--failed] [--retry-failed] [--json] [--db PATH]",
     "Renders workflow and step spans still kept in their checkpoint rows, then\n"
     "delivers pending trace records to Opik now (OPIK_URL_OVERRIDE, OPIK_API_KEY,\n"
     "OPIK_WORKSPACE, OPIK_PROJECT_NAME or ~/.opik.config). --failed lists records\n"
     "Opik refused, with its response; --retry-failed sends them again."},
    {"test", "lode test [PATH...]",
     "Runs busted specs (default: tests/lua/ of the current folder) inside lode,\n"
     "with require(\"lode\") available and a fresh temporary state database for\n"
     "each spec file, so you can test your own steps and workflows. Any busted\n"
     "option may follow (e.g. --filter, -o TAP)."},
    {"version", "lode version", "Prints lode's version."},
    {"help", "lode help [COMMAND]", "Shows this overview, or a command's help."},
};

int lode_cmd_help(const char *cmd) {
  size_t n = sizeof commands / sizeof commands[0];
  if (cmd) {
    for (size_t i = 0; i < n; i++)
      if (!strcmp(commands[i].name, cmd)) {
        printf("usage: %s\n\n%s\n", commands[i].usage, commands[i].text);
        return 0;
      }
    fprintf(stderr, "lode: no command '%s'; see 'lode help'\n", cmd);
    return -1;
  }
  printf("lode %s: durable, traced data pipelines written in Lua\n\nCommands:\n",
         LODE_VERSION);
  for (size_t i = 0; i < n; i++) printf("  %s\n", commands[i].usage);
  printf("\nRun 'lode help COMMAND' for details. Documentation: docs/ in the source.\n");
  return 0;
}

/* Splits common options out of argv; positional args stay in order. Options
 * after the pipeline's own arguments are still lode's only if they are known;
 * everything after "--" is positional. */
static int parse(int argc, char **argv, lode_cli *c, int keep_unknown) {
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
    else if (!rest && !strcmp(a, "--timeout")) {
      if (i + 1 >= argc || atof(argv[i + 1]) <= 0) {
        fprintf(stderr, "lode: --timeout needs a number of seconds > 0\n");
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
    (void)keep_unknown;
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
  if (parse(argc - 2, argv + 2, &c, 0)) return LODE_EXIT_USAGE;
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
