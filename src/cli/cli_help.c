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
    {"run", "lode run [--id ID] [--workers N] [--timeout S] [--trace-context JSON] [--db PATH]\n"
     "                [--sync normal|full] [--json] PIPELINE.lua [PIPELINE ARGUMENTS...]",
     "Runs the workflow that PIPELINE.lua returns. lode's options come before the\n"
     "pipeline file; everything after it is the pipeline's (as with python or\n"
     "node), so `lode run p.lua --id x` hands --id x to the pipeline. `--` ends\n"
     "lode's options. A pipeline that declares its arguments (lode.args) has them\n"
     "checked before anything is recorded: a usage error exits 2, --help after\n"
     "the pipeline file prints the pipeline's usage.\n"
     "Before starting, unfinished workflows of this pipeline are recovered: a run\n"
     "killed mid-way resumes where it stopped when the same command runs again\n"
     "(finished steps are replayed from their checkpoints, not run again).\n"
     "Workflows recorded by another version of the pipeline file are listed with\n"
     "the commands that resume or cancel them, and left alone.\n\n"
     "  --id ID        idempotency key: an id that exists returns its recorded result\n"
     "                 (a warning says so when the arguments differ from its input)\n"
     "  --db PATH      state database (default $LODE_DB, else .lode/lode.db): a\n"
     "                 file, or a postgresql://user@host:port/db URL to share one\n"
     "                 database between many machines (docs/postgres.md)\n"
     "  --sync MODE    normal (default): a kill -9 loses no finished step;\n"
     "                 full: every checkpoint also survives power loss\n"
     "  --timeout S    cancel the workflow (and its children) after S seconds\n"
     "  --workers N    threads serving the pipeline's queues while it runs\n"
     "                 (default: the number of cores)\n"
     "  --trace-context JSON  join a caller's trace: the headers Opik's SDKs'\n"
     "                 get_distributed_trace_headers() return (opik_trace_id,\n"
     "                 opik_parent_span_id) and/or traceparent, baggage; without it\n"
     "                 OPIK_TRACE_ID, OPIK_PARENT_SPAN_ID, TRACEPARENT, BAGGAGE are\n"
     "                 read (malformed ones are ignored with a warning)\n"
     "  --json         print {workflow_id, status, result|error} as JSON\n\n"
     "Traces go to Opik (OPIK_URL_OVERRIDE, OPIK_API_KEY, ...) and to any\n"
     "OpenTelemetry backend (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS,\n"
     "OTEL_SERVICE_NAME, ...), with the same ids: see docs/tracing.md.\n\n"
     "Exit status: 0 success, 1 the workflow failed (or was cancelled), 2 bad usage,\n"
     "a bad pipeline file or bad pipeline arguments (nothing is recorded)."},
    {"workflow",
     "lode workflow list|get|steps|cancel|resume|fork|queue [options] [ID]",
     "Manages recorded workflows, like DBOS's CLI:\n\n"
     "  lode workflow list [--status S] [--name N] [--limit K] [--since SECONDS]\n"
     "                     [--children | --all] [--json]\n"
     "      top-level runs, newest first (--children or --all: child workflows\n"
     "      too); at most K rows (default 100), with a line saying how many more\n"
     "      there are; S is ENQUEUED, PENDING, SUCCESS, ERROR, CANCELLED or\n"
     "      MAX_RECOVERY_ATTEMPTS_EXCEEDED\n"
     "  lode workflow get ID [--json]      status, input, result, error, trace id\n"
     "  lode workflow steps ID [--json]    each step: name, status, duration,\n"
     "                                     output preview, every attempt's error\n"
     "  lode workflow cancel ID            it stops before its next step;\n"
     "                                     CANCELLED is final unless resumed\n"
     "  lode workflow resume ID            runs a PENDING, CANCELLED or\n"
     "                                     MAX_RECOVERY_ATTEMPTS_EXCEEDED workflow on\n"
     "                                     with the pipeline file recorded for it,\n"
     "                                     from any directory; ERROR is final: exit 2\n"
     "                                     with the fork command that runs it again\n"
     "  lode workflow cancel ID --children cancels its descendants too\n"
     "  lode workflow fork ID --step N [--id NEW]\n"
     "                                     a new workflow keeping the checkpoints\n"
     "                                     before step N; steps >= N run again\n"
     "  lode workflow queue [--json]       what is enqueued and running, per queue\n\n"
     "Every subcommand takes --db PATH and --help."},
    {"worker", "lode worker [--workers N] [--db PATH] [--sync normal|full] PIPELINE.lua",
     "Serves the pipeline's queues until SIGINT or SIGTERM: N threads (default:\n"
     "the number of cores), each with its own Lua state, claim queued workflows\n"
     "within their queues' limits (concurrency is global across processes,\n"
     "worker_concurrency per process, limiter = { limit, period }). Several\n"
     "workers and runs may share one state database. On stop, what a worker\n"
     "holds goes back to its queue and is claimed again: never lost."},
    {"trace", "lode trace [--depth N] [--errors] [--name GLOB] [--slowest K] [--span SPAN_ID [--full]]\n"
              "           [--all] [--json] [--html FILE] [--db PATH] WORKFLOW_ID|TRACE_ID",
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
     "on; this first renders any not yet in the trace store (so it writes, and\n"
     "leaves no -wal or -shm file behind)."},
    {"export", "lode export [--failed] [--retry-failed] [--timeout S] [--since AGE] [--json] [--db PATH]",
     "Renders workflow and step spans still kept in their checkpoint rows, then\n"
     "delivers pending trace records now to Opik (OPIK_URL_OVERRIDE, OPIK_API_KEY,\n"
     "OPIK_WORKSPACE, OPIK_PROJECT_NAME or ~/.opik.config) and to the OTLP endpoint\n"
     "(OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), each on its\n"
     "own delivery state, and reports both. --failed lists records refused, with\n"
     "the response; --retry-failed sends them again.\n"
     "  --timeout S    give up after S seconds, requests in flight included\n"
     "                 (default 60; 0: one pass of at most half a second); what is\n"
     "                 left stays pending\n"
     "  --since AGE    send only records of spans started within AGE (90, 30m, 2h,\n"
     "                 7d); older pending ones stay local for good (a backlog kept\n"
     "                 while Opik was off, which a run announces when it is big)\n"
     "Exits 1 when records are left pending or failed. A key or workspace refused\n"
     "by Opik (HTTP 401/403) stops the export at once and keeps every record\n"
     "pending: fix the key and run it again."},
    {"test", "lode test [BUSTED OPTIONS] [PATH...]",
     "Runs busted specs (default: tests/lua/ of the current folder) inside lode,\n"
     "with require(\"lode\") available and a fresh temporary state database for\n"
     "each spec file, so you can test your own steps and workflows. Any busted\n"
     "option may follow (e.g. --filter, -o TAP)."},
    {"version", "lode version | lode --version", "Prints lode's version."},
    {"help", "lode help [COMMAND]", "Shows this overview, or a command's help."},
};

