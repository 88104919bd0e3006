/* cli_workflow.c - `lode workflow list|get|steps|cancel|resume`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "cli/cli_common.h"
#include "base/codec.h"
#include "base/error.h"
#include "state/sysdb.h"
#include "base/util.h"

/* Appends the JSON of an encoded value (null if absent), strings cut at
 * max_str bytes. */
static void put_value(lode_buf *b, const uint8_t *p, size_t n, size_t max_str) {
  char err[128];
  if (!p || lode_codec_to_json(p, n, max_str, b, err, sizeof err) != 0) lode_buf_puts(b, "null");
}

static void put_args(lode_buf *b, const uint8_t *p, size_t n, size_t max_str) {
  char err[128];
  if (!p || lode_codec_args_to_json(p, n, max_str, b, err, sizeof err) != 0)
    lode_buf_puts(b, "null");
}

static void put_str(lode_buf *b, const char *s) {
  if (s) lode_json_put_str(b, s, strlen(s));
  else lode_buf_puts(b, "null");
}

static void put_time(lode_buf *b, int64_t ms) {
  if (!ms) {
    lode_buf_puts(b, "null");
    return;
  }
  char t[80];
  lode_iso8601(ms, t);
  lode_buf_printf(b, "\"%s\"", t);
}

/* What the workflow last reported of its progress (lode.progress): JSON
 * text, malloc'd, or NULL. */
static char *progress_of(lode_sysdb *db, const char *id) {
  char *p = NULL, err[256];
  if (lode_sysdb_progress_get(db, id, &p, NULL, err, sizeof err) != LODE_OK) return NULL;
  return p;
}

/* For a terminal: the report's "line" if it has one, else its JSON. */
static char *progress_line(const char *json) {
  cJSON *o = cJSON_Parse(json);
  const cJSON *l = cJSON_GetObjectItemCaseSensitive(o, "line");
  char *s = cJSON_IsString(l) ? strdup(l->valuestring) : strdup(json);
  cJSON_Delete(o);
  return s;
}

static void wf_json(lode_buf *b, const lode_wf_row *r, int full, const char *progress) {
  lode_buf_puts(b, "{\"id\":");
  put_str(b, r->id);
  lode_buf_puts(b, ",\"name\":");
  put_str(b, r->name);
  lode_buf_printf(b, ",\"status\":\"%s\",", lode_wf_status_name(r->status));
  if (progress) lode_buf_printf(b, "\"progress\":%s,", progress);
  lode_buf_puts(b, "\"created_at\":");
  put_time(b, r->created_at);
  lode_buf_puts(b, ",\"updated_at\":");
  put_time(b, r->updated_at);
  lode_buf_puts(b, ",\"ended_at\":");
  put_time(b, r->ended_at);
  lode_buf_puts(b, ",\"parent_id\":");
  put_str(b, r->parent_id);
  lode_buf_printf(b, ",\"recovery_attempts\":%d,\"trace_id\":", r->recovery_attempts);
  put_str(b, r->trace_id);
  lode_buf_puts(b, ",\"span_id\":");
  put_str(b, r->span_id);
  if (full) {
    lode_buf_puts(b, ",\"pipeline\":");
    put_str(b, r->pipeline);
    lode_buf_puts(b, ",\"version\":");
    put_str(b, r->version);
    lode_buf_puts(b, ",\"input\":");
    put_args(b, r->input, r->input_len, 0);
    lode_buf_puts(b, ",\"output\":");
    put_value(b, r->output, r->output_len, 0);
    lode_buf_puts(b, ",\"error\":");
    put_str(b, r->error);
  }
  lode_buf_putc(b, '}');
}

static void fmt_duration(char *out, size_t n, int64_t ms) {
  if (ms < 0) snprintf(out, n, "-");
  else if (ms < 1000) snprintf(out, n, "%lldms", (long long)ms);
  else if (ms < 60000) snprintf(out, n, "%.2fs", (double)ms / 1000);
  else snprintf(out, n, "%lldm%02llds", (long long)(ms / 60000), (long long)(ms / 1000 % 60));
}

typedef struct list_ctx {
  int json, count;
  int limit;  /* rows shown; the others are only counted */
  long more;  /* rows past the limit */
  lode_buf *b;
  lode_sysdb *db;
} list_ctx;

/* Rows past --limit are counted up to this many ("at least N more"). */
#define LIST_COUNT_CAP 100000

