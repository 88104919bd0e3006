/* cli_trace.c - `lode trace` (the tree of a run) and `lode export` (deliver
 * pending trace records to Opik now). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "base/util.h"
#include "base/buf.h"
#include "base/error.h"
#include "state/sysdb.h"
#include "state/trace_store.h"
#include "trace/opik_config.h"
#include "trace/render.h"
#include "trace/trace_export.h"
#include "trace/trace_view.h"

/* An existing database (never created here): read-only for `lode trace`,
 * else opened (and migrated) as the engine opens it. */
static int open_db(const char *path, int readonly, lode_sysdb **db) {
  struct stat sb;
  char err[512];
  if (!lode_cli_db_is_url(path) && stat(path, &sb) != 0) {
    fprintf(stderr, "lode: no database at %s (run a pipeline first, or pass --db PATH)\n", path);
    return -1;
  }
  int rc = readonly ? lode_sysdb_open_readonly(path, db, err, sizeof err)
                    : lode_sysdb_open(path, 0, db, err, sizeof err);
  if (rc != LODE_OK) {
    fprintf(stderr, "lode: %s\n", err);
    return -1;
  }
  return 0;
}

/* WORKFLOW_ID -> (trace id, root span id) via the workflows table; an id that
 * is not a workflow is tried as a trace id. */
static int resolve(lode_sysdb *db, const char *id, char **trace_id, char **span_id) {
  char err[256];
  if (lode_sysdb_wf_trace_ref(db, id, trace_id, span_id, err, sizeof err) != LODE_OK)
    *trace_id = strdup(id);
  return *trace_id ? 0 : -1;
}

/* Workflow and step spans are rendered from their rows in batches (by the
 * exporter, or here): bring the trace store up to date before showing it,
 * through the connection that then reads it. Its close, the last one,
 * checkpoints the log and removes the -wal and -shm files; a read-only
 * connection closing last would leave them. A database that cannot be
 * written (a read-only copy) is shown as it is. */
static int open_rendered(const char *path, lode_sysdb **db) {
  struct stat sb;
  char err[512];
  if (!lode_cli_db_is_url(path) && stat(path, &sb) != 0) return open_db(path, 1, db);
  if (lode_sysdb_open(path, 0, db, err, sizeof err) != LODE_OK) return open_db(path, 1, db);
  int more = 1;
  for (int guard = 0; more && guard < 100000; guard++)
    if (lode_trace_materialize(*db, 5000, &more, err, sizeof err) != LODE_OK) {
      fprintf(stderr, "lode: warning: %s\n", err);
      break;
    }
  return 0;
}

#define TRACE_USAGE                                                                     \
  "usage: lode trace WORKFLOW_ID|TRACE_ID [--depth N] [--errors] [--name GLOB]\n"     \
  "                  [--slowest K] [--span SPAN_ID [--full]] [--all] [--json]\n"       \
  "       lode trace [WORKFLOW_ID|TRACE_ID] --html FILE   (no id: the latest run)\n"

static int int_arg(const char *opt, const char *v, int *out) {
  char *end;
  long n = strtol(v, &end, 10);
  if (*end || n < 1 || n > 1000000) {
    fprintf(stderr, "lode: %s takes a number >= 1, not '%s'\n", opt, v);
    return -1;
  }
  *out = (int)n;
  return 0;
}

/* The page links the trace in Opik when Opik is configured. */
static char *opik_link(void) {
  lode_opik_config cfg;
  char err[256];
  char *url = NULL;
  memset(&cfg, 0, sizeof cfg);
  if (lode_opik_config_load(&cfg, NULL, err, sizeof err) == 0 && !cfg.track_disable && cfg.url)
    url = strdup(cfg.url);
  lode_opik_config_free(&cfg);
  return url;
}

/* The page holds the run's inputs and outputs: private to its owner, like
 * the state database (docs/operations.md). */
