/* cli_help.c - the commands' usage and help texts (`lode help`). */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
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
     "  --db PATH      state database (default $LODE_DB, else .lode/lode.db): a\n"
     "                 file, or a postgresql://user@host:port/db URL to share one\n"
     "                 database between many machines (docs/postgres.md)\n"
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
     "workers and runs may share one state database: with --db postgresql://...\n"
     "on many machines (docs/postgres.md; a machine that stops renewing its\n"
     "lease, $LODE_PG_LEASE_S, default 30 s, has its work taken over). On stop,\n"
     "what a worker holds goes back to its queue and is claimed again: never lost."},
    {"trace", "lode trace WORKFLOW_ID|TRACE_ID [--depth N] [--errors] [--name GLOB] [--slowest K]\n"
              "           [--span SPAN_ID [--full]] [--all] [--json] [--html FILE] [--db PATH]",
     "Draws the trace tree of a run from the local database (no Opik needed): each\n"
     "span with a preview of its input (a child's first argument: the file it\n"
     "handled) and output, duration, queue wait, status, attempts, error lines.\n"
     "Long runs of same-named siblings fold (--all unfolds). --depth N: N levels;\n"
     "--errors: failed spans and their ancestors; --name GLOB: matching spans;\n"
     "--slowest K: the K longest spans; --span SPAN_ID: one span's input, output,\n"
     "metadata and error (--full: uncut); --json: the whole structure.\n"
     "--html FILE writes one self-contained page (waterfall, tree, details,\n"
     "search; no network); without an id it shows the latest run.\n"
     "Spans are rendered from the checkpoints by the exporter when Opik is\n"
     "on; this first renders any not yet in the trace store (so it writes)."},
    {"export", "lode export [--failed] [--retry-failed] [--timeout S] [--json] [--db PATH]",
     "Renders workflow and step spans still kept in their checkpoint rows, then\n"
     "delivers pending trace records to Opik now (OPIK_URL_OVERRIDE, OPIK_API_KEY,\n"
     "OPIK_WORKSPACE, OPIK_PROJECT_NAME or ~/.opik.config). --failed lists records\n"
     "Opik refused, with its response; --retry-failed sends them again.\n"
     "  --timeout S    give up after S seconds, requests in flight included\n"
     "                 (default 60; 0: one pass of at most half a second); what is\n"
     "                 left stays pending\n"
     "Exits 1 when records are left pending or failed. A key or workspace refused\n"
     "by Opik (HTTP 401/403) stops the export at once and keeps every record\n"
     "pending: fix the key and run it again."},
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