static int list_row(void *ud, const lode_wf_row *r) {
  list_ctx *lc = ud;
  if (lc->limit > 0 && lc->count >= lc->limit) {
    return ++lc->more >= LIST_COUNT_CAP;
  }
  char *prog = progress_of(lc->db, r->id);
  if (lc->json) {
    if (lc->count) lode_buf_putc(lc->b, ',');
    wf_json(lc->b, r, 0, prog);
  } else {
    char dur[32];
    fmt_duration(dur, sizeof dur, r->ended_at ? r->ended_at - r->created_at : -1);
    char *line = prog ? progress_line(prog) : NULL;
    printf("%-40s %-28s %-31s %s  %s%s%s\n", r->id, r->name, lode_wf_status_name(r->status),
           lode_cli_time(r->created_at), dur, line ? "  " : "", line ? line : "");
    free(line);
  }
  free(prog);
  lc->count++;
  return 0;
}

static int open_db(lode_cli *c, lode_sysdb **db) {
  char err[512];
  struct stat st;
  if (!lode_cli_db_is_url(c->db) && stat(c->db, &st) != 0) {
    fprintf(stderr, "lode: no state database at %s (use --db or $LODE_DB)\n", c->db);
    return LODE_EXIT_USAGE;
  }
  if (lode_sysdb_open(c->db, 0, db, err, sizeof err) != LODE_OK) {
    fprintf(stderr, "lode: %s\n", err);
    return LODE_EXIT_FAILED;
  }
  return LODE_EXIT_OK;
}

static int cmd_list(lode_cli *c, lode_sysdb *db) {
  lode_wf_filter f = {-1, NULL, NULL, 0, 0, 0, 0, 0};
  const char *s = lode_cli_get(c, "--status");
  if (s && (f.status = lode_wf_status_parse(s)) < 0) {
    fprintf(stderr, "lode: unknown status '%s' (ENQUEUED, PENDING, SUCCESS, ERROR, "
                    "CANCELLED, MAX_RECOVERY_ATTEMPTS_EXCEEDED)\n", s);
    return LODE_EXIT_USAGE;
  }
  f.name = lode_cli_get(c, "--name");
  /* top-level runs unless asked: an ingestion's thousand children would
   * bury them */
  f.roots_only = !lode_cli_get(c, "--children") && !lode_cli_get(c, "--all");
  const char *lim = lode_cli_get(c, "--limit");
  int limit = 100;
  if (lim) {
    char *end;
    long n = strtol(lim, &end, 10);
    if (end == lim || *end || n < 0 || n > 100000000) {
      fprintf(stderr, "lode workflow list: --limit takes a number >= 0 (0: no limit), not '%s'\n",
              lim);
      return LODE_EXIT_USAGE;
    }
    limit = (int)n;
  }
  const char *since = lode_cli_get(c, "--since"); /* seconds ago */
  if (since) {
    char *end;
    double sec = strtod(since, &end);
    if (end == since || *end || !(sec >= 0)) {
      fprintf(stderr, "lode workflow list: --since takes seconds ago (>= 0), not '%s'\n", since);
      return LODE_EXIT_USAGE;
    }
    f.since_ms = lode_now_ms() - (int64_t)(sec * 1000);
  }
  lode_buf b;
  lode_buf_init(&b, 0);
  list_ctx lc = {c->json, 0, limit, 0, &b, db};
  if (c->json) lode_buf_putc(&b, '[');
  else printf("%-40s %-28s %-31s %-19s  %s\n", "ID", "NAME", "STATUS", "CREATED", "DURATION");
  char err[512];
  int rc = lode_sysdb_wf_list(db, &f, list_row, &lc, err, sizeof err);
  if (c->json) {
    lode_buf_puts(&b, "]\n");
    fputs(lode_buf_cstr(&b), stdout);
  }
  lode_buf_free(&b);
  if (rc == LODE_OK && lc.more)
    fprintf(c->json ? stderr : stdout, "%s%ld more row%s not shown (use --limit N, 0 for all)\n",
            lc.more >= LIST_COUNT_CAP ? "at least " : "", lc.more, lc.more == 1 ? "" : "s");
  if (rc != LODE_OK) {
    fprintf(stderr, "lode: %s\n", err);
    return LODE_EXIT_FAILED;
  }
  return LODE_EXIT_OK;
}