static int write_file(const char *path, const lode_buf *b) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
  if (fd >= 0 && !f) close(fd);
  int ok = f && fwrite(b->p, 1, b->len, f) == b->len;
  /* closed exactly once: a failed fclose (the last flush: a full disk) has
   * still released the stream */
  if (f && fclose(f)) ok = 0;
  if (!ok) {
    fprintf(stderr, "lode: cannot write %s: %s\n", path, strerror(errno));
    return -1;
  }
  return 0;
}

static const lode_cli_opt trace_opts[] = {
    {"--depth", "N"},   {"--errors", NULL},    {"--name", "GLOB"}, {"--slowest", "K"},
    {"--span", "SPAN_ID"}, {"--full", NULL},   {"--all", NULL},    {"--html", "FILE"},
    {"--db", "PATH"},   {"--json", NULL},      {NULL, NULL}};

int lode_cmd_trace(lode_cli *c, int argc, char **argv) {
  lode_sysdb *db = NULL;
  char *trace_id = NULL, *span_id = NULL, *opik = NULL, err[512];
  const char *id = NULL, *html = NULL;
  lode_trace_view v;
  lode_buf out;
  int rc = LODE_EXIT_FAILED;
  memset(&v, 0, sizeof v);
  lode_buf_init(&out, (size_t)256 << 20);
  int pr = lode_cli_parse(c, "trace", trace_opts, argc, argv, 0);
  if (pr) {
    rc = pr > 0 ? LODE_EXIT_OK : LODE_EXIT_USAGE;
    goto done;
  }
  const char *a;
  v.errors = lode_cli_get(c, "--errors") != NULL;
  v.full = lode_cli_get(c, "--full") != NULL;
  v.all = lode_cli_get(c, "--all") != NULL;
  v.name_glob = lode_cli_get(c, "--name");
  v.span_id = lode_cli_get(c, "--span");
  html = lode_cli_get(c, "--html");
  if (((a = lode_cli_get(c, "--depth")) && int_arg("--depth", a, &v.depth)) ||
      ((a = lode_cli_get(c, "--slowest")) && int_arg("--slowest", a, &v.slowest)) ||
      c->argc > 1) {
    if (c->argc > 1) fprintf(stderr, "lode trace: one id at a time, not '%s'\n", c->argv[1]);
    rc = LODE_EXIT_USAGE;
    goto done;
  }
  if (c->argc == 1) id = c->argv[0];
  if ((!id && !html) || (v.full && !v.span_id)) {
    fprintf(stderr, v.full && !v.span_id ? "lode: --full goes with --span SPAN_ID\n"
                                         : TRACE_USAGE);
    rc = LODE_EXIT_USAGE;
    goto done;
  }
  v.json = c->json;
  if (lode_cli_check_db(c)) {
    rc = LODE_EXIT_USAGE;
    goto done;
  }
  if (open_rendered(c->db, &db)) goto done;
  if (!lode_sysdb_has_trace_store(db)) {
    fprintf(stderr, "lode: %s has no trace records yet\n", c->db);
    goto done;
  }
  if (!id) {
    if (lode_sysdb_latest_trace(db, &trace_id, err, sizeof err) != LODE_OK) {
      fprintf(stderr, "lode: no run recorded in %s\n", c->db);
      goto done;
    }
  } else if (resolve(db, id, &trace_id, &span_id)) {
    goto done;
  }
  int r;
  if (html) {
    opik = opik_link();
    r = lode_trace_html(db, trace_id, span_id, opik, &out, err, sizeof err);
    if (r == 1 && span_id) r = lode_trace_html(db, trace_id, NULL, opik, &out, err, sizeof err);
  } else {
    r = lode_trace_render_view(db, trace_id, span_id, &v, &out, err, sizeof err);
    /* the workflow's own span is not recorded (yet): show the whole trace */
    if (r == 1 && span_id) r = lode_trace_render_view(db, trace_id, NULL, &v, &out, err, sizeof err);
  }
  if (r) {
    if (r == 1 && id && !strcmp(trace_id, id))
      fprintf(stderr, "lode: no workflow or trace '%s' in %s\n", id, c->db);
    else fprintf(stderr, "lode: %s\n", err);
    goto done;
  }
  if (html) {
    if (write_file(html, &out)) goto done;
    printf("wrote %s (trace %s, %zu KB)\n", html, trace_id, (out.len + 1023) / 1024);
  } else {
    fwrite(out.p, 1, out.len, stdout);
  }
  rc = LODE_EXIT_OK;
done:
  lode_buf_free(&out);
  free(trace_id);
  free(span_id);
  free(opik);
  lode_sysdb_close(db);
  return rc;
}

