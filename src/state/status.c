/* status.c - workflow statuses, the same for every backend (state/sysdb.h). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "state/backend.h"
#include "base/codec.h"

static const char *const status_names[] = {
#define X(s) #s,
    LODE_WF_STATUSES(X)
#undef X
};

const char *lode_wf_status_name(int s) {
  return s >= 0 && s < LODE_WF_NSTATUS ? status_names[s] : "UNKNOWN";
}

int lode_wf_status_finished(int s) {
  return s == LODE_WF_SUCCESS || s == LODE_WF_ERROR || s == LODE_WF_CANCELLED ||
         s == LODE_WF_MAX_RECOVERY_ATTEMPTS_EXCEEDED;
}

int lode_wf_status_parse(const char *name) {
  for (int i = 0; i < LODE_WF_NSTATUS; i++)
    if (!strcasecmp(name, status_names[i])) return i;
  return -1;
}

void lode_wf_row_clear(lode_wf_row *r) {
  char **strs[] = {&r->id,      &r->name,    &r->parent_id,      &r->pipeline,
                   &r->version, &r->error,   &r->trace_id,       &r->span_id,
                   &r->parent_span_id, &r->executor_id, &r->queue};
  for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
    free(*strs[i]);
    *strs[i] = NULL;
  }
  free(r->trace_extra);
  free(r->input);
  free(r->output);
  memset(r, 0, sizeof *r);
}

void lode_step_rows_free(lode_step_row *rows, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(rows[i].name);
    free(rows[i].output);
    free(rows[i].error);
    free(rows[i].child_id);
    free(rows[i].span_id);
    free(rows[i].span_input);
  }
  free(rows);
}


void lode__queue_report_head(lode_buf *out, int json) {
  if (json) lode_buf_putc(out, '[');
  else lode_buf_printf(out, "%-16s %-9s %-44s %-24s %s\n", "QUEUE", "STATUS", "ID", "NAME",
                       "PRIORITY");
}

void lode__queue_report_row(lode_buf *out, int json, int more, const char *q, const char *st,
                            const char *id, const char *name, int prio) {
  if (!json) {
    lode_buf_printf(out, "%-16s %-9s %-44s %-24s %d\n", q, st, id, name, prio);
    return;
  }
  if (more) lode_buf_putc(out, ',');
  lode_buf_puts(out, "{\"queue\":");
  lode_json_put_str(out, q, strlen(q));
  lode_buf_printf(out, ",\"status\":\"%s\",\"id\":", st);
  lode_json_put_str(out, id, strlen(id));
  lode_buf_puts(out, ",\"name\":");
  lode_json_put_str(out, name, strlen(name));
  lode_buf_printf(out, ",\"priority\":%d}", prio);
}