static int cmd_get(lode_cli *c, lode_sysdb *db, const char *id) {
  lode_wf_row r;
  char err[512];
  if (lode_sysdb_wf_get(db, id, &r, err, sizeof err) != LODE_OK) {
    fprintf(stderr, "lode: %s\n", err);
    return LODE_EXIT_USAGE;
  }
  lode_buf b;
  lode_buf_init(&b, 0);
  char *prog = progress_of(db, r.id);
  if (c->json) {
    wf_json(&b, &r, 1, prog);
    lode_buf_putc(&b, '\n');
  } else {
    lode_buf_printf(&b, "id:           %s\nname:         %s\nstatus:       %s\n", r.id, r.name,
                    lode_wf_status_name(r.status));
    lode_buf_printf(&b, "created:      %s\n", lode_cli_time(r.created_at));
    if (r.parent_id) lode_buf_printf(&b, "parent:       %s\n", r.parent_id);
    lode_buf_printf(&b, "trace id:     %s\nroot span:    %s\n", r.trace_id ? r.trace_id : "-",
                    r.span_id ? r.span_id : "-");
    lode_buf_printf(&b, "pipeline:     %s (version %s)\nrecoveries:   %d of %d\ninput:        ",
                    r.pipeline ? r.pipeline : "-", r.version ? r.version : "-",
                    r.recovery_attempts, r.max_recovery_attempts);
    put_args(&b, r.input, r.input_len, 200);
    lode_buf_puts(&b, "\nresult:       ");
    put_value(&b, r.output, r.output_len, 200);
    lode_buf_putc(&b, '\n');
    if (prog) {
      char *line = progress_line(prog);
      lode_buf_printf(&b, "progress:     %s\n", line ? line : prog);
      free(line);
    }
    if (r.error) lode_buf_printf(&b, "error:\n%s\n", r.error);
  }
  free(prog);
  fputs(lode_buf_cstr(&b), stdout);
  lode_buf_free(&b);
  lode_wf_row_clear(&r);
  return LODE_EXIT_OK;
}

static int cmd_steps(lode_cli *c, lode_sysdb *db, const char *id) {
  lode_wf_row r;
  char err[512];
  if (lode_sysdb_wf_get(db, id, &r, err, sizeof err) != LODE_OK) {
    fprintf(stderr, "lode: %s\n", err);
    return LODE_EXIT_USAGE;
  }
  lode_wf_row_clear(&r);
  lode_step_row *steps;
  size_t n;
  if (lode_sysdb_steps_load(db, id, &steps, &n, err, sizeof err) != LODE_OK) {
    fprintf(stderr, "lode: %s\n", err);
    return LODE_EXIT_FAILED;
  }
  lode_buf b;
  lode_buf_init(&b, 0);
  if (c->json) lode_buf_putc(&b, '[');
  else lode_buf_printf(&b, "%-5s %-28s %-8s %-9s %-8s %s\n", "STEP", "NAME", "STATUS",
                       "DURATION", "ATTEMPTS", "OUTPUT / ERROR");
  for (size_t i = 0; i < n; i++) {
    lode_step_row *s = &steps[i];
    if (c->json) {
      if (i) lode_buf_putc(&b, ',');
      lode_buf_printf(&b, "{\"step\":%lld,\"name\":", (long long)s->step_no);
      put_str(&b, s->name);
      lode_buf_printf(&b, ",\"status\":\"%s\",\"attempts\":%d,\"started_at\":",
                      lode_wf_status_name(s->status), s->attempts);
      put_time(&b, s->started_at);
      lode_buf_printf(&b, ",\"duration_ms\":%lld,\"output\":",
                      (long long)(s->ended_at - s->started_at));
      put_value(&b, s->output, s->output_len, 0);
      lode_buf_puts(&b, ",\"error\":");
      put_str(&b, s->error);
      lode_buf_puts(&b, ",\"child_id\":");
      put_str(&b, s->child_id);
      lode_buf_putc(&b, '}');
    } else {
      char dur[32];
      fmt_duration(dur, sizeof dur, s->ended_at - s->started_at);
      lode_buf_printf(&b, "%-5lld %-28s %-8s %-9s %-8d ", (long long)s->step_no, s->name,
                      lode_wf_status_name(s->status), dur, s->attempts);
      if (s->status == LODE_WF_SUCCESS) {
        lode_buf pv;
        lode_buf_init(&pv, 0);
        put_value(&pv, s->output, s->output_len, 40);
        char *t = lode_buf_cstr(&pv);
        if (pv.len > 70) {
          memcpy(t + 67, "...", 4);
          while ((t[66] & 0xc0) == 0x80) memmove(t + 66, t + 67, 4); /* no cut UTF-8 */
        }
        lode_buf_puts(&b, t);
        lode_buf_free(&pv);
        if (s->child_id) lode_buf_printf(&b, "  (child %s)", s->child_id);
      }
      lode_buf_putc(&b, '\n');
      if (s->error) {
        /* every attempt's error, indented */
        const char *e = s->error;
        while (*e) {
          const char *nl = strchr(e, '\n');
          size_t len = nl ? (size_t)(nl - e) : strlen(e);
          lode_buf_puts(&b, "      ! ");
          lode_buf_append(&b, e, len);
          lode_buf_putc(&b, '\n');
          e += len + (nl ? 1 : 0);
        }
      }
    }
  }
  if (c->json) lode_buf_puts(&b, "]\n");
  fputs(lode_buf_cstr(&b), stdout);
  lode_buf_free(&b);
  lode_step_rows_free(steps, n);
  return LODE_EXIT_OK;
}