/* `lode export --failed`: what Opik or the OTLP endpoint refused and why. */
typedef struct failed_list {
  cJSON *arr; /* --json */
  int n;
  const char *dest; /* "opik" or "otlp" */
} failed_list;

static void show_failed(void *ud, const lode_outbox_failure *f) {
  failed_list *l = ud;
  l->n++;
  if (l->arr) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", f->id ? f->id : "");
    cJSON_AddStringToObject(o, "kind", f->kind ? f->kind : "");
    if (f->trace_id) cJSON_AddStringToObject(o, "trace_id", f->trace_id);
    if (f->name) cJSON_AddStringToObject(o, "name", f->name);
    cJSON_AddNumberToObject(o, "attempts", f->attempts);
    cJSON_AddStringToObject(o, "response", f->last_error ? f->last_error : "");
    cJSON_AddStringToObject(o, "destination", l->dest);
    cJSON_AddItemToArray(l->arr, o);
  } else {
    printf("%s %s  %s  (%s; trace %s, %d attempt%s)\n    %s\n", f->kind ? f->kind : "?",
           f->id ? f->id : "?", f->name ? f->name : "", l->dest,
           f->trace_id ? f->trace_id : "?", f->attempts, f->attempts == 1 ? "" : "s",
           f->last_error ? f->last_error : "");
  }
}

static int list_failed(lode_sysdb *db, int json) {
  failed_list l = {json ? cJSON_CreateArray() : NULL, 0, "opik"};
  char err[512];
  int rc = lode_sysdb_outbox_failed(db, show_failed, &l, err, sizeof err);
  if (rc == LODE_OK) { /* then OTLP's */
    l.dest = "otlp";
    lode_sysdb_outbox_use(db, LODE_OUTBOX_OTLP);
    rc = lode_sysdb_outbox_failed(db, show_failed, &l, err, sizeof err);
    lode_sysdb_outbox_use(db, LODE_OUTBOX_OPIK);
  }
  if (rc != LODE_OK) {
    fprintf(stderr, "lode: reading failed records: %s\n", err);
    cJSON_Delete(l.arr);
    return LODE_EXIT_FAILED;
  }
  if (l.arr) {
    char *s = cJSON_Print(l.arr);
    if (s) printf("%s\n", s);
    cJSON_free(s);
    cJSON_Delete(l.arr);
  } else if (!l.n) {
    printf("no failed trace records\n");
  } else {
    printf("%d failed record%s; 'lode export --retry-failed' sends them again\n", l.n,
           l.n == 1 ? "" : "s");
  }
  return LODE_EXIT_OK;
}

/* What one destination's delivery did, in words. */
static void report(const lode_export_stats *st, const char *dest, const char *what) {
  printf("delivered %d %s%s to %s in %d request%s\n", st->sent, what, st->sent == 1 ? "" : "s",
         dest, st->requests, st->requests == 1 ? "" : "s");
  if (st->failed)
    printf("%d %s%s rejected by %s: see 'lode export --failed'\n", st->failed, what,
           st->failed == 1 ? " was" : "s were", dest);
  if (st->pending && st->refused)
    printf("%d %s%s still pending for %s: the credentials were refused\n", st->pending, what,
           st->pending == 1 ? "" : "s", dest);
  else if (st->pending && st->cause[0])
    printf("%d %s%s still pending for %s (%s): run 'lode export' again\n", st->pending, what,
           st->pending == 1 ? "" : "s", dest, st->cause);
  else if (st->pending)
    printf("%d %s%s still pending for %s (not due yet, or out of time): run 'lode export' "
           "again\n", st->pending, what, st->pending == 1 ? "" : "s", dest);
}

