#ifndef LODE_CLI_H
#define LODE_CLI_H
/* cli.h - the command line: parsing of common options and the commands. */

typedef struct lode_cli {
  const char *db;      /* --db, else $LODE_DB, else .lode/lode.db */
  const char *id;      /* --id (run) */
  const char *sync;    /* --sync normal|full */
  const char *trace_context; /* lode run --trace-context JSON (docs/tracing.md) */
  int json;            /* --json */
  int workers;         /* --workers N */
  double timeout;      /* --timeout S (run) */
  int argc;            /* positional arguments after the command */
  char **argv;
} lode_cli;

/* Exit codes (docs/cli.md). */
enum { LODE_EXIT_OK = 0, LODE_EXIT_FAILED = 1, LODE_EXIT_USAGE = 2 };

int lode_cmd_run(lode_cli *c);
int lode_cmd_workflow(lode_cli *c);
int lode_cmd_test(lode_cli *c);
int lode_cmd_worker(lode_cli *c);
int lode_cmd_trace(lode_cli *c);
int lode_cmd_export(lode_cli *c);
/* Prints help for a command (NULL: overview); 0 if the command exists. */
int lode_cmd_help(const char *cmd);
#endif