static int cmd_cancel(lode_cli *c, lode_sysdb *db, const char *id) {
  if (lode_cli_get(c, "--children")) {
    char err[512];
    int n = 0;
    if (lode_sysdb_cancel_tree(db, id, &n, err, sizeof err) != LODE_OK) {
      fprintf(stderr, "lode: %s\n", err);
      return LODE_EXIT_FAILED;
    }
    printf("cancelled %d workflow%s (%s and its descendants still queued or running)\n", n,
           n == 1 ? "" : "s", id);
    return LODE_EXIT_OK;
  }
  char err[512];
  int status;
  if (lode_sysdb_wf_status(db, id, &status, err, sizeof err) != LODE_OK) {
    fprintf(stderr, "lode: %s\n", err);
    return LODE_EXIT_USAGE;
  }
  int changed = 0;
  if (lode_sysdb_wf_set_status(db, id, LODE_WF_CANCELLED,
                               (1u << LODE_WF_PENDING) | (1u << LODE_WF_ENQUEUED), &changed,
                               err, sizeof err) != LODE_OK) {
    fprintf(stderr, "lode: %s\n", err);
    return LODE_EXIT_FAILED;
  }
  if (changed)
    printf("cancelled %s (it stops before its next step; 'lode workflow resume %s' runs it on)\n",
           id, id);
  else
    printf("%s is %s; nothing to cancel\n", id, lode_wf_status_name(status));
  return LODE_EXIT_OK;
}

static int run_recorded(lode_cli *c, const char *pipeline, const char *id);

/* The number of the workflow's first failed step (1 if none is recorded). */
static long failed_step(lode_sysdb *db, const char *id) {
  lode_step_row *steps;
  size_t n;
  char err[256];
  long no = 1;
  if (lode_sysdb_steps_load(db, id, &steps, &n, err, sizeof err) != LODE_OK) return no;
  for (size_t i = 0; i < n; i++)
    if (steps[i].status == LODE_WF_ERROR) {
      no = (long)steps[i].step_no;
      break;
    }
  lode_step_rows_free(steps, n);
  return no;
}

/* Checks the workflow can be resumed and marks it PENDING again. Returns -1
 * to go on, or the exit code. On -1, *pipeline holds the recorded file. */