static const lode_cli_opt export_opts[] = {{"--failed", NULL},  {"--retry-failed", NULL},
                                           {"--timeout", "SECONDS"}, {"--since", "AGE"},
                                           {"--db", "PATH"},    {"--json", NULL},
                                           {NULL, NULL}};

/* "90", "90s", "30m", "2h", "7d" -> seconds; -1 if malformed. */
static double parse_age(const char *t) {
  char *end = NULL;
  double v = strtod(t, &end);
  if (end == t || !(v >= 0)) return -1;
  double unit = !*end || !strcmp(end, "s") ? 1 : !strcmp(end, "m") ? 60
                : !strcmp(end, "h") ? 3600 : !strcmp(end, "d") ? 86400 : -1;
  return unit < 0 ? -1 : v * unit;
}

int lode_cmd_export(lode_cli *c, int argc, char **argv) {
  int show_failed = 0, retry_failed = 0, rc = LODE_EXIT_FAILED;
  double timeout = 60.0;
  lode_sysdb *db = NULL;
  lode_opik_config cfg;
  lode_otlp_config ocfg;
  char err[512];
  memset(&cfg, 0, sizeof cfg);
  memset(&ocfg, 0, sizeof ocfg);
  int pr = lode_cli_parse(c, "export", export_opts, argc, argv, 0);
  if (pr) return pr > 0 ? LODE_EXIT_OK : LODE_EXIT_USAGE;
  if (c->argc) {
    fprintf(stderr, "lode export: unexpected argument '%s'\n", c->argv[0]);
    lode_cmd_usage("export");
    return LODE_EXIT_USAGE;
  }
  show_failed = lode_cli_get(c, "--failed") != NULL;
  retry_failed = lode_cli_get(c, "--retry-failed") != NULL;
  const char *t = lode_cli_get(c, "--timeout");
  if (t) {
    /* seconds for the whole delivery, requests included (docs/cli.md);
     * 0: one pass, no waiting for records in backoff */
    char *end = NULL;
    timeout = strtod(t, &end);
    if (end == t || *end || !(timeout >= 0) || timeout > 86400) {
      fprintf(stderr, "lode: export --timeout takes seconds (a number from 0 to 86400)\n");
      return LODE_EXIT_USAGE;
    }
  }
  const char *since_arg = lode_cli_get(c, "--since");
  double since = since_arg ? parse_age(since_arg) : -1;
  if (since_arg && since < 0) {
    fprintf(stderr, "lode: export --since takes an age: seconds, or a number with s, m, h or d "
                    "(30m, 2h, 7d), not '%s'\n", since_arg);
    return LODE_EXIT_USAGE;
  }
  if (lode_cli_check_db(c)) return LODE_EXIT_USAGE;
  if (open_db(c->db, 0, &db)) goto done;
  if (show_failed && !retry_failed) {
    rc = list_failed(db, c->json);
    goto done;
  }
  if (lode_opik_config_load(&cfg, NULL, err, sizeof err) ||
      lode_otlp_config_load(&ocfg, err, sizeof err)) {
    fprintf(stderr, "lode: %s\n", err);
    goto done;
  }
  /* each destination on its own delivery state (docs/tracing.md) */
  int opik = lode_opik_config_sends(&cfg), otlp = lode_otlp_config_sends(&ocfg);
  if (!opik && !otlp) {
    if (cfg.track_disable) {
      /* records written while disabled stay local for good */
      printf("tracking is disabled (OPIK_TRACK_DISABLE): nothing is sent\n");
      rc = LODE_EXIT_OK;
    } else {
      fprintf(stderr, "lode: no destination is configured: set OPIK_URL_OVERRIDE (self-hosted "
                      "Opik, e.g. http://localhost:5173/api) or OPIK_API_KEY (Opik Cloud), "
                      "and/or OTEL_EXPORTER_OTLP_ENDPOINT (OpenTelemetry)\n");
    }
    goto done;
  }
  if (retry_failed) {
    int r = opik ? lode_sysdb_outbox_retry_failed(db, err, sizeof err) : LODE_OK;
    lode_sysdb_outbox_use(db, LODE_OUTBOX_OTLP);
    if (r == LODE_OK && otlp) r = lode_sysdb_outbox_retry_failed(db, err, sizeof err);
    if (r != LODE_OK) {
      fprintf(stderr, "lode: %s\n", err);
      goto done;
    }
  }
  if (since >= 0) {
    /* only recent records go: the older ones stay local for good. Spans
     * still kept in checkpoint rows are rendered first, so they count. */
    int more = 1;
    for (int guard = 0; more && guard < 100000; guard++)
      if (lode_trace_materialize(db, 5000, &more, err, sizeof err) != LODE_OK) {
        fprintf(stderr, "lode: %s\n", err);
        goto done;
      }
    int64_t before = lode_now_ms() - (int64_t)(since * 1000);
    int kept = 0, okept = 0;
    int r = opik ? lode_sysdb_outbox_keep_local(db, before, &kept, err, sizeof err) : LODE_OK;
    lode_sysdb_outbox_use(db, LODE_OUTBOX_OTLP);
    if (r == LODE_OK && otlp) r = lode_sysdb_outbox_keep_local(db, before, &okept, err, sizeof err);
    lode_sysdb_outbox_use(db, LODE_OUTBOX_OPIK);
    if (r != LODE_OK) {
      fprintf(stderr, "lode: %s\n", err);
      goto done;
    }
    if (!c->json && (kept || okept))
      printf("kept %d record%s older than %s local for good (not sent)\n", kept + okept,
             kept + okept == 1 ? "" : "s", since_arg);
  }
  lode_sysdb_close(db);
  db = NULL;
  lode_export_stats st, ost;
  memset(&st, 0, sizeof st);
  memset(&ost, 0, sizeof ost);
  int bad = 0;
  if (opik) {
    if (lode_export_flush(c->db, &cfg, timeout, &st, err, sizeof err)) {
      fprintf(stderr, "lode: %s\n", err);
      goto done;
    }
    if (st.refused) fprintf(stderr, "lode: %s\n", err);
    bad |= st.pending || st.failed || st.refused;
  }
  if (otlp) {
    if (lode_export_flush_otlp(c->db, &ocfg, timeout, &ost, err, sizeof err)) {
      fprintf(stderr, "lode: %s\n", err);
      goto done;
    }
    if (ost.refused) fprintf(stderr, "lode: %s\n", err);
    bad |= ost.pending || ost.failed || ost.refused;
  }
  if (c->json) {
    /* Opik's figures at the top level (as before OTLP), OTLP's under "otlp" */
    if (opik)
      printf("{\"sent\":%d,\"failed\":%d,\"pending\":%d,\"requests\":%d,\"refused\":%ld,",
             st.sent, st.failed, st.pending, st.requests, st.refused);
    else printf("{\"opik\":null,");
    if (otlp)
      printf("\"otlp\":{\"sent\":%d,\"failed\":%d,\"pending\":%d,\"requests\":%d,"
             "\"refused\":%ld}}\n",
             ost.sent, ost.failed, ost.pending, ost.requests, ost.refused);
    else printf("\"otlp\":null}\n");
  } else {
    if (opik) report(&st, "Opik", "record");
    else printf("Opik: not configured\n");
    if (otlp) report(&ost, "the OTLP endpoint", "span");
    else if (opik) printf("OTLP: not configured\n");
  }
  rc = bad ? LODE_EXIT_FAILED : LODE_EXIT_OK;
done:
  lode_opik_config_free(&cfg);
  lode_otlp_config_free(&ocfg);
  lode_sysdb_close(db);
  return rc;
}