/* `lode workflow SUB --help`: the subcommand's own usage and text. */
static const struct {
  const char *name;
  const char *usage;
  const char *text;
} workflow_subs[] = {
    {"list",
     "lode workflow list [--status S] [--name N] [--limit K] [--since SECONDS] [--children | --all] "
     "[--json] [--db PATH]",
     "Top-level runs, newest first; --children or --all adds child workflows. At most K rows\n"
     "(default 100, 0: all), then a line saying how many more there are. S is ENQUEUED,\n"
     "PENDING, SUCCESS, ERROR, CANCELLED or MAX_RECOVERY_ATTEMPTS_EXCEEDED; --since: created\n"
     "at most SECONDS ago."},
    {"get", "lode workflow get ID [--json] [--db PATH]",
     "Status, input, result, error, pipeline and version, recoveries, trace id, progress."},
    {"steps", "lode workflow steps ID [--json] [--db PATH]",
     "Each step: name, status, duration, attempts, output preview and every failed attempt's\n"
     "error (also for a step that succeeded on a later attempt)."},
    {"cancel", "lode workflow cancel ID [--children] [--db PATH]",
     "Stops it before its next step (--children: its descendants too)."},
    {"resume", "lode workflow resume ID [--json] [--db PATH] [--sync normal|full]",
     "Runs a PENDING, CANCELLED or MAX_RECOVERY_ATTEMPTS_EXCEEDED workflow on with the\n"
     "pipeline file recorded for it. ERROR is final: exit 2, with the fork command that\n"
     "runs it again."},
    {"fork", "lode workflow fork ID [--step N] [--id NEW_ID] [--json] [--db PATH] [--sync normal|full]",
     "A new workflow keeping the checkpoints before step N (default 1); steps >= N run again."},
    {"queue", "lode workflow queue [--json] [--db PATH]",
     "What is enqueued and running, per queue."},
};

