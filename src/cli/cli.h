#ifndef LODE_CLI_H
#define LODE_CLI_H
/* cli.h - the command line: its grammar and the commands.
 *
 *   lode [global options] COMMAND [options] [PIPELINE [pipeline arguments]]
 *
 * main.c takes the global options (--db, --json, --sync) before the command;
 * each command declares the options it takes in a table of lode_cli_opt and
 * parses the rest of the line with lode_cli_parse (cli_args.c). For `run`
 * and `worker` the first argument that is not an option is the pipeline
 * file and everything after it belongs to the pipeline, as with `python
 * script.py` or `deno run`; `--` ends lode's options anywhere. An unknown
 * option is a usage error (exit 2) naming the closest known one. */

/* One option a command takes: its name with the dashes ("--limit") and the
 * name of its value in the usage text, or NULL for a flag. */
typedef struct lode_cli_opt {
  const char *name;
  const char *metavar;
} lode_cli_opt;

#define LODE_CLI_MAX_OPTS 32

typedef struct lode_cli {
  const char *db;      /* --db, else $LODE_DB, else .lode/lode.db */
  int db_default;      /* db is the built-in default (lode may create .lode/) */
  const char *id;      /* --id (run, fork) */
  const char *sync;    /* --sync normal|full */
  int json;            /* --json */
  int workers;         /* --workers N */
  double timeout;      /* --timeout S (run) */
  int argc;            /* arguments after the command's options */
  char **argv;
  /* the command's own options, as lode_cli_parse found them: val[i] is the
   * value of opts[i] ("" for a flag given), NULL if absent */
  const lode_cli_opt *opts;
  const char *val[LODE_CLI_MAX_OPTS];
} lode_cli;

/* Exit codes (docs/cli.md). */
enum { LODE_EXIT_OK = 0, LODE_EXIT_FAILED = 1, LODE_EXIT_USAGE = 2 };

/* Parses argv (what follows the command word; `cmd` names it for messages,
 * e.g. "workflow list") against the command's options `opts` (ended by a
 * {NULL, NULL} row). With stop_at_arg the first non-option argument ends
 * lode's options (it and everything after it go to c->argv untouched);
 * without, options and arguments may mix. --help / -h prints the command's
 * help. Returns 0, 1 after printing the help (exit 0), or -1 after printing
 * a usage error (exit 2). The common options (--db, --json, --sync, --id,
 * --workers) also fill their fields of c. */
int lode_cli_parse(lode_cli *c, const char *cmd, const lode_cli_opt *opts, int argc, char **argv,
                   int stop_at_arg);
/* The global options (--db, --json, --sync), ended by a {NULL, NULL} row. */
const lode_cli_opt *lode_cli_globals(void);
/* The value of a declared option (name with dashes), "" for a flag given, or
 * NULL when absent. */
const char *lode_cli_get(const lode_cli *c, const char *name);
/* The option of `opts` (or the global ones) closest to `given` by edit
 * distance, or NULL if none is close. */
const char *lode_cli_suggest(const char *given, const lode_cli_opt *opts);
/* Checks c->db before a command opens it: a folder, or a file whose folder
 * does not exist (other than lode's default .lode/), is a usage error
 * (message printed, returns -1). URLs (postgres://, postgresql://) pass. */
int lode_cli_check_db(const lode_cli *c);
/* 1 if --db is a URL (postgres://, postgresql://) rather than a file. */
int lode_cli_db_is_url(const char *db);

int lode_cmd_run(lode_cli *c, int argc, char **argv);
int lode_cmd_workflow(lode_cli *c, int argc, char **argv);
int lode_cmd_test(lode_cli *c, int argc, char **argv);
int lode_cmd_worker(lode_cli *c, int argc, char **argv);
int lode_cmd_trace(lode_cli *c, int argc, char **argv);
int lode_cmd_export(lode_cli *c, int argc, char **argv);
/* Prints help for a command (NULL: overview); 0 if the command exists.
 * "workflow list" and the like print the workflow command's help. */
int lode_cmd_help(const char *cmd);
/* Prints the command's one-line usage on stderr (usage errors). */
void lode_cmd_usage(const char *cmd);
#endif
