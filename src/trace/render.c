/* render.c - workflow and step spans, rendered from their rows. See
 * render.h. One pass is one transaction: new workflow rows (by rowid, after
 * the cursor), then the workflows whose spans are not final yet. */
#include "trace/render.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/codec.h"
#include "base/error.h"
#include "base/log.h"
#include "base/util.h"
#include "state/render_rows.h"
#include "trace/trace.h"

char *lode_span_json(const uint8_t *p, size_t n, int args) {
  if (!p) return NULL;
  lode_buf b;
  lode_buf_init(&b, 0);
  char err[128];
  int rc = args ? lode_codec_args_to_json_budget(p, n, LODE_SPAN_MAX_STR, LODE_SPAN_MAX_JSON, &b,
                                                 err, sizeof err)
                : lode_codec_to_json_budget(p, n, LODE_SPAN_MAX_STR, LODE_SPAN_MAX_JSON, &b, err,
                                            sizeof err);
  if (rc != 0) {
    lode_buf_free(&b);
    return NULL;
  }
  if (b.len > LODE_SPAN_MAX_JSON) {
    /* too large even with long strings cut: keep a preview, never drop it */
    lode_buf t;
    lode_buf_init(&t, 0);
    size_t keep = LODE_SPAN_MAX_JSON / 4;
    while (keep > 0 && (b.p[keep] & 0xc0) == 0x80) keep--;
    lode_buf_puts(&t, "{\"truncated\":true,\"bytes\":");
    lode_buf_printf(&t, "%zu,\"preview\":", b.len);
    lode_json_put_str(&t, b.p, keep);
    lode_buf_putc(&t, '}');
    lode_buf_free(&b);
    return lode_buf_cstr(&t) ? (char *)lode_buf_steal(&t, NULL) : NULL;
  }
  if (!lode_buf_cstr(&b)) {
    lode_buf_free(&b);
    return NULL;
  }
  return (char *)lode_buf_steal(&b, NULL);
}

char *lode_step_span_meta(const char *wf_id, int64_t step_no, int attempts, int recovery) {
  lode_buf b;
  lode_buf_init(&b, 0);
  lode_buf_puts(&b, "{\"workflow_id\":");
  lode_json_put_str(&b, wf_id, strlen(wf_id));
  lode_buf_printf(&b, ",\"step\":%lld,\"attempts\":%d,\"recovery_attempts\":%d}",
                  (long long)step_no, attempts, recovery);
  return lode_buf_cstr(&b) ? (char *)lode_buf_steal(&b, NULL) : NULL;
}

/* ---- trace attributes kept in the workflow row -------------------------------- */

static int json_add_strs(cJSON *o, const char *k, const char *const *v, int n) {
  if (n <= 0) return 0;
  cJSON *a = cJSON_AddArrayToObject(o, k);
  if (!a) return -1;
  for (int i = 0; i < n; i++)
    if (v[i] && !cJSON_AddItemToArray(a, cJSON_CreateString(v[i]))) return -1;
  return 0;
}

static int json_add_opt(cJSON *o, const char *k, const char *v) {
  return v && !cJSON_AddStringToObject(o, k, v) ? -1 : 0;
}

char *lode_trace_extra_json(const lode_wf_trace *t, const lode_span_extra *x) {
  int has_x = x && (x->metadata_json || x->ntags > 0 || x->input_json || x->output_json ||
                    x->usage_json || x->model || x->provider || x->type);
  int has_t = t && (t->ntags > 0 || t->metadata_json || t->phase);
  if (!has_t && !has_x) return NULL;
  cJSON *o = cJSON_CreateObject();
  char *text = NULL;
  if (!o || (t && (json_add_strs(o, "tags", t->tags, t->ntags) ||
                   json_add_opt(o, "metadata", t->metadata_json) ||
                   json_add_opt(o, "phase", t->phase))))
    goto done;
  if (has_x) {
    cJSON *xo = cJSON_AddObjectToObject(o, "x");
    if (!xo || json_add_opt(xo, "metadata", x->metadata_json) ||
        json_add_strs(xo, "tags", x->tags, x->ntags) ||
        json_add_opt(xo, "input", x->input_json) || json_add_opt(xo, "output", x->output_json) ||
        json_add_opt(xo, "usage", x->usage_json) || json_add_opt(xo, "model", x->model) ||
        json_add_opt(xo, "provider", x->provider) || json_add_opt(xo, "type", x->type))
      goto done;
  }
  text = cJSON_PrintUnformatted(o);
done:
  cJSON_Delete(o);
  return text;
}