static int find_workflow_sub(const char *cmd) {
  if (strncmp(cmd, "workflow ", 9)) return -1;
  for (size_t i = 0; i < sizeof workflow_subs / sizeof workflow_subs[0]; i++)
    if (!strcmp(workflow_subs[i].name, cmd + 9)) return (int)i;
  return -1;
}

/* "workflow list" -> the entry of "workflow" */
static int find(const char *cmd) {
  size_t n = sizeof commands / sizeof commands[0];
  size_t len = strcspn(cmd, " ");
  for (size_t i = 0; i < n; i++)
    if (strlen(commands[i].name) == len && !strncmp(commands[i].name, cmd, len)) return (int)i;
  return -1;
}

#define GRAMMAR "lode [--db PATH] [--json] [--sync normal|full] COMMAND [options] [arguments]"

void lode_cmd_usage(const char *cmd) {
  int w = cmd ? find_workflow_sub(cmd) : -1;
  if (w >= 0) {
    fprintf(stderr, "usage: %s\n(see 'lode %s --help')\n", workflow_subs[w].usage, cmd);
    return;
  }
  int i = cmd && *cmd ? find(cmd) : -1;
  if (i >= 0) fprintf(stderr, "usage: %s\n(see 'lode %s --help')\n", commands[i].usage, cmd);
  else fprintf(stderr, "usage: " GRAMMAR "\n(see 'lode help')\n");
}

int lode_cmd_help(const char *cmd) {
  size_t n = sizeof commands / sizeof commands[0];
  if (cmd && *cmd) {
    int w = find_workflow_sub(cmd);
    if (w >= 0) {
      printf("usage: %s\n\n%s\n", workflow_subs[w].usage, workflow_subs[w].text);
      return 0;
    }
    int i = find(cmd);
    if (i >= 0) {
      printf("usage: %s\n\n%s\n", commands[i].usage, commands[i].text);
      return 0;
    }
    fprintf(stderr, "lode: no command '%s'; see 'lode help'\n", cmd);
    return -1;
  }
  printf("lode %s: durable, traced data pipelines written in Lua\n\n"
         "usage: " GRAMMAR "\n\n"
         "Global options (also accepted after the command):\n"
         "  --db PATH      state database (default $LODE_DB, else .lode/lode.db)\n"
         "  --json         machine-readable output\n"
         "  --sync MODE    normal (default) or full (every checkpoint survives power loss)\n\n"
         "Commands:\n",
         LODE_VERSION);
  for (size_t i = 0; i < n; i++) printf("  %s\n", commands[i].usage);
  printf("\nEverything after the pipeline file belongs to the pipeline; `--` ends lode's\n"
         "options. Run 'lode help COMMAND' or 'lode COMMAND --help' for details.\n"
         "Exit status: 0 success, 1 a workflow failed, 2 bad usage.\n"
         "Documentation: docs/ in the source.\n");
  return 0;
}
