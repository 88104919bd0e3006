/* cli_common.c - helpers shared by the CLI commands. */
#include "cli/cli_common.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/codec.h"
#include "base/log.h"
#include "trace/opik_config.h"
#include "trace/trace_ctx.h"
#include "trace/trace_export.h"
#include "base/error.h"
#include "state/sysdb.h"

const char *lode_cli_time(int64_t ms) {
  static char buf[64];
  time_t s = (time_t)(ms / 1000);
  struct tm tm;
  localtime_r(&s, &tm);
  strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

static void print_json_value(lua_State *L, int idx, FILE *out) {
  lode_buf enc, js;
  lode_buf_init(&enc, 0);
  lode_buf_init(&js, 0);
  char err[256];
  if (lode_lua_encode(L, idx, &enc, err, sizeof err) == 0 &&
      lode_codec_to_json(enc.p, enc.len, 0, &js, err, sizeof err) == 0)
    fputs(lode_buf_cstr(&js), out);
  else
    fprintf(out, "null");
  lode_buf_free(&enc);
  lode_buf_free(&js);
}

int lode_cli_report_result(lua_State *L, int rc, int status, const char *id, int json) {
  if (!id) id = lode_host_last_id(L);
  if (!id) id = "";
  if (rc == LODE_OK) {
    if (json) {
      printf("{\"workflow_id\":");
      lode_buf b;
      lode_buf_init(&b, 0);
      lode_json_put_str(&b, id, strlen(id));
      fputs(lode_buf_cstr(&b), stdout);
      lode_buf_free(&b);
      printf(",\"status\":\"SUCCESS\",\"result\":");
      print_json_value(L, -1, stdout);
      printf("}\n");
    } else {
      print_json_value(L, -1, stdout);
      printf("\n");
      fprintf(stderr, "lode: workflow %s: SUCCESS\n", id);
    }
    return LODE_EXIT_OK;
  }
  const char *msg = lode_lua_errstr(L, -1);
  if (status < 0) { /* never ran: bad id, database trouble */
    fprintf(stderr, "lode: %s\n", msg);
    return rc == LODE_ECONFLICT || rc == LODE_ENOTFOUND ? LODE_EXIT_USAGE : LODE_EXIT_FAILED;
  }
  if (json) {
    lode_buf b;
    lode_buf_init(&b, 0);
    lode_buf_puts(&b, "{\"workflow_id\":");
    lode_json_put_str(&b, id, strlen(id));
    lode_buf_printf(&b, ",\"status\":\"%s\",\"error\":", lode_wf_status_name(status));
    lode_json_put_str(&b, msg, strlen(msg));
    lode_buf_puts(&b, "}\n");
    fputs(lode_buf_cstr(&b), stdout);
    lode_buf_free(&b);
  }
  if (status == LODE_WF_CANCELLED)
    fprintf(stderr, "lode: workflow %s stopped (CANCELLED): %s\n", id, msg);
  else
    fprintf(stderr, "lode: workflow %s failed (%s):\n%s\n", id, lode_wf_status_name(status), msg);
  return LODE_EXIT_FAILED;
}

/* One exporter per destination (Opik, OTLP), each with its own thread and
 * delivery state: one being down never holds the other back. */
static lode_exporter *exporter, *otlp_exporter;
static double flush_timeout = 10.0;

static void kick(void *ud) {
  (void)ud;
  lode_exporter_kick(exporter);
  lode_exporter_kick(otlp_exporter);
}

/* A backlog at least this big, waiting when a run starts, is said out loud:
 * turning Opik on ships every record kept locally before (docs/tracing.md). */
#define BACKLOG_NOTICE 500

static void warn_backlog(const char *db_path) {
  lode_sysdb *db = NULL;
  char err[512];
  if (lode_sysdb_open(db_path, 0, &db, err, sizeof err) != LODE_OK) return;
  /* spans still kept in checkpoint rows count: render them (the exporter
   * would do it first thing anyway) */
  int more = 1;
  for (int guard = 0; more && guard < 100000; guard++)
    if (lode_trace_materialize(db, 5000, &more, err, sizeof err) != LODE_OK) break;
  int n = lode_sysdb_outbox_pending(db);
  lode_sysdb_close(db);
  if (n >= BACKLOG_NOTICE)
    lode_warn("%d trace records kept before this run are waiting for Opik and are sent now; "
              "to send only recent ones, stop and run 'lode export --since 1h' first (older "
              "records then stay local)", n);
}

void lode_cli_exporter_start(lua_State *L, const char *db_path) {
  char err[512];
  lode_opik_config cfg;
  if (lode_opik_config_load(&cfg, NULL, err, sizeof err) != 0) {
    lode_warn("Opik configuration: %s; traces are kept locally only", err);
    return;
  }
  flush_timeout = cfg.flush_timeout_s;
  if (lode_opik_config_sends(&cfg)) warn_backlog(db_path);
  if (lode_opik_config_sends(&cfg)) {
    exporter = lode_exporter_start(db_path, &cfg, err, sizeof err);
    if (!exporter) lode_warn("cannot start the trace exporter: %s", err);
  }
  lode_opik_config_free(&cfg);
  lode_otlp_config ocfg;
  if (lode_otlp_config_load(&ocfg, err, sizeof err) == 0) {
    if (lode_otlp_config_sends(&ocfg)) {
      otlp_exporter = lode_exporter_start_otlp(db_path, &ocfg, err, sizeof err);
      if (!otlp_exporter) lode_warn("cannot start the OTLP exporter: %s", err);
    }
    lode_otlp_config_free(&ocfg);
  }
  lode_cli_exporter_attach(L);
}

void lode_cli_exporter_attach(lua_State *L) {
  char err[512];
  lode_exec *ex = exporter || otlp_exporter ? lode_host_exec(L, err, sizeof err) : NULL;
  if (ex) lode_exec_on_trace_commit(ex, kick, NULL);
}

void lode_cli_exporter_stop(void) {
  /* both threads deliver at once, within one bound (a destination seen down
   * gets a short grace only: docs/tracing.md) */
  lode_exporter_stop_begin(exporter, flush_timeout);
  lode_exporter_stop_begin(otlp_exporter, flush_timeout);
  char why[512], owhy[512];
  int left = exporter ? lode_exporter_stop_why(exporter, flush_timeout, why, sizeof why) : 0;
  int oleft =
      otlp_exporter ? lode_exporter_stop_why(otlp_exporter, flush_timeout, owhy, sizeof owhy) : 0;
  exporter = otlp_exporter = NULL;
  if (left > 0)
    lode_warn("%d trace record%s not delivered to Opik yet%s%s%s; they are kept and 'lode export' "
              "(or the next run) delivers them", left, left == 1 ? " is" : "s are",
              why[0] ? " (" : "", why, why[0] ? ")" : "");
  if (oleft > 0)
    lode_warn("%d span%s not delivered to the OTLP endpoint yet%s%s%s; they are kept and "
              "'lode export' (or the next run) delivers them", oleft, oleft == 1 ? " is" : "s are",
              owhy[0] ? " (" : "", owhy, owhy[0] ? ")" : "");
}

/* The value of header `name` (any case) in a JSON object of headers. */
static const char *header_of(const cJSON *o, const char *name) {
  const cJSON *v;
  cJSON_ArrayForEach(v, o) {
    if (v->string && !strcasecmp(v->string, name)) {
      if (cJSON_IsString(v)) return v->valuestring;
      lode_warn("--trace-context: %s is not a string; ignored", name);
      return NULL;
    }
  }
  return NULL;
}

void lode_cli_join_trace(const lode_cli *c) {
  const char *tp = getenv("TRACEPARENT"), *bg = getenv("BAGGAGE");
  const char *ot = getenv("OPIK_TRACE_ID"), *op = getenv("OPIK_PARENT_SPAN_ID");
  const char *where = "the environment";
  cJSON *doc = NULL;
  if (c->trace_context) {
    where = "--trace-context";
    doc = cJSON_Parse(c->trace_context);
    if (!cJSON_IsObject(doc)) {
      lode_warn("--trace-context takes a JSON object of headers (e.g. what Opik's "
                "get_distributed_trace_headers() returns); '%.80s' is not one: ignored",
                c->trace_context);
    } else {
      /* the option's context replaces the environment's */
      tp = header_of(doc, "traceparent");
      bg = header_of(doc, "baggage");
      ot = header_of(doc, "opik_trace_id");
      op = header_of(doc, "opik_parent_span_id");
    }
  }
  lode_trace_ctx *ctx = malloc(sizeof *ctx);
  if (ctx && lode_trace_ctx_read(ctx, where, tp, bg, ot, op)) lode_trace_join(ctx);
  free(ctx);
  cJSON_Delete(doc);
}