static int resume_prepare(lode_sysdb *db, const char *id, char **pipeline) {
  lode_wf_row r;
  char err[512];
  *pipeline = NULL;
  if (lode_sysdb_wf_get(db, id, &r, err, sizeof err) != LODE_OK) {
    fprintf(stderr, "lode: %s\n", err);
    return LODE_EXIT_USAGE;
  }
  int code = -1;
  if (r.parent_id) {
    fprintf(stderr, "lode: %s is a child of %s; resume the parent: lode workflow resume %s\n",
            id, r.parent_id, r.parent_id);
    code = LODE_EXIT_USAGE;
  } else if (r.status == LODE_WF_SUCCESS) {
    printf("%s already finished (SUCCESS); nothing to resume\n", id);
    code = LODE_EXIT_OK;
  } else if (r.status == LODE_WF_ERROR) {
    /* as in DBOS: ERROR is final; fork runs it again (docs/cli.md) */
    long failed = failed_step(db, id);
    fprintf(stderr,
            "lode: %s ended in ERROR, which is final: resume runs on a PENDING, CANCELLED or\n"
            "MAX_RECOVERY_ATTEMPTS_EXCEEDED workflow. To run it again as a new workflow:\n"
            "  from the failed step (keeping the steps before it):  lode workflow fork %s --step %ld\n"
            "  from the start:                                       lode workflow fork %s --step 1\n",
            id, id, failed, id);
    code = LODE_EXIT_USAGE;
  } else if (!r.pipeline) {
    fprintf(stderr, "lode: %s has no recorded pipeline file\n", id);
    code = LODE_EXIT_USAGE;
  } else {
    int changed;
    unsigned from = (1u << LODE_WF_CANCELLED) | (1u << LODE_WF_MAX_RECOVERY_ATTEMPTS_EXCEEDED);
    if (lode_sysdb_wf_set_status(db, id, LODE_WF_PENDING, from, &changed, err, sizeof err) ||
        lode_sysdb_wf_reset_attempts(db, id, err, sizeof err)) {
      fprintf(stderr, "lode: %s\n", err);
      code = LODE_EXIT_FAILED;
    } else {
      *pipeline = strdup(r.pipeline);
    }
  }
  lode_wf_row_clear(&r);
  return code;
}

/* Closes db before running: the resumed run opens its own executor. */
static int cmd_resume(lode_cli *c, lode_sysdb *db, const char *id) {
  char *pipeline;
  int code = resume_prepare(db, id, &pipeline);
  lode_sysdb_close(db);
  if (code != -1) return code;
  code = run_recorded(c, pipeline, id);
  free(pipeline);
  return code;
}

static int cmd_queue(lode_cli *c, lode_sysdb *db) {
  lode_buf b;
  lode_buf_init(&b, 0);
  char err[512];
  int rc = lode_sysdb_queue_report(db, &b, c->json, err, sizeof err);
  if (rc == LODE_OK) fputs(lode_buf_cstr(&b), stdout);
  else fprintf(stderr, "lode: %s\n", err);
  lode_buf_free(&b);
  return rc == LODE_OK ? LODE_EXIT_OK : LODE_EXIT_FAILED;
}

/* Runs a recorded workflow on from its checkpoints with the pipeline file
 * recorded for it (resume and fork). */
static int run_recorded(lode_cli *c, const char *pipeline, const char *id) {
  lua_State *L;
  char abs[PATH_MAX], version[17];
  int rc = lode_pipeline_load(c, pipeline, &L, abs, version);
  if (rc != LODE_EXIT_OK) return rc;
  lua_pop(L, 1); /* the main workflow: the recorded one is looked up by name */
  lode_cli_exporter_start(L, c->db);
  int status;
  rc = lode_lua_resume(L, id, &status);
  int code = lode_cli_report_result(L, rc, status, id, c->json);
  lua_close(L);
  lode_cli_exporter_stop();
  return code;
}

/* lode workflow fork ID --step N [--id NEW]: a new workflow that keeps the
 * checkpoints before step N and runs the rest again. Closes db. */
static int cmd_fork(lode_cli *c, lode_sysdb *db, const char *id) {
  const char *st = lode_cli_get(c, "--step");
  long step = st ? atol(st) : 1;
  if (step < 1) {
    fprintf(stderr, "lode: --step takes a step number >= 1\n");
    lode_sysdb_close(db);
    return LODE_EXIT_USAGE;
  }
  lode_wf_row r;
  char err[512];
  if (lode_sysdb_wf_get(db, id, &r, err, sizeof err) != LODE_OK) {
    fprintf(stderr, "lode: %s\n", err);
    lode_sysdb_close(db);
    return LODE_EXIT_USAGE;
  }
  char new_id[512], trace_id[37], span_id[37];
  if (c->id) lode_strlcpy(new_id, c->id, sizeof new_id);
  else lode_uuid7(new_id);
  lode_uuid7(trace_id);
  lode_uuid7(span_id);
  int rc = lode_sysdb_wf_fork(db, id, new_id, step, trace_id, span_id, err, sizeof err);
  char *pipeline = r.pipeline ? strdup(r.pipeline) : NULL;
  lode_wf_row_clear(&r);
  lode_sysdb_close(db);
  if (rc != LODE_OK || !pipeline) {
    fprintf(stderr, "lode: %s\n", rc != LODE_OK ? err : "no pipeline recorded");
    free(pipeline);
    return LODE_EXIT_FAILED;
  }
  fprintf(stderr, "lode: forked %s from step %ld as %s\n", id, step, new_id);
  int code = run_recorded(c, pipeline, new_id);
  free(pipeline);
  return code;
}