static const char *jstr(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The strings of array o[k], pointing into o (*out malloc'd, may be NULL). */
static int jstrs(const cJSON *o, const char *k, const char ***out) {
  const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, k);
  int n = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : 0;
  *out = NULL;
  if (n <= 0 || !(*out = calloc((size_t)n, sizeof **out))) return 0;
  int k2 = 0;
  const cJSON *it;
  cJSON_ArrayForEach(it, a) if (cJSON_IsString(it)) (*out)[k2++] = it->valuestring;
  return k2;
}

/* A stored row's trace_extra, parsed: the workflow's attributes and its
 * lode.trace.update values, whose strings point into doc. */
typedef struct wf_extra {
  cJSON *doc;
  lode_wf_trace t;
  lode_span_extra x;
  int has_x;
  const char **tags, **xtags;
} wf_extra;

static void extra_parse(const lode_wf_row *w, wf_extra *e) {
  memset(e, 0, sizeof *e);
  if (!w->trace_extra || !(e->doc = cJSON_Parse(w->trace_extra))) return;
  e->t.ntags = jstrs(e->doc, "tags", &e->tags);
  e->t.tags = e->tags;
  e->t.metadata_json = jstr(e->doc, "metadata");
  /* a phase belongs to top-level runs only */
  e->t.phase = w->parent_id ? NULL : jstr(e->doc, "phase");
  const cJSON *xo = cJSON_GetObjectItemCaseSensitive(e->doc, "x");
  if (!cJSON_IsObject(xo)) return;
  lode_span_extra *x = &e->x;
  x->metadata_json = jstr(xo, "metadata");
  x->ntags = jstrs(xo, "tags", &e->xtags);
  x->tags = e->xtags;
  x->input_json = jstr(xo, "input");
  x->output_json = jstr(xo, "output");
  x->usage_json = jstr(xo, "usage");
  x->model = jstr(xo, "model");
  x->provider = jstr(xo, "provider");
  x->type = jstr(xo, "type");
  e->has_x = 1;
}

static void extra_free(wf_extra *e) {
  free(e->tags);
  free(e->xtags);
  cJSON_Delete(e->doc);
}

/* ---- a workflow's span (and trace, for a root) --------------------------------- */

/* {"workflow_id": ..., "recovery_attempts": ..., "phase": ..., <user metadata>} */
static char *wf_metadata(const lode_wf_row *w, const lode_wf_trace *t, const char *extra_json) {
  lode_buf b;
  lode_buf_init(&b, 0);
  lode_buf_puts(&b, "{\"workflow_id\":");
  lode_json_put_str(&b, w->id, strlen(w->id));
  lode_buf_printf(&b, ",\"recovery_attempts\":%d", w->recovery_attempts);
  /* a queued child's wait for a worker, apart from its run (the span itself
   * starts when it was enqueued) */
  if (w->queue && w->started_at > 0 && w->started_at >= w->created_at) {
    lode_buf_printf(&b, ",\"queue\":");
    lode_json_put_str(&b, w->queue, strlen(w->queue));
    lode_buf_printf(&b, ",\"queued_ms\":%lld", (long long)(w->started_at - w->created_at));
  }
  if (t->phase) {
    lode_buf_puts(&b, ",\"phase\":");
    lode_json_put_str(&b, t->phase, strlen(t->phase));
  }
  const char *users[2] = {t->metadata_json, extra_json};
  for (int i = 0; i < 2; i++) {
    /* splice the members of a user object (validated by whoever made it) */
    const char *u = users[i];
    if (!u) continue;
    while (*u == ' ') u++;
    size_t l = strlen(u);
    if (l > 2 && u[0] == '{' && u[l - 1] == '}') {
      lode_buf_putc(&b, ',');
      lode_buf_append(&b, u + 1, l - 2);
    }
  }
  lode_buf_putc(&b, '}');
  return lode_buf_cstr(&b) ? (char *)lode_buf_steal(&b, NULL) : NULL;
}

/* The workflow's tags plus lode's own (trace roots only). */
static int wf_tags(const lode_wf_row *w, const lode_wf_trace *t, const char **out, int max,
                   char *phase_tag, size_t plen) {
  int n = 0;
  if (!w->parent_id) {
    out[n++] = "execution:workflow";
    if (t->phase) {
      snprintf(phase_tag, plen, "phase:%s", t->phase);
      out[n++] = phase_tag;
    }
  }
  for (int i = 0; i < t->ntags && n < max; i++) out[n++] = t->tags[i];
  return n;
}

/* Writes the workflow's span (and trace, for a root) as it stands: open
 * (end_ms 0) or with its outcome. Returns 0 or -1 with err. */
static int wf_put(lode_sysdb *db, const lode_wf_row *w, const lode_wf_trace *t, int64_t end_ms,
                  const uint8_t *out, size_t out_len, const char *error,
                  const lode_span_extra *x, char *err, size_t errlen) {
  char *in_json = x && x->input_json ? NULL : lode_span_json(w->input, w->input_len, 1);
  char *out_json = x && x->output_json ? NULL : lode_span_json(out, out_len, 0);
  char *meta = wf_metadata(w, t, x ? x->metadata_json : NULL);
  const char *tags[64];
  char phase_tag[256];
  int ntags = wf_tags(w, t, tags, 48, phase_tag, sizeof phase_tag);
  for (int i = 0; x && i < x->ntags && ntags < 64; i++) tags[ntags++] = x->tags[i];
  const char *msg = NULL;
  char first[512];
  if (error) { /* message: the first line; traceback: all of it */
    lode_first_line(error, first, sizeof first);
    msg = first;
  }
  int64_t start = w->created_at ? w->created_at : lode_now_ms();
  lode_span_rec sp;
  memset(&sp, 0, sizeof sp);
  sp.id = w->span_id;
  sp.trace_id = w->trace_id;
  sp.parent_span_id = w->parent_span_id;
  sp.name = w->name;
  sp.type = x && x->type ? x->type : "general";
  sp.start_ms = start;
  sp.end_ms = end_ms;
  sp.input_json = x && x->input_json ? x->input_json : in_json;
  sp.output_json = x && x->output_json ? x->output_json : out_json;
  sp.metadata_json = meta;
  /* a root's tags go on its trace (a joined root has no trace of its own) */
  int own_tags = w->parent_id || w->parent_span_id;
  sp.tags = own_tags ? tags : NULL;
  sp.ntags = own_tags ? ntags : 0;
  if (error) {
    sp.error_type = "LuaError";
    sp.error_message = msg;
    sp.error_traceback = error;
  }
  if (x) {
    sp.usage_json = x->usage_json;
    sp.model = x->model;
    sp.provider = x->provider;
  }
  int rc = lode_trace_put_span(db, &sp, err, errlen);
  /* a root span under a caller's Opik span (opik_parent_span_id): the trace
   * is the caller's own record, not lode's to write */
  if (rc == 0 && !w->parent_id && !w->parent_span_id) {
    char *tmeta = wf_metadata(w, t, NULL);
    lode_trace_rec tr;
    memset(&tr, 0, sizeof tr);
    tr.id = w->trace_id;
    tr.name = w->name;
    tr.start_ms = start;
    tr.end_ms = end_ms;
    tr.input_json = sp.input_json;
    tr.output_json = sp.output_json;
    tr.metadata_json = tmeta;
    tr.tags = tags;
    tr.ntags = ntags;
    tr.error_type = sp.error_type;
    tr.error_message = sp.error_message;
    tr.error_traceback = sp.error_traceback;
    rc = lode_trace_put_trace(db, &tr, err, errlen);
    free(tmeta);
  }
  free(in_json);
  free(out_json);
  free(meta);
  return rc;
}

/* ---- a pass ------------------------------------------------------------------- */

typedef struct mat {
  lode_sysdb *db;
  int n, max, more, warned;
} mat;

static void mat_warn(mat *m, const char *what, const char *e) {
  if (m->warned++ < 3) lode_warn("trace store: %s: %s (the record is skipped)", what, e);
}

typedef struct steps_pass {
  mat *m;
  const lode_wf_row *w;
  int64_t last; /* the last step rendered or passed over */
  int rows, stopped;
} steps_pass;

static int step_span(void *ud, const lode_step_row *r) {
  steps_pass *p = ud;
  mat *m = p->m;
  if (m->n >= m->max) {
    m->more = 1;
    p->stopped = 1;
    return 1;
  }
  p->rows++;
  p->last = r->step_no;
  /* no span kept in the row (written with the checkpoint, or none): passed
   * over for good */
  if (!r->span_input) return 0;
  const lode_wf_row *w = p->w;
  char *outj = r->output ? lode_span_json(r->output, r->output_len, 0) : NULL;
  char *meta = lode_step_span_meta(w->id, r->step_no, r->attempts, r->span_recovery);
  char first[512], e2[256];
  lode_span_rec sp;
  memset(&sp, 0, sizeof sp);
  sp.id = r->span_id;
  sp.trace_id = w->trace_id;
  sp.parent_span_id = w->span_id;
  sp.name = r->name;
  sp.type = "general";
  sp.start_ms = r->started_at;
  sp.end_ms = r->ended_at < r->started_at ? r->started_at : r->ended_at;
  sp.input_json = *r->span_input ? r->span_input : NULL;
  sp.output_json = outj;
  sp.metadata_json = meta;
  if (r->status == LODE_WF_ERROR) {
    const char *e = r->error ? r->error : "failed";
    lode_first_line(e, first, sizeof first);
    sp.error_type = "LuaError";
    sp.error_message = first;
    sp.error_traceback = e;
  }
  if (lode_trace_put_span(m->db, &sp, e2, sizeof e2) != 0)
    mat_warn(m, r->name ? r->name : "step", e2);
  free(outj);
  free(meta);
  m->n++;
  return 0;
}

/* The spans of w's steps after `after`, at most m->max - m->n of them.
 * Returns the last step number rendered (or `after`), -1 on a database error. */
static int64_t mat_steps(mat *m, const lode_wf_row *w, int64_t after, char *err, size_t errlen) {
  steps_pass p = {m, w, after, 0, 0};
  int limit = m->max - m->n + 1;
  if (lode_sysdb_render_steps(m->db, w->id, after, limit, step_span, &p, err, errlen) != LODE_OK)
    return -1;
  /* the LIMIT ran out on rows passed over: more may follow */
  if (!p.stopped && p.rows == limit) m->more = 1;
  return p.last;
}

/* Renders what is new for one workflow: its steps after `after`, then its
 * span (and trace) as it stands when it is new or has finished. */
static int mat_workflow(mat *m, const char *id, int is_new, int64_t after, char *err,
                        size_t errlen) {
  lode_wf_row w;
  char e2[256];
  if (lode_sysdb_wf_get(m->db, id, &w, e2, sizeof e2) != LODE_OK) {
    lode_wf_row_clear(&w);
    return LODE_OK; /* gone or unreadable: nothing to render */
  }
  int rc = LODE_OK;
  if (!w.trace_id || !w.span_id) goto done; /* not a traced row */
  int64_t last = after;
  if (w.status != LODE_WF_ENQUEUED && (last = mat_steps(m, &w, after, err, errlen)) < 0) {
    rc = LODE_EDB;
    goto done;
  }
  /* every step is rendered: the end can go */
  int complete = lode_wf_status_finished(w.status) && !m->more;
  wf_extra e;
  extra_parse(&w, &e);
  if (complete) {
    const char *error = w.error;
    if (!error && w.status == LODE_WF_CANCELLED) error = "cancelled";
    if (!error && w.status == LODE_WF_MAX_RECOVERY_ATTEMPTS_EXCEEDED)
      error = "the workflow exceeded its recovery attempts";
    int64_t end = w.ended_at > 0 ? w.ended_at : w.updated_at;
    if (end < w.created_at) end = w.created_at;
    if (wf_put(m->db, &w, &e.t, end, w.output, w.output_len, error, e.has_x ? &e.x : NULL, e2,
               sizeof e2) != 0)
      mat_warn(m, w.name, e2);
    m->n += 1 + !w.parent_id;
  } else if (is_new) {
    if (wf_put(m->db, &w, &e.t, 0, NULL, 0, NULL, NULL, e2, sizeof e2) != 0)
      mat_warn(m, w.name, e2);
    m->n += 1 + !w.parent_id;
  }
  extra_free(&e);
  if (complete) rc = lode_sysdb_trace_open_close(m->db, id, err, errlen);
  else if (is_new) rc = lode_sysdb_trace_open_put(m->db, id, last, err, errlen);
  else if (last > after) rc = lode_sysdb_trace_open_advance(m->db, id, last, err, errlen);
done:
  lode_wf_row_clear(&w);
  return rc;
}

/* Workflows to look at: ids (NULL for an untraced new row), with a rowid
 * (new rows) or the steps rendered (open rows), and a PENDING open
 * workflow's owner. */
typedef struct wf_list {
  char **ids, **owner;
  int64_t *num;
  int n, oom;
} wf_list;

static void list_free(wf_list *l) {
  for (int i = 0; i < l->n; i++) {
    free(l->ids[i]);
    if (l->owner) free(l->owner[i]);
  }
  free(l->ids);
  free(l->owner);
  free(l->num);
  memset(l, 0, sizeof *l);
}

static int list_add(wf_list *l, const char *id, int64_t num, const char *owner, int with_owner) {
  char **p = realloc(l->ids, (size_t)(l->n + 1) * sizeof *p);
  if (p) l->ids = p;
  int64_t *a = p ? realloc(l->num, (size_t)(l->n + 1) * sizeof *a) : NULL;
  if (a) l->num = a;
  char **o = a && with_owner ? realloc(l->owner, (size_t)(l->n + 1) * sizeof *o) : NULL;
  if (o) l->owner = o;
  if (!a || (with_owner && !o)) goto oom;
  l->ids[l->n] = id ? strdup(id) : NULL;
  if (id && !l->ids[l->n]) goto oom;
  if (with_owner) {
    l->owner[l->n] = owner ? strdup(owner) : NULL;
    if (owner && !l->owner[l->n]) {
      free(l->ids[l->n]);
      goto oom;
    }
  }
  l->num[l->n++] = num;
  return 0;
oom:
  l->oom = 1; /* the pass goes on with the rows read so far */
  return 1;
}

static int add_new(void *ud, int64_t rowid, const char *id, int traced) {
  return list_add(ud, traced ? id : NULL, rowid, NULL, 0);
}

static int add_open(void *ud, const char *id, int64_t steps_done, const char *owner) {
  return list_add(ud, id, steps_done, owner, 1);
}

#define NEW_PAGE 500

int lode_trace_materialize(lode_sysdb *db, int max, int *more, char *err, size_t errlen) {
  *more = 0;
  mat m = {db, 0, max > 0 ? max : 1000, 0, 0};
  if (!lode_sysdb_render_pending(db)) return LODE_OK;
  wf_list l = {0};
  int64_t cursor = 0, seen;
  int rc = lode_sysdb_begin(db, err, errlen);
  if (rc != LODE_OK) return rc;
  /* 1. workflows recorded since the last pass: rowids grow in commit order
   * (one writer at a time; workflow rows are never deleted) */
  if ((rc = lode_sysdb_render_cursor(db, &cursor, err, errlen)) != LODE_OK ||
      (rc = lode_sysdb_render_new(db, cursor, NEW_PAGE, add_new, &l, err, errlen)) != LODE_OK)
    goto fail;
  int full_page = l.n == NEW_PAGE;
  seen = cursor;
  /* a workflow stopped half-way (the budget) is kept open with its
   * progress, so the cursor may pass it */
  for (int i = 0; i < l.n && !m.more; i++) {
    if (l.ids[i] && (rc = mat_workflow(&m, l.ids[i], 1, 0, err, errlen)) != LODE_OK) goto fail;
    seen = l.num[i];
  }
  if (full_page) m.more = 1;
  if (seen > cursor && (rc = lode_sysdb_render_set_cursor(db, seen, err, errlen)) != LODE_OK)
    goto fail;
  list_free(&l);
  /* 2. workflows whose spans are not final yet */
  if (!m.more && m.n < m.max) {
    if ((rc = lode_sysdb_render_open(db, add_open, &l, err, errlen)) != LODE_OK) goto fail;
    for (int i = 0; i < l.n && !m.more && m.n < m.max; i++) {
      if ((rc = mat_workflow(&m, l.ids[i], 0, l.num[i], err, errlen)) != LODE_OK) goto fail;
      /* its owner is gone: what it left is rendered now; park it until
       * another process claims it */
      if (l.owner[i] && !m.more && !lode_sysdb_executor_alive(db, l.owner[i]) &&
          (rc = lode_sysdb_trace_open_park(db, l.ids[i], l.owner[i], err, errlen)) != LODE_OK)
        goto fail;
    }
  }
  if (m.n >= m.max) m.more = 1;
  rc = lode_sysdb_commit(db, err, errlen);
  if (rc != LODE_OK) goto fail;
  *more = m.more;
  list_free(&l);
  return LODE_OK;
fail:
  lode_sysdb_rollback(db);
  list_free(&l);
  return rc;
}
