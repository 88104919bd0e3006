/* cli_args.c - the grammar of the command line: a command's options from its
 * table, "did you mean" for unknown ones, and the --db location check. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "base/error.h"
#include "state/sysdb.h"
#include "base/util.h"

/* Options every command that opens the state database takes, also before
 * the command (`lode --db x workflow list`). */
static const lode_cli_opt global_opts[] = {
    {"--db", "PATH"}, {"--json", NULL}, {"--sync", "MODE"}, {NULL, NULL}};

const lode_cli_opt *lode_cli_globals(void) { return global_opts; }

/* Levenshtein distance, capped: strings longer than 63 bytes are "far". */
static size_t distance(const char *a, const char *b) {
  size_t n = strlen(a), m = strlen(b);
  if (n > 63 || m > 63) return SIZE_MAX;
  size_t row[64];
  for (size_t j = 0; j <= m; j++) row[j] = j;
  for (size_t i = 1; i <= n; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= m; j++) {
      size_t up = row[j];
      size_t best = diag + (a[i - 1] != b[j - 1]);
      if (row[j] + 1 < best) best = row[j] + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[m];
}

static void closest(const char *given, const lode_cli_opt *opts, const char **best,
                    size_t *best_d) {
  for (size_t i = 0; opts && opts[i].name; i++) {
    size_t d = distance(given, opts[i].name);
    if (d < *best_d) {
      *best_d = d;
      *best = opts[i].name;
    }
  }
}

const char *lode_cli_suggest(const char *given, const lode_cli_opt *opts) {
  char name[64];
  /* --name=value: the name alone */
  size_t n = strcspn(given, "=");
  if (n >= sizeof name) return NULL;
  memcpy(name, given, n);
  name[n] = 0;
  const char *best = NULL;
  size_t best_d = SIZE_MAX;
  closest(name, opts, &best, &best_d);
  closest(name, global_opts, &best, &best_d);
  /* two edits (a swap of two letters) or a third of the word, whichever is less */
  size_t limit = strlen(name) / 3;
  if (limit > 2) limit = 2;
  if (limit < 1) limit = 1;
  return best && best_d <= limit ? best : NULL;
}

static int find_opt(const lode_cli_opt *opts, const char *name, size_t len) {
  for (int i = 0; opts[i].name; i++)
    if (strlen(opts[i].name) == len && !strncmp(opts[i].name, name, len)) return i;
  return -1;
}

static int bad_usage(const char *cmd, const char *fmt, const char *a, const char *b) {
  fprintf(stderr, "lode%s%s: ", *cmd ? " " : "", cmd);
  fprintf(stderr, fmt, a, b);
  fputc('\n', stderr);
  lode_cmd_usage(cmd);
  return -1;
}

/* The common options' fields of c, from what was parsed. */
static int fill_common(lode_cli *c, const char *cmd, const char *name, const char *v) {
  if (!strcmp(name, "--db")) {
    c->db = v;
    c->db_default = 0;
  } else if (!strcmp(name, "--json")) {
    c->json = 1;
  } else if (!strcmp(name, "--sync")) {
    if (strcmp(v, "normal") && strcmp(v, "full"))
      return bad_usage(cmd, "--sync takes 'normal' or 'full', not '%s'%s", v, "");
    c->sync = v;
  } else if (!strcmp(name, "--id")) {
    c->id = v;
  } else if (!strcmp(name, "--workers")) {
    char *end;
    long n = strtol(v, &end, 10);
    if (end == v || *end || n < 1 || n > 1024)
      return bad_usage(cmd, "--workers takes a number from 1 to 1024, not '%s'%s", v, "");
    c->workers = (int)n;
  }
  return 0;
}

int lode_cli_parse(lode_cli *c, const char *cmd, const lode_cli_opt *opts, int argc, char **argv,
                   int stop_at_arg) {
  c->opts = opts;
  memset(c->val, 0, sizeof c->val);
  c->argv = argv; /* positionals are compacted in place, in order */
  c->argc = 0;
  int rest = 0;
  for (int i = 0; i < argc; i++) {
    char *a = argv[i];
    if (rest || a[0] != '-' || !strcmp(a, "-")) {
      argv[c->argc++] = a;
      if (stop_at_arg) rest = 1;
      continue;
    }
    if (!strcmp(a, "--")) {
      rest = 1;
      continue;
    }
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      lode_cmd_help(cmd);
      return 1;
    }
    const char *eq = strchr(a, '=');
    size_t len = eq ? (size_t)(eq - a) : strlen(a);
    int k = find_opt(opts, a, len);
    if (k < 0) {
      char name[64];
      snprintf(name, sizeof name, "%.*s", (int)(len < 63 ? len : 63), a);
      const char *s = lode_cli_suggest(name, opts);
      if (s) return bad_usage(cmd, "unknown option '%s'; did you mean %s?", name, s);
      return bad_usage(cmd, "unknown option '%s'%s", name, "");
    }
    const char *v;
    if (!opts[k].metavar) {
      if (eq) return bad_usage(cmd, "%s takes no value%s", opts[k].name, "");
      v = "";
    } else if (eq) {
      v = eq + 1;
    } else if (i + 1 < argc) {
      v = argv[++i];
    } else {
      return bad_usage(cmd, "%s needs a value (%s)", opts[k].name, opts[k].metavar);
    }
    if (k < LODE_CLI_MAX_OPTS) c->val[k] = v;
    if (fill_common(c, cmd, opts[k].name, v)) return -1;
  }
  return 0;
}

const char *lode_cli_get(const lode_cli *c, const char *name) {
  for (int i = 0; c->opts && c->opts[i].name && i < LODE_CLI_MAX_OPTS; i++)
    if (!strcmp(c->opts[i].name, name)) return c->val[i];
  return NULL;
}

int lode_cli_db_is_url(const char *s) {
  return s && (!strncmp(s, "postgres://", 11) || !strncmp(s, "postgresql://", 13));
}

int lode_cli_check_db(const lode_cli *c) {
  const char *p = c->db;
  if (!p) return 0;
  if (lode_cli_db_is_url(p)) {
    /* a PostgreSQL server is tried before anything runs: a bad connection
     * string, a refused password or role, an unreachable server or a
     * database it may not use is a usage error (exit 2) with the server's
     * own message, and nothing is written (docs/postgres.md) */
    lode_sysdb *db = NULL;
    char err[1024];
    if (lode_sysdb_open(p, 0, &db, err, sizeof err) != LODE_OK) {
      fprintf(stderr, "lode: --db: %s\n", err);
      return -1;
    }
    lode_sysdb_close(db);
    return 0;
  }
  struct stat st;
  if (stat(p, &st) == 0) {
    if (S_ISDIR(st.st_mode)) {
      fprintf(stderr, "lode: --db %s is a folder; give a database file (e.g. %s/lode.db)\n", p,
              p);
      return -1;
    }
    return 0;
  }
  if (c->db_default) return 0; /* lode makes its own .lode/ folder */
  char dir[PATH_MAX];
  if (lode_strlcpy(dir, p, sizeof dir) >= sizeof dir) {
    fprintf(stderr, "lode: --db %s: path too long\n", p);
    return -1;
  }
  char *slash = strrchr(dir, '/');
  if (!slash) return 0; /* in the current folder */
  if (slash == dir) slash[1] = 0;
  else *slash = 0;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    fprintf(stderr, "lode: --db %s: folder %s does not exist (%s); create it first\n", p, dir,
            stat(dir, &st) != 0 ? strerror(errno) : "not a folder");
    return -1;
  }
  return 0;
}