/* Each subcommand's options (cli.h). */
#define COMMON {"--db", "PATH"}, {"--json", NULL}
static const lode_cli_opt list_opts[] = {{"--status", "S"},  {"--name", "NAME"},
                                         {"--limit", "N"},   {"--since", "SECONDS"},
                                         {"--children", NULL}, {"--all", NULL},
                                         COMMON,             {NULL, NULL}};
static const lode_cli_opt id_opts[] = {COMMON, {NULL, NULL}};
static const lode_cli_opt cancel_opts[] = {{"--children", NULL}, COMMON, {NULL, NULL}};
static const lode_cli_opt resume_opts[] = {{"--sync", "MODE"}, COMMON, {NULL, NULL}};
static const lode_cli_opt fork_opts[] = {{"--step", "N"}, {"--id", "NEW_ID"}, {"--sync", "MODE"},
                                         COMMON, {NULL, NULL}};

static const struct {
  const char *name;
  const lode_cli_opt *opts;
  int ids; /* how many ID arguments it takes */
} subs[] = {{"list", list_opts, 0},     {"get", id_opts, 1},       {"steps", id_opts, 1},
            {"cancel", cancel_opts, 1}, {"resume", resume_opts, 1}, {"fork", fork_opts, 1},
            {"queue", id_opts, 0}};

int lode_cmd_workflow(lode_cli *c, int argc, char **argv) {
  /* `lode workflow --help` and `lode workflow --db x list` */
  int k = 0;
  while (k < argc && argv[k][0] == '-') {
    if (!strcmp(argv[k], "--help") || !strcmp(argv[k], "-h")) {
      lode_cmd_help("workflow");
      return LODE_EXIT_OK;
    }
    int take = !strcmp(argv[k], "--db") && k + 1 < argc ? 2 : 1;
    if (lode_cli_parse(c, "workflow", id_opts, take, argv + k, 0)) return LODE_EXIT_USAGE;
    k += take;
  }
  if (k >= argc) {
    lode_cmd_help("workflow");
    return LODE_EXIT_USAGE;
  }
  const char *sub = argv[k];
  size_t si = 0, nsub = sizeof subs / sizeof subs[0];
  while (si < nsub && strcmp(subs[si].name, sub)) si++;
  if (si == nsub) {
    fprintf(stderr, "lode: unknown workflow command '%s' (list, get, steps, cancel, resume, "
                    "fork, queue); see 'lode help workflow'\n", sub);
    return LODE_EXIT_USAGE;
  }
  char cmd[32];
  snprintf(cmd, sizeof cmd, "workflow %s", sub);
  int pr = lode_cli_parse(c, cmd, subs[si].opts, argc - k - 1, argv + k + 1, 0);
  if (pr) return pr > 0 ? LODE_EXIT_OK : LODE_EXIT_USAGE;
  if (c->argc != subs[si].ids) {
    if (c->argc < subs[si].ids) fprintf(stderr, "lode %s: no workflow ID\n", cmd);
    else fprintf(stderr, "lode %s: unexpected argument '%s'\n", cmd, c->argv[subs[si].ids]);
    lode_cmd_usage(cmd);
    return LODE_EXIT_USAGE;
  }
  const char *id = subs[si].ids ? c->argv[0] : NULL;
  if (lode_cli_check_db(c)) return LODE_EXIT_USAGE;
  lode_sysdb *db;
  int rc = open_db(c, &db);
  if (rc != LODE_EXIT_OK) return rc;
  if (!strcmp(sub, "list")) rc = cmd_list(c, db);
  else if (!strcmp(sub, "get")) rc = cmd_get(c, db, id);
  else if (!strcmp(sub, "steps")) rc = cmd_steps(c, db, id);
  else if (!strcmp(sub, "cancel")) rc = cmd_cancel(c, db, id);
  else if (!strcmp(sub, "queue")) rc = cmd_queue(c, db);
  else if (!strcmp(sub, "fork")) return cmd_fork(c, db, id); /* closes db */
  else return cmd_resume(c, db, id); /* closes db */
  lode_sysdb_close(db);
  return rc;
}
