/* cli_common.c - helpers shared by the CLI commands. */
#include "cli/cli_common.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/codec.h"
#include "base/log.h"
#include "trace/opik_config.h"
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

static lode_exporter *exporter;
static double flush_timeout = 10.0;

static void kick(void *ud) { lode_exporter_kick(ud); }

void lode_cli_exporter_start(lua_State *L, const char *db_path) {
  char err[512];
  lode_opik_config cfg;
  if (lode_opik_config_load(&cfg, NULL, err, sizeof err) != 0) {
    lode_warn("Opik configuration: %s; traces are kept locally only", err);
    return;
  }
  flush_timeout = cfg.flush_timeout_s;
  if (lode_opik_config_sends(&cfg)) {
    exporter = lode_exporter_start(db_path, &cfg, err, sizeof err);
    if (!exporter) lode_warn("cannot start the trace exporter: %s", err);
  }
  lode_opik_config_free(&cfg);
  lode_exec *ex = exporter ? lode_host_exec(L, err, sizeof err) : NULL;
  if (ex) lode_exec_on_trace_commit(ex, kick, exporter);
}

void lode_cli_exporter_attach(lua_State *L) {
  char err[512];
  lode_exec *ex = exporter ? lode_host_exec(L, err, sizeof err) : NULL;
  if (ex) lode_exec_on_trace_commit(ex, kick, exporter);
}

void lode_cli_exporter_stop(void) {
  if (!exporter) return;
  int left = lode_exporter_stop(exporter, flush_timeout);
  exporter = NULL;
  if (left > 0)
    lode_warn("%d trace record%s not delivered to Opik yet; they are kept and 'lode export' "
              "(or the next run) delivers them", left, left == 1 ? " is" : "s are");
}
