/* executor.c - durable workflows and steps. See executor.h. */
#include "core/executor.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/codec.h"
#include "base/error.h"
#include "base/log.h"
#include "base/util.h"

struct lode_exec {
  lode_sysdb *db;
  char id[37];
  char *pipeline, *version;
  int tracing;
  lode_trace_writer *tw; /* prepared trace-store statements on db */
  int counted;            /* counted in open_count (unregisters at the last close) */
  unsigned seen_version;  /* data version after this connection's last checkpoint */
  void (*kick)(void *ud);
  void *kick_ud;
};

struct lode_wf {
  lode_exec *ex;
  lode_wf_row row;      /* as recorded (input, trace context, ...) */
  lode_step_row *steps; /* recorded checkpoints, ordered by step_no */
  size_t nsteps;
  size_t cursor;        /* replay cursor into steps */
  int64_t pos;          /* last position handed out */
  int resumed;
  int cancelled;
  int unsaved; /* a fresh top-level run whose row rides on its first write */
  /* trace attributes, kept for the span written at the end */
  char **tags;
  int ntags;
  char *metadata_json, *phase;
};

#ifdef LODE_TEST_HOOKS
/* Read once: the hook sits on every step's path, and worker threads share
 * the count. */
static pthread_once_t crash_once = PTHREAD_ONCE_INIT;
static const char *crash_spec;
static void read_crash_spec(void) { crash_spec = getenv("LODE_TEST_CRASH_AT"); }
#endif

void lode_test_crash_point(const char *step_name) {
#ifdef LODE_TEST_HOOKS
  static _Atomic int count;
  pthread_once(&crash_once, read_crash_spec);
  const char *spec = crash_spec;
  if (!spec) return;
  const char *colon = strrchr(spec, ':');
  size_t nlen = colon ? (size_t)(colon - spec) : strlen(spec);
  if (strlen(step_name) != nlen || strncmp(spec, step_name, nlen) != 0) return;
  int k = colon ? atoi(colon + 1) : 1;
  if (++count == k) {
    fprintf(stderr, "lode: test hook: killing the process at step '%s'\n", step_name);
    fflush(stderr);
    raise(SIGKILL);
  }
#else
  (void)step_name;
#endif
}

/* One executor id per process: its threads share queue limits
 * (worker_concurrency) and recovery treats their work as one owner's. */
static pthread_once_t pid_once = PTHREAD_ONCE_INIT;
static char the_process_id[37];
static void make_process_id(void) { lode_uuid7(the_process_id); }
static void process_id(char out[37]) {
  pthread_once(&pid_once, make_process_id);
  memcpy(out, the_process_id, 37);
}

/* How many executors of this process are open: the process's executors row
 * goes when the last one closes cleanly (a killed process leaves its row,
 * which is how recovery tells its workflows are orphaned). */
static pthread_mutex_t open_mu = PTHREAD_MUTEX_INITIALIZER;
static int open_count;

int lode_exec_open(const lode_exec_opts *o, lode_exec **out, char *err, size_t errlen) {
  *out = NULL;
  lode_exec *ex = calloc(1, sizeof *ex);
  if (!ex) {
    snprintf(err, errlen, "out of memory");
    return LODE_ENOMEM;
  }
  int rc = lode_sysdb_open(o->db_path, o->sync_full, &ex->db, err, errlen);
  if (rc != LODE_OK) goto done;
  process_id(ex->id);
  /* counted before registering: a close racing this open must not delete
   * the row this executor is about to (re)insert */
  pthread_mutex_lock(&open_mu);
  open_count++;
  pthread_mutex_unlock(&open_mu);
  ex->counted = 1;
  rc = lode_sysdb_executor_register(ex->db, ex->id, err, errlen);
  if (rc != LODE_OK) goto done;
  ex->tracing = !lode_trace_disabled();
  if (ex->tracing && !(ex->tw = lode_trace_writer_new(lode_sysdb_sqlite(ex->db), err, errlen))) {
    rc = LODE_EDB;
    goto done;
  }
  if (o->pipeline) ex->pipeline = strdup(o->pipeline);
  if (o->version) ex->version = strdup(o->version);
done:
  if (rc != LODE_OK) {
    lode_exec_close(ex);
    return rc;
  }
  *out = ex;
  return LODE_OK;
}

void lode_exec_close(lode_exec *ex) {
  if (!ex) return;
  int last = 0;
  if (ex->counted) {
    pthread_mutex_lock(&open_mu);
    last = --open_count == 0;
    /* unregistered under the lock, so an open in another thread cannot
     * register between the count reaching 0 and the row's delete */
    if (last && ex->db) lode_sysdb_executor_unregister(ex->db, ex->id);
    pthread_mutex_unlock(&open_mu);
  }
  lode_trace_writer_free(ex->tw);
  lode_sysdb_close(ex->db);
  free(ex->pipeline);
  free(ex->version);
  free(ex);
}

lode_sysdb *lode_exec_db(lode_exec *ex) { return ex->db; }
const char *lode_exec_id(lode_exec *ex) { return ex->id; }

void lode_wf_outcome_clear(lode_wf_outcome *o) {
  free(o->output);
  free(o->error);
  memset(o, 0, sizeof *o);
}

static int finished(int status) {
  return status == LODE_WF_SUCCESS || status == LODE_WF_ERROR || status == LODE_WF_CANCELLED ||
         status == LODE_WF_MAX_RECOVERY_ATTEMPTS_EXCEEDED;
}

/* Moves a finished row's outcome into *o. */
static void take_outcome(lode_wf_row *r, lode_wf_outcome *o) {
  o->status = r->status;
  o->output = r->output;
  o->output_len = r->output_len;
  o->error = r->error;
  r->output = NULL;
  r->error = NULL;
  if (!o->error && r->status == LODE_WF_CANCELLED) {
    size_t n = strlen(r->id) + 64;
    o->error = malloc(n);
    if (o->error) snprintf(o->error, n, "workflow %s was cancelled", r->id);
  }
  if (!o->error && r->status == LODE_WF_MAX_RECOVERY_ATTEMPTS_EXCEEDED) {
    size_t n = strlen(r->id) + 128;
    o->error = malloc(n);
    if (o->error)
      snprintf(o->error, n, "workflow %s exceeded its %d recovery attempts", r->id,
               r->max_recovery_attempts);
  }
}

int lode_exec_tracing(const lode_exec *ex) { return ex->tracing; }

void lode_exec_on_trace_commit(lode_exec *ex, void (*fn)(void *ud), void *ud) {
  ex->kick = fn;
  ex->kick_ud = ud;
}

static void kick(lode_exec *ex) {
  if (ex->kick) ex->kick(ex->kick_ud);
}

#define SPAN_MAX_STR LODE_SPAN_MAX_STR
#define SPAN_MAX_JSON LODE_SPAN_MAX_JSON

char *lode_span_json(const uint8_t *p, size_t n, int args) {
  if (!p) return NULL;
  lode_buf b;
  lode_buf_init(&b, 0);
  char err[128];
  int rc = args ? lode_codec_args_to_json_budget(p, n, SPAN_MAX_STR, SPAN_MAX_JSON, &b, err,
                                                 sizeof err)
                : lode_codec_to_json_budget(p, n, SPAN_MAX_STR, SPAN_MAX_JSON, &b, err,
                                            sizeof err);
  if (rc != 0) {
    lode_buf_free(&b);
    return NULL;
  }
  if (b.len > SPAN_MAX_JSON) {
    /* too large even with long strings cut: keep a preview, never drop it */
    lode_buf t;
    lode_buf_init(&t, 0);
    size_t keep = SPAN_MAX_JSON / 4;
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

/* {"workflow_id": ..., "recovery_attempts": ..., <user metadata>} */
static char *wf_metadata(const lode_wf *wf, const char *user_json, const char *extra_json,
                         int with_phase) {
  lode_buf b;
  lode_buf_init(&b, 0);
  lode_buf_puts(&b, "{\"workflow_id\":");
  lode_json_put_str(&b, wf->row.id, strlen(wf->row.id));
  lode_buf_printf(&b, ",\"recovery_attempts\":%d", wf->row.recovery_attempts);
  if (with_phase && wf->phase) {
    lode_buf_puts(&b, ",\"phase\":");
    lode_json_put_str(&b, wf->phase, strlen(wf->phase));
  }
  const char *users[2] = {user_json, extra_json};
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
static int wf_tags(const lode_wf *wf, const char **out, int max, char *phase_tag, size_t plen) {
  int n = 0;
  if (!wf->row.parent_id) {
    out[n++] = "execution:workflow";
    if (wf->phase) {
      snprintf(phase_tag, plen, "phase:%s", wf->phase);
      out[n++] = phase_tag;
    }
  }
  for (int i = 0; i < wf->ntags && n < max; i++) out[n++] = wf->tags[i];
  return n;
}

/* Writes the workflow's span (and trace, for a root) as it stands. */
static int wf_trace_put(lode_wf *wf, int64_t end_ms, const uint8_t *out, size_t out_len,
                        const char *error, const lode_span_extra *x, char *err, size_t errlen) {
  char *in_json = x && x->input_json ? NULL : lode_span_json(wf->row.input, wf->row.input_len, 1);
  char *out_json = x && x->output_json ? NULL : lode_span_json(out, out_len, 0);
  char *meta = wf_metadata(wf, wf->metadata_json, x ? x->metadata_json : NULL, 1);
  const char *tags[64];
  char phase_tag[256];
  int ntags = wf_tags(wf, tags, 48, phase_tag, sizeof phase_tag);
  for (int i = 0; x && i < x->ntags && ntags < 64; i++) tags[ntags++] = x->tags[i];
  const char *msg = NULL;
  char first[512];
  if (error) { /* message: the first line; traceback: all of it */
    lode_first_line(error, first, sizeof first);
    msg = first;
  }
  int64_t start = wf->row.created_at ? wf->row.created_at : lode_now_ms();
  lode_span_rec sp;
  memset(&sp, 0, sizeof sp);
  sp.id = wf->row.span_id;
  sp.trace_id = wf->row.trace_id;
  sp.parent_span_id = wf->row.parent_span_id;
  sp.name = wf->row.name;
  sp.type = x && x->type ? x->type : "general";
  sp.start_ms = start;
  sp.end_ms = end_ms;
  sp.input_json = x && x->input_json ? x->input_json : in_json;
  sp.output_json = x && x->output_json ? x->output_json : out_json;
  sp.metadata_json = meta;
  sp.tags = wf->row.parent_id ? tags : NULL; /* a root's tags go on its trace */
  sp.ntags = wf->row.parent_id ? ntags : 0;
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
  int rc = lode_trace_writer_put_span(wf->ex->tw, &sp, err, errlen);
  if (rc == 0 && !wf->row.parent_id) {
    char *tmeta = wf_metadata(wf, wf->metadata_json, NULL, 1);
    lode_trace_rec t;
    memset(&t, 0, sizeof t);
    t.id = wf->row.trace_id;
    t.name = wf->row.name;
    t.start_ms = start;
    t.end_ms = end_ms;
    t.input_json = sp.input_json;
    t.output_json = sp.output_json;
    t.metadata_json = tmeta;
    t.tags = tags;
    t.ntags = ntags;
    t.error_type = sp.error_type;
    t.error_message = sp.error_message;
    t.error_traceback = sp.error_traceback;
    rc = lode_trace_writer_put_trace(wf->ex->tw, &t, err, errlen);
    free(tmeta);
  }
  free(in_json);
  free(out_json);
  free(meta);
  return rc == 0 ? LODE_OK : LODE_EDB;
}

static void keep_trace_opts(lode_wf *wf, const lode_wf_trace *t, int is_child) {
  if (!t) return;
  if (t->ntags > 0 && (wf->tags = calloc((size_t)t->ntags, sizeof *wf->tags))) {
    for (int i = 0; i < t->ntags; i++)
      if (t->tags[i]) wf->tags[wf->ntags++] = strdup(t->tags[i]);
  }
  if (t->metadata_json) wf->metadata_json = strdup(t->metadata_json);
  if (t->phase && !is_child) wf->phase = strdup(t->phase);
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

/* {"tags":[..],"metadata":"{..}","phase":"..","x":{<lode.trace.update>}}, or
 * NULL when there is nothing to keep (the common case: no text at all). */
static char *trace_extra_json(const lode_wf *wf, const lode_span_extra *x) {
  int has_x = x && (x->metadata_json || x->ntags > 0 || x->input_json || x->output_json ||
                    x->usage_json || x->model || x->provider || x->type);
  if (!wf->ntags && !wf->metadata_json && !wf->phase && !has_x) return NULL;
  cJSON *o = cJSON_CreateObject();
  char *text = NULL;
  if (!o || json_add_strs(o, "tags", (const char *const *)wf->tags, wf->ntags) ||
      json_add_opt(o, "metadata", wf->metadata_json) || json_add_opt(o, "phase", wf->phase))
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

/* The parsed trace_extra of a stored row: the workflow's options go into
 * wf (as keep_trace_opts would), lode.trace.update values into *x, whose
 * strings point into *doc (free it with cJSON_Delete). */
static const char *jstr(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

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

static int trace_extra_parse(lode_wf *wf, lode_span_extra *x, const char ***xtags,
                             cJSON **doc) {
  memset(x, 0, sizeof *x);
  *xtags = NULL;
  *doc = wf->row.trace_extra ? cJSON_Parse(wf->row.trace_extra) : NULL;
  if (!*doc) return 0;
  const char **tags;
  int n = jstrs(*doc, "tags", &tags);
  lode_wf_trace t = {tags, n, jstr(*doc, "metadata"), jstr(*doc, "phase")};
  keep_trace_opts(wf, &t, wf->row.parent_id != NULL);
  free(tags);
  const cJSON *xo = cJSON_GetObjectItemCaseSensitive(*doc, "x");
  if (!cJSON_IsObject(xo)) return 0;
  x->metadata_json = jstr(xo, "metadata");
  x->ntags = jstrs(xo, "tags", xtags);
  x->tags = *xtags;
  x->input_json = jstr(xo, "input");
  x->output_json = jstr(xo, "output");
  x->usage_json = jstr(xo, "usage");
  x->model = jstr(xo, "model");
  x->provider = jstr(xo, "provider");
  x->type = jstr(xo, "type");
  return 1;
}

int lode_exec_trace_write(lode_exec *ex, const lode_trace_rec *t, const lode_span_rec *spans,
                          int nspans, char *err, size_t errlen) {
  if (!ex->tracing || (nspans == 0 && !t)) return LODE_OK;
  int rc = lode_sysdb_begin(ex->db, err, errlen);
  if (rc != LODE_OK) return rc;
  if (t && lode_trace_writer_put_trace(ex->tw, t, err, errlen) != 0) rc = LODE_EDB;
  for (int i = 0; i < nspans && rc == LODE_OK; i++)
    if (lode_trace_writer_put_span(ex->tw, &spans[i], err, errlen) != 0) rc = LODE_EDB;
  if (rc == LODE_OK) rc = lode_sysdb_commit(ex->db, err, errlen);
  if (rc != LODE_OK) lode_sysdb_rollback(ex->db);
  else kick(ex);
  return rc;
}

int lode_exec_trace_feedback(lode_exec *ex, const char *trace_id, const char *name, double value,
                             const char *reason, char *err, size_t errlen) {
  if (!ex->tracing) return LODE_OK;
  int rc = lode_sysdb_begin(ex->db, err, errlen);
  if (rc != LODE_OK) return rc;
  if (lode_trace_writer_put_feedback(ex->tw, trace_id, name, value, reason, err, errlen) != 0)
    rc = LODE_EDB;
  if (rc == LODE_OK) rc = lode_sysdb_commit(ex->db, err, errlen);
  if (rc != LODE_OK) lode_sysdb_rollback(ex->db);
  else kick(ex);
  return rc;
}

/* A child's deadline is its own or its parent's, whichever comes first. */
static int64_t deadline_for(double timeout_s, const lode_wf *parent) {
  int64_t d = timeout_s > 0 ? lode_now_ms() + (int64_t)(timeout_s * 1000.0) : 0;
  int64_t p = parent ? parent->row.deadline_ms : 0;
  if (p && (!d || p < d)) d = p;
  return d;
}

int64_t lode_wf_deadline(const lode_wf *wf) { return wf->row.deadline_ms; }

/* A top-level run under an id lode just made (a UUIDv7 no one else can
 * hold) is not inserted on its own: its row is written by the first
 * transaction that writes anything for it (its first checkpoint, its
 * outcome, a child), which saves a commit per run. Until then it is not
 * visible to other processes, which is as if it had not started: a crash
 * before that write leaves nothing to recover and nothing was done. Ids
 * given by the caller and child ids (PARENT-N) are inserted at once, since
 * their uniqueness is checked by that insert. */
/* Inserts the row if it is not yet (the caller's transaction; the caller
 * clears wf->unsaved once that transaction has committed). */
static int save_row(lode_wf *wf, char *err, size_t errlen) {
  if (!wf->unsaved) return LODE_OK;
  int existed = 0;
  int rc = lode_sysdb_wf_insert(wf->ex->db, &wf->row, &existed, err, errlen);
  if (rc != LODE_OK) return rc;
  if (existed) {
    snprintf(err, errlen, "workflow id %s was taken meanwhile", wf->row.id);
    return LODE_ECONFLICT;
  }
  return LODE_OK;
}

/* save_row in a transaction of its own (before a child's row is written). */
static int save_row_now(lode_wf *wf, char *err, size_t errlen) {
  if (!wf || !wf->unsaved) return LODE_OK;
  lode_sysdb_relax_sync(wf->ex->db, 1);
  int rc = save_row(wf, err, errlen); /* autocommit */
  lode_sysdb_relax_sync(wf->ex->db, 0);
  if (rc == LODE_OK) wf->unsaved = 0;
  return rc;
}

int lode_wf_check_deadline(lode_wf *wf, char *err, size_t errlen) {
  if (!wf->row.deadline_ms || lode_now_ms() < wf->row.deadline_ms) return LODE_OK;
  int src = save_row_now(wf, err, errlen); /* the cancel below must find it */
  if (src != LODE_OK) return src;
  /* the deadline belongs to the highest ancestor that set it (children
   * inherit it): cancel from there, so the whole tree stops */
  char top[512], e2[256];
  lode_strlcpy(top, wf->row.id, sizeof top);
  for (int guard = 0; guard < 64; guard++) {
    lode_wf_row r, p;
    if (lode_sysdb_wf_get(wf->ex->db, top, &r, e2, sizeof e2) != LODE_OK) break;
    int up = 0;
    if (r.parent_id && lode_sysdb_wf_get(wf->ex->db, r.parent_id, &p, e2, sizeof e2) == LODE_OK) {
      if (p.deadline_ms == wf->row.deadline_ms) {
        lode_strlcpy(top, p.id, sizeof top);
        up = 1;
      }
      lode_wf_row_clear(&p);
    }
    lode_wf_row_clear(&r);
    if (!up) break;
  }
  int n = 0;
  wf->cancelled = 1; /* it stops either way */
  int crc = lode_sysdb_cancel_tree(wf->ex->db, top, &n, e2, sizeof e2);
  if (crc != LODE_OK) {
    /* the tree is not marked CANCELLED: say so rather than claim it was */
    snprintf(err, errlen,
             "workflow %s reached its deadline (timeout) but could not be cancelled: %s",
             wf->row.id, e2);
    return crc;
  }
  snprintf(err, errlen, "workflow %s was cancelled: it reached its deadline (timeout)",
           wf->row.id);
  return LODE_ECANCELLED;
}

static int copy_row(const lode_wf_row *a, lode_wf_row *b) {
  memset(b, 0, sizeof *b);
  const char *src[] = {a->id, a->name, a->parent_id, a->trace_id, a->span_id,
                       a->parent_span_id, a->executor_id, a->trace_extra};
  char **dst[] = {&b->id, &b->name, &b->parent_id, &b->trace_id, &b->span_id,
                  &b->parent_span_id, &b->executor_id, &b->trace_extra};
  for (size_t i = 0; i < sizeof src / sizeof src[0]; i++)
    if (src[i] && !(*dst[i] = strdup(src[i]))) return LODE_ENOMEM;
  if (a->input) {
    if (!(b->input = malloc(a->input_len ? a->input_len : 1))) return LODE_ENOMEM;
    memcpy(b->input, a->input, a->input_len);
    b->input_len = a->input_len;
  }
  b->status = a->status;
  b->deadline_ms = a->deadline_ms;
  b->parent_step = a->parent_step;
  b->max_recovery_attempts = a->max_recovery_attempts;
  b->traced = a->traced;
  return LODE_OK;
}

/* A workflow that goes on in this process with tracing on: its later steps
 * and its outcome must be rendered even if its row was recorded untraced
 * (tracing off then, or an older lode) or its final span was rendered
 * already (resumed after a cancel). */
static int trace_reopen(lode_wf *wf, char *err, size_t errlen) {
  int rc = lode_sysdb_trace_reopen(wf->ex->db, wf->row.id, err, errlen);
  if (rc == LODE_OK) wf->row.traced = 1;
  return rc;
}

int lode_wf_begin(lode_exec *ex, const lode_wf_start *s, lode_wf **wfp, lode_wf_outcome *done,
                  char *err, size_t errlen) {
  *wfp = NULL;
  memset(done, 0, sizeof *done);
  char idbuf[512];
  const char *id = s->id;
  if (!id && s->parent) {
    snprintf(idbuf, sizeof idbuf, "%s-%lld", s->parent->row.id, (long long)s->parent_pos);
    id = idbuf;
  } else if (!id) {
    lode_uuid7(idbuf);
    id = idbuf;
  }

  lode_wf_row nr;
  memset(&nr, 0, sizeof nr);
  char trace_id[37], span_id[37];
  lode_uuid7(span_id);
  if (s->parent) lode_strlcpy(trace_id, s->parent->row.trace_id ? s->parent->row.trace_id : span_id, sizeof trace_id);
  else lode_uuid7(trace_id);
  nr.id = (char *)id;
  nr.name = (char *)s->name;
  nr.status = LODE_WF_PENDING;
  nr.parent_id = s->parent ? s->parent->row.id : NULL;
  nr.parent_step = s->parent_pos;
  nr.input = (uint8_t *)s->input;
  nr.input_len = s->input_len;
  nr.pipeline = ex->pipeline;
  nr.version = ex->version;
  nr.executor_id = ex->id;
  nr.max_recovery_attempts =
      s->max_recovery_attempts > 0 ? s->max_recovery_attempts : LODE_DEFAULT_MAX_RECOVERY;
  nr.trace_id = trace_id;
  nr.span_id = span_id;
  nr.parent_span_id = s->parent ? s->parent->row.span_id : NULL;
  nr.deadline_ms = deadline_for(s->timeout_s, s->parent);
  int existed = 0;
  nr.created_at = lode_now_ms();
  lode_wf *wf = calloc(1, sizeof *wf);
  if (!wf) {
    snprintf(err, errlen, "out of memory");
    return LODE_ENOMEM;
  }
  wf->ex = ex;
  int rc;
  /* The span (and, for a top-level run, the trace) is this row: with
   * tracing on, the row says so and keeps the trace attributes, and
   * lode_trace_materialize renders its records later, off this path. */
  keep_trace_opts(wf, s->trace, s->parent != NULL);
  char *extra = NULL;
  if (ex->tracing) {
    nr.traced = 1;
    nr.trace_extra = extra = trace_extra_json(wf, NULL);
  }
  /* A child's parent must be recorded before it (see save_row). */
  rc = save_row_now(s->parent, err, errlen);
  if (rc != LODE_OK) {
    free(extra);
    goto fail;
  }
  int deferred = !s->parent && !s->id;
  /* With --sync full, the start of a workflow is committed without its own
   * fsync: WAL frames are written in order, so the first checkpoint's fsync
   * makes it durable too. A power loss before then loses a workflow that had
   * done nothing yet, which the same command simply starts again. */
  if (!deferred) {
    lode_sysdb_relax_sync(ex->db, 1);
    rc = lode_sysdb_wf_insert(ex->db, &nr, &existed, err, errlen);
    lode_sysdb_relax_sync(ex->db, 0);
    if (rc != LODE_OK) {
      free(extra);
      goto fail;
    }
  }
  if (!existed) {
    /* fresh: the row is what we inserted (or will); no need to read it back */
    rc = copy_row(&nr, &wf->row);
    free(extra);
    if (rc == LODE_OK && deferred) {
      wf->unsaved = 1;
      wf->row.started_at = nr.created_at;
      if ((ex->pipeline && !(wf->row.pipeline = strdup(ex->pipeline))) ||
          (ex->version && !(wf->row.version = strdup(ex->version))))
        rc = LODE_ENOMEM;
    }
    if (rc != LODE_OK) {
      snprintf(err, errlen, "out of memory");
      goto fail;
    }
    wf->row.created_at = nr.created_at;
    if (ex->tracing && !deferred) kick(ex);
    *wfp = wf;
    return LODE_OK;
  }
  free(extra);
  lode_wf_row_clear(&wf->row);
  rc = lode_sysdb_wf_get(ex->db, id, &wf->row, err, errlen);
  if (rc != LODE_OK) goto fail;
  if (strcmp(wf->row.name, s->name) != 0) {
    snprintf(err, errlen,
             "workflow id '%s' is already used by workflow '%s'; it cannot run '%s' "
             "(choose another --id)",
             id, wf->row.name, s->name);
    rc = LODE_ECONFLICT;
    goto fail;
  }
  if (existed) {
    if (finished(wf->row.status)) {
      take_outcome(&wf->row, done);
      lode_wf_free(wf);
      return LODE_OK;
    }
    if (wf->row.status == LODE_WF_PENDING) {
      const char *owner = wf->row.executor_id;
      int mine = owner && !strcmp(owner, ex->id);
      if (!mine && lode_sysdb_executor_alive(ex->db, owner)) {
        snprintf(err, errlen, "workflow %s is running in another live process", id);
        rc = LODE_EBUSY;
        goto fail;
      }
      int claimed = 0;
      rc = lode_sysdb_wf_claim(ex->db, id, owner, ex->id, !mine, &claimed, err, errlen);
      if (rc != LODE_OK) goto fail;
      if (!claimed) {
        snprintf(err, errlen, "workflow %s was claimed by another process", id);
        rc = LODE_EBUSY;
        goto fail;
      }
      if (!mine) wf->row.recovery_attempts++;
      if (wf->row.recovery_attempts > wf->row.max_recovery_attempts) {
        int changed;
        rc = lode_sysdb_wf_set_status(ex->db, id, LODE_WF_MAX_RECOVERY_ATTEMPTS_EXCEEDED,
                                      1u << LODE_WF_PENDING, &changed, err, errlen);
        if (rc != LODE_OK) goto fail; /* not marked: it must not look finished */
        lode_warn("workflow %s (%s) exceeded its %d recovery attempts; marked "
                  "MAX_RECOVERY_ATTEMPTS_EXCEEDED (resume it with: lode workflow resume %s)",
                  id, wf->row.name, wf->row.max_recovery_attempts, id);
        wf->row.status = LODE_WF_MAX_RECOVERY_ATTEMPTS_EXCEEDED;
        take_outcome(&wf->row, done);
        lode_wf_free(wf);
        return LODE_OK;
      }
      wf->resumed = 1;
      /* a resumed workflow (recovered, or `lode workflow resume` after a
       * cancel, whose final span may already be rendered) has its new steps
       * and its next outcome rendered too */
      if (ex->tracing) {
        rc = trace_reopen(wf, err, errlen);
        if (rc != LODE_OK) goto fail;
      }
    } else if (wf->row.status == LODE_WF_ENQUEUED) {
      /* the queue scheduler dequeues through the same path: claim it */
      int changed = 0;
      rc = lode_sysdb_wf_set_status(ex->db, id, LODE_WF_PENDING, 1u << LODE_WF_ENQUEUED,
                                    &changed, err, errlen);
      if (rc != LODE_OK) goto fail;
      int claimed = 0;
      rc = lode_sysdb_wf_claim(ex->db, id, wf->row.executor_id, ex->id, 0, &claimed, err,
                               errlen);
      if (rc != LODE_OK) goto fail;
      /* queued while tracing was off (or by an older lode): traced from here */
      if (ex->tracing && !wf->row.traced) {
        rc = trace_reopen(wf, err, errlen);
        if (rc != LODE_OK) goto fail;
      }
    }
    rc = lode_sysdb_steps_load(ex->db, id, &wf->steps, &wf->nsteps, err, errlen);
    if (rc != LODE_OK) goto fail;
  }
  *wfp = wf;
  return LODE_OK;
fail:
  lode_wf_free(wf);
  return rc;
}

int lode_exec_await(lode_exec *ex, const char *id, lode_wf_outcome *out, char *err,
                    size_t errlen) {
  memset(out, 0, sizeof *out);
  for (;;) {
    int status;
    int rc = lode_sysdb_wf_status(ex->db, id, &status, err, errlen);
    if (rc != LODE_OK) return rc;
    if (finished(status)) break;
    lode_sleep_s(0.05);
  }
  lode_wf_row r;
  int rc = lode_sysdb_wf_get(ex->db, id, &r, err, errlen);
  if (rc != LODE_OK) return rc;
  take_outcome(&r, out);
  lode_wf_row_clear(&r);
  return LODE_OK;
}

const char *lode_wf_id(const lode_wf *wf) { return wf->row.id; }
const char *lode_wf_name(const lode_wf *wf) { return wf->row.name; }
const char *lode_wf_trace_id(const lode_wf *wf) { return wf->row.trace_id; }
const char *lode_wf_span_id(const lode_wf *wf) { return wf->row.span_id; }
int lode_wf_resumed(const lode_wf *wf) { return wf->resumed; }
int lode_wf_traced(const lode_wf *wf) { return wf->row.traced; }
int lode_wf_recovery_attempts(const lode_wf *wf) { return wf->row.recovery_attempts; }

void lode_wf_input(const lode_wf *wf, const uint8_t **p, size_t *n) {
  *p = wf->row.input;
  *n = wf->row.input_len;
}

int lode_wf_step_next(lode_wf *wf, const char *name, int64_t *pos, const lode_step_row **rec,
                      char *err, size_t errlen) {
  *rec = NULL;
  *pos = ++wf->pos;
  while (wf->cursor < wf->nsteps && wf->steps[wf->cursor].step_no < *pos) wf->cursor++;
  if (wf->cursor < wf->nsteps && wf->steps[wf->cursor].step_no == *pos) {
    const lode_step_row *r = &wf->steps[wf->cursor++];
    if (strcmp(r->name, name) != 0) {
      snprintf(err, errlen,
               "workflow %s step %lld: recorded '%s' but the pipeline now calls '%s'; the "
               "workflow is not deterministic",
               wf->row.id, (long long)*pos, r->name, name);
      return LODE_ENONDET;
    }
    *rec = r;
    return LODE_OK;
  }
  /* about to run new work: honour a cancel seen by the last checkpoint (the
   * status is read inside each checkpoint's transaction, so this costs no
   * extra query on the hot path) */
  if (wf->cancelled) {
    if (wf->row.deadline_ms && lode_now_ms() >= wf->row.deadline_ms)
      snprintf(err, errlen, "workflow %s was cancelled: it reached its deadline (timeout)",
               wf->row.id);
    else
      snprintf(err, errlen, "workflow %s was cancelled", wf->row.id);
    return LODE_ECANCELLED;
  }
  return lode_wf_check_deadline(wf, err, errlen);
}

/* One transaction: the checkpoint, and a look at the workflow's status so a
 * cancel from any process stops it before its next step. */
int lode_wf_step_record(lode_wf *wf, const lode_step_row *row, const lode_span_rec *spans,
                        int nspans, char *err, size_t errlen) {
  lode_sysdb *db = wf->ex->db;
  int status = LODE_WF_PENDING;
  int rc;
  if (nspans == 0 && wf->ex->seen_version && !wf->unsaved) {
    /* The usual checkpoint is one row: one autocommit statement. Then, if
     * anything else was committed since this connection's last checkpoint
     * (the data version moved by more than this commit), the status is read
     * so a cancel from anywhere stops the workflow before its next step. */
    rc = lode_sysdb_step_put(db, wf->row.id, row, err, errlen);
    if (rc != LODE_OK) return rc;
    unsigned v = lode_sysdb_data_version(db);
    if (!v || v != wf->ex->seen_version + 1) {
      rc = lode_sysdb_wf_status(db, wf->row.id, &status, err, errlen);
      if (rc != LODE_OK) return rc;
      v = lode_sysdb_data_version(db);
    }
    wf->ex->seen_version = v;
    if (status == LODE_WF_CANCELLED) wf->cancelled = 1;
    if (row->span_input && wf->ex->tracing) kick(wf->ex);
    return LODE_OK;
  }
  rc = lode_sysdb_begin(db, err, errlen);
  if (rc != LODE_OK) return rc;
  /* nothing committed since this connection's last checkpoint (the data
   * version is unchanged): no one can have cancelled it, skip the read */
  unsigned v = lode_sysdb_data_version(db);
  int look = !v || v != wf->ex->seen_version;
  rc = save_row(wf, err, errlen);
  if (rc == LODE_OK) rc = lode_sysdb_step_put(db, wf->row.id, row, err, errlen);
  if (rc == LODE_OK && look) rc = lode_sysdb_wf_status(db, wf->row.id, &status, err, errlen);
  for (int i = 0; i < nspans && rc == LODE_OK && wf->ex->tracing; i++)
    if (lode_trace_writer_put_span(wf->ex->tw, &spans[i], err, errlen) != 0) rc = LODE_EDB;
  if (rc == LODE_OK) rc = lode_sysdb_commit(db, err, errlen);
  if (rc != LODE_OK) {
    lode_sysdb_rollback(db);
    return rc;
  }
  wf->ex->seen_version = lode_sysdb_data_version(db);
  wf->unsaved = 0;
  if (status == LODE_WF_CANCELLED) wf->cancelled = 1;
  if ((nspans || row->span_input) && wf->ex->tracing) kick(wf->ex);
  return LODE_OK;
}

int lode_wf_finish(lode_wf *wf, int status, const uint8_t *out, size_t out_len,
                   const char *error, const lode_span_extra *extra, lode_wf *parent,
                   const lode_step_row *prow, char *err, size_t errlen) {
  lode_exec *ex = wf->ex;
  /* the span's end is this row's outcome; only lode.trace.update values
   * need keeping besides it */
  int traced = ex->tracing && wf->row.traced;
  char *x = traced && extra ? trace_extra_json(wf, extra) : NULL;
  /* With --sync full, the outcome is committed without its own fsync, like
   * the start: it is a function of the checkpoints, which are durable (each
   * step's commit is synced, and WAL frames reach the disk in order, so the
   * next synced commit, or the checkpoint when the database is closed, makes
   * it durable too). A power loss before then leaves the workflow PENDING;
   * recovery replays its recorded steps, runs none of them again and records
   * the same outcome. */
  lode_sysdb_relax_sync(ex->db, 1);
  if (!x && !parent && !wf->unsaved) {
    int rc = lode_sysdb_wf_finish(ex->db, wf->row.id, status, out, out_len, error, err, errlen);
    lode_sysdb_relax_sync(ex->db, 0);
    if (rc == LODE_OK && traced) kick(ex);
    return rc;
  }
  int rc = lode_sysdb_begin(ex->db, err, errlen);
  if (rc == LODE_OK) rc = save_row(wf, err, errlen);
  if (rc == LODE_OK)
    rc = lode_sysdb_wf_finish(ex->db, wf->row.id, status, out, out_len, error, err, errlen);
  /* an inline child's outcome is also its parent's checkpoint: one commit */
  if (rc == LODE_OK && parent) rc = lode_sysdb_step_put(ex->db, parent->row.id, prow, err, errlen);
  if (rc == LODE_OK && x) rc = lode_sysdb_wf_set_trace_extra(ex->db, wf->row.id, x, err, errlen);
  if (rc == LODE_OK) rc = lode_sysdb_commit(ex->db, err, errlen);
  if (rc != LODE_OK) lode_sysdb_rollback(ex->db);
  else wf->unsaved = 0;
  lode_sysdb_relax_sync(ex->db, 0);
  if (rc == LODE_OK && traced) kick(ex);
  free(x);
  return rc;
}

int lode_wf_parent_step(const lode_wf *wf) { return wf->row.parent_id != NULL; }

void lode_wf_free(lode_wf *wf) {
  if (!wf) return;
  for (int i = 0; i < wf->ntags; i++) free(wf->tags[i]);
  free(wf->tags);
  free(wf->metadata_json);
  free(wf->phase);
  lode_wf_row_clear(&wf->row);
  lode_step_rows_free(wf->steps, wf->nsteps);
  free(wf);
}

int lode_exec_enqueue(lode_exec *ex, const lode_enqueue_opts *o, char id_out[512], char *err,
                      size_t errlen) {
  if (o->id) lode_strlcpy(id_out, o->id, 512);
  else if (o->parent)
    snprintf(id_out, 512, "%s-%lld", o->parent->row.id, (long long)o->parent_pos);
  else lode_uuid7(id_out);
  lode_wf tmp; /* the record, as the span writer sees it */
  memset(&tmp, 0, sizeof tmp);
  tmp.ex = ex;
  char trace_id[37], span_id[37];
  lode_uuid7(span_id);
  if (o->parent && o->parent->row.trace_id) lode_strlcpy(trace_id, o->parent->row.trace_id, 37);
  else lode_uuid7(trace_id);
  lode_wf_row *r = &tmp.row;
  r->id = id_out;
  r->name = (char *)o->name;
  r->parent_id = o->parent ? o->parent->row.id : NULL;
  r->parent_step = o->parent_pos;
  r->input = (uint8_t *)o->input;
  r->input_len = o->input_len;
  r->pipeline = ex->pipeline;
  r->version = ex->version;
  r->max_recovery_attempts =
      o->max_recovery_attempts > 0 ? o->max_recovery_attempts : LODE_DEFAULT_MAX_RECOVERY;
  r->trace_id = trace_id;
  r->span_id = span_id;
  r->parent_span_id = o->parent ? o->parent->row.span_id : NULL;
  r->queue = (char *)o->queue;
  r->created_at = lode_now_ms();
  r->deadline_ms = deadline_for(o->timeout_s, o->parent);
  r->traced = ex->tracing; /* its span is rendered from the row */
  int existed = 0;
  int rc = lode_sysdb_begin(ex->db, err, errlen);
  if (rc != LODE_OK) return rc;
  if (o->parent) rc = save_row(o->parent, err, errlen);
  if (rc == LODE_OK)
    rc = lode_sysdb_wf_enqueue(ex->db, r, o->priority, o->dedup_id, &existed, err, errlen);
  if (rc == LODE_OK && o->parent) {
    lode_step_row row;
    memset(&row, 0, sizeof row);
    row.step_no = o->parent_pos;
    row.name = (char *)o->name;
    row.status = LODE_WF_SUCCESS;
    row.attempts = 1;
    row.child_id = id_out;
    row.started_at = row.ended_at = r->created_at;
    rc = lode_sysdb_step_put(ex->db, o->parent->row.id, &row, err, errlen);
  }
  if (rc == LODE_OK) rc = lode_sysdb_commit(ex->db, err, errlen);
  if (rc != LODE_OK) {
    lode_sysdb_rollback(ex->db);
    return rc;
  }
  if (o->parent) o->parent->unsaved = 0;
  if (ex->tracing) kick(ex);
  return LODE_OK;
}

/* ---- rendering the records of workflows and steps -------------------------------- */

typedef struct mat {
  lode_exec ex; /* the span writer's view: db, tw, tracing */
  sqlite3 *s;
  sqlite3_stmt *steps, *open_ins, *open_upd, *open_del;
  int n, max, more, warned;
} mat;

static void mat_warn(mat *m, const char *what, const char *e) {
  if (m->warned++ < 3) lode_warn("trace store: %s: %s (the record is skipped)", what, e);
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

/* The spans of wf's steps after `after`, at most m->max - m->n of them.
 * Returns the last step number rendered (or `after`), -1 on a database error. */
static int64_t mat_steps(mat *m, const lode_wf_row *w, int64_t after, char *err, size_t errlen) {
  sqlite3_stmt *st = m->steps;
  sqlite3_bind_text(st, 1, w->id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, after);
  int limit = m->max - m->n + 1;
  sqlite3_bind_int(st, 3, limit);
  int64_t last = after;
  int r, rows = 0;
  while ((r = sqlite3_step(st)) == SQLITE_ROW) {
    if (m->n >= m->max) {
      m->more = 1;
      break;
    }
    rows++;
    int64_t no = sqlite3_column_int64(st, 0);
    if (!sqlite3_column_int(st, 9)) {
      /* no span kept in the row (written with the checkpoint, or none):
       * passed over for good, its output left unread (the last column) */
      last = no;
      continue;
    }
    const char *name = (const char *)sqlite3_column_text(st, 1);
    const char *status = (const char *)sqlite3_column_text(st, 2);
    const char *input = (const char *)sqlite3_column_text(st, 3);
    const char *error = (const char *)sqlite3_column_text(st, 4);
    int attempts = sqlite3_column_int(st, 5);
    const char *span_id = (const char *)sqlite3_column_text(st, 6);
    const uint8_t *out = sqlite3_column_blob(st, 11);
    size_t out_len = (size_t)sqlite3_column_bytes(st, 11);
    char *outj = out ? lode_span_json(out, out_len, 0) : NULL;
    char *meta = lode_step_span_meta(w->id, no, attempts, sqlite3_column_int(st, 10));
    char first[512];
    lode_span_rec sp;
    memset(&sp, 0, sizeof sp);
    sp.id = span_id;
    sp.trace_id = w->trace_id;
    sp.parent_span_id = w->span_id;
    sp.name = name;
    sp.type = "general";
    sp.start_ms = sqlite3_column_int64(st, 7);
    sp.end_ms = sqlite3_column_int64(st, 8);
    if (sp.end_ms < sp.start_ms) sp.end_ms = sp.start_ms;
    sp.input_json = input && *input ? input : NULL;
    sp.output_json = outj;
    sp.metadata_json = meta;
    if (status && !strcmp(status, "ERROR")) {
      const char *e = error ? error : "failed";
      lode_first_line(e, first, sizeof first);
      sp.error_type = "LuaError";
      sp.error_message = first;
      sp.error_traceback = e;
    }
    char e2[256];
    if (lode_trace_writer_put_span(m->ex.tw, &sp, e2, sizeof e2) != 0)
      mat_warn(m, name ? name : "step", e2);
    free(outj);
    free(meta);
    m->n++;
    last = no;
  }
  if (r != SQLITE_ROW && r != SQLITE_DONE) {
    snprintf(err, errlen, "reading steps of %s: %s", w->id, sqlite3_errmsg(m->s));
    last = -1;
  } else if (r == SQLITE_DONE && rows == limit) {
    m->more = 1; /* the LIMIT ran out on rows passed over: more may follow */
  }
  sqlite3_reset(m->steps);
  return last;
}

/* Renders what is new for one workflow: its steps after `after`, then its
 * span (and trace) as it stands when it is new or has finished. */
static int mat_workflow(mat *m, const char *id, int is_new, int64_t after, char *err,
                        size_t errlen) {
  lode_wf wf;
  memset(&wf, 0, sizeof wf);
  wf.ex = &m->ex;
  char e2[256];
  if (lode_sysdb_wf_get(m->ex.db, id, &wf.row, e2, sizeof e2) != LODE_OK) {
    lode_wf_row_clear(&wf.row);
    return LODE_OK; /* gone or unreadable: nothing to render */
  }
  int rc = LODE_OK;
  if (!wf.row.trace_id || !wf.row.span_id) goto close; /* not a traced row */
  int fin = finished(wf.row.status);
  int64_t last = after;
  if (wf.row.status != LODE_WF_ENQUEUED) {
    last = mat_steps(m, &wf.row, after, err, errlen);
    if (last < 0) {
      rc = LODE_EDB;
      goto done;
    }
  }
  int complete = fin && !m->more; /* every step is rendered: the end can go */
  lode_span_extra x;
  const char **xtags = NULL;
  cJSON *doc = NULL;
  int has_x = trace_extra_parse(&wf, &x, &xtags, &doc);
  if (complete) {
    const char *error = wf.row.error;
    if (!error && wf.row.status == LODE_WF_CANCELLED) error = "cancelled";
    if (!error && wf.row.status == LODE_WF_MAX_RECOVERY_ATTEMPTS_EXCEEDED)
      error = "the workflow exceeded its recovery attempts";
    int64_t end = wf.row.ended_at > 0 ? wf.row.ended_at : wf.row.updated_at;
    if (end < wf.row.created_at) end = wf.row.created_at;
    if (wf_trace_put(&wf, end, wf.row.output, wf.row.output_len, error, has_x ? &x : NULL, e2,
                     sizeof e2) != LODE_OK)
      mat_warn(m, wf.row.name, e2);
    m->n += 1 + !wf.row.parent_id;
  } else if (is_new) {
    if (wf_trace_put(&wf, 0, NULL, 0, NULL, NULL, e2, sizeof e2) != LODE_OK)
      mat_warn(m, wf.row.name, e2);
    m->n += 1 + !wf.row.parent_id;
  }
  free(xtags);
  cJSON_Delete(doc);
  sqlite3_stmt *st = complete ? m->open_del : is_new ? m->open_ins
                                            : last > after ? m->open_upd : NULL;
  if (st) {
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (st != m->open_del) sqlite3_bind_int64(st, 2, last);
    if (sqlite3_step(st) != SQLITE_DONE) {
      snprintf(err, errlen, "recording trace progress of %s: %s", id, sqlite3_errmsg(m->s));
      rc = LODE_EDB;
    }
    sqlite3_reset(st);
  }
done:
  for (int i = 0; i < wf.ntags; i++) free(wf.tags[i]);
  free(wf.tags);
  free(wf.metadata_json);
  free(wf.phase);
close:
  lode_wf_row_clear(&wf.row);
  return rc;
}

/* A PENDING workflow parked by an earlier pass (its owner was dead) and not
 * claimed since: nothing of it can have changed. */
#define PARKED                                                                   \
  "w.status='PENDING' AND o.parked_owner IS NOT NULL AND o.parked_owner IS w.executor_id"

/* Is there anything to render? A read, so an idle exporter never takes the
 * write lock. */
static int mat_pending(sqlite3 *s) {
  static const char *const q =
      "SELECT EXISTS(SELECT 1 FROM workflows WHERE rowid > "
      " (SELECT value FROM trace_cursor WHERE name='workflows'))"
      " OR EXISTS(SELECT 1 FROM trace_open o JOIN workflows w ON w.id=o.workflow_id"
      "  WHERE NOT (" PARKED ") AND (w.status NOT IN ('PENDING','ENQUEUED')"
      "  OR EXISTS(SELECT 1 FROM steps p WHERE p.workflow_id=o.workflow_id"
      "  AND p.step_no>o.steps_done AND p.span_input IS NOT NULL)))";
  sqlite3_stmt *st;
  int yes = 1;
  if (sqlite3_prepare_v2(s, q, -1, &st, NULL) != SQLITE_OK) return 1;
  if (sqlite3_step(st) == SQLITE_ROW) yes = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  return yes;
}

int lode_trace_materialize(lode_sysdb *db, int max, int *more, char *err, size_t errlen) {
  *more = 0;
  mat m;
  memset(&m, 0, sizeof m);
  m.s = lode_sysdb_sqlite(db);
  m.max = max > 0 ? max : 1000;
  if (!mat_pending(m.s)) return LODE_OK;
  m.ex.db = db;
  m.ex.tracing = 1;
  int rc = LODE_EDB;
  char **ids = NULL;
  int64_t *after = NULL;
  int nids = 0;
  if (!(m.ex.tw = lode_trace_writer_new(m.s, err, errlen))) return LODE_EDB;
  if (sqlite3_prepare_v2(m.s,
                         "SELECT step_no,name,status,span_input,error,attempts,span_id,started_at,"
                         "ended_at,span_id IS NOT NULL AND span_input IS NOT NULL,span_recovery,"
                         "output FROM steps WHERE workflow_id=?1 AND step_no>?2"
                         " ORDER BY step_no LIMIT ?3",
                         -1, &m.steps, NULL) ||
      sqlite3_prepare_v2(m.s,
                         "INSERT OR REPLACE INTO trace_open(workflow_id, steps_done)"
                         " VALUES(?1, ?2)",
                         -1, &m.open_ins, NULL) ||
      sqlite3_prepare_v2(m.s, "UPDATE trace_open SET steps_done=?2 WHERE workflow_id=?1", -1,
                         &m.open_upd, NULL) ||
      sqlite3_prepare_v2(m.s, "DELETE FROM trace_open WHERE workflow_id=?1", -1, &m.open_del,
                         NULL)) {
    snprintf(err, errlen, "preparing the trace renderer: %s", sqlite3_errmsg(m.s));
    goto out;
  }
  if ((rc = lode_sysdb_begin(db, err, errlen)) != LODE_OK) goto out;
  /* 1. workflows recorded since the last pass: rowids grow in commit order
   * (one writer at a time; workflow rows are never deleted) */
  sqlite3_stmt *st = NULL;
  int64_t cursor = 0, seen = 0;
  rc = LODE_EDB;
  if (sqlite3_prepare_v2(m.s, "SELECT value FROM trace_cursor WHERE name='workflows'", -1, &st,
                         NULL) != SQLITE_OK)
    goto dberr;
  if (sqlite3_step(st) == SQLITE_ROW) cursor = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  seen = cursor;
  if (sqlite3_prepare_v2(m.s,
                         "SELECT rowid, id, traced FROM workflows WHERE rowid>?1 ORDER BY rowid"
                         " LIMIT 500",
                         -1, &st, NULL) != SQLITE_OK)
    goto dberr;
  sqlite3_bind_int64(st, 1, cursor);
  while (sqlite3_step(st) == SQLITE_ROW) {
    char **p = realloc(ids, (size_t)(nids + 1) * sizeof *ids);
    int64_t *a = p ? realloc(after, (size_t)(nids + 1) * sizeof *after) : NULL;
    if (p) ids = p;
    if (!a) break;
    after = a;
    after[nids] = sqlite3_column_int64(st, 0); /* here: the rowid */
    ids[nids] = NULL;
    if (sqlite3_column_int(st, 2) == 1 &&
        !(ids[nids] = strdup((const char *)sqlite3_column_text(st, 1))))
      break;
    nids++;
  }
  sqlite3_finalize(st);
  st = NULL;
  int full_page = nids == 500;
  /* a workflow stopped half-way (the budget) is kept open with its
   * progress, so the cursor may pass it */
  for (int i = 0; i < nids && !m.more; i++) {
    if (ids[i] && mat_workflow(&m, ids[i], 1, 0, err, errlen) != LODE_OK) goto rollback;
    seen = after[i];
  }
  if (full_page) m.more = 1;
  if (seen > cursor) {
    char sql[128];
    snprintf(sql, sizeof sql, "UPDATE trace_cursor SET value=%lld WHERE name='workflows'",
             (long long)seen);
    if (sqlite3_exec(m.s, sql, NULL, NULL, NULL) != SQLITE_OK) goto dberr;
  }
  for (int i = 0; i < nids; i++) free(ids[i]);
  nids = 0;
  /* 2. workflows whose spans are not final yet */
  if (!m.more && m.n < m.max) {
    if (sqlite3_prepare_v2(m.s,
                           "SELECT o.workflow_id, o.steps_done, w.status='PENDING', w.executor_id"
                           " FROM trace_open o JOIN workflows w ON w.id=o.workflow_id"
                           " WHERE w.status<>'ENQUEUED' AND NOT (" PARKED ")",
                           -1, &st, NULL) != SQLITE_OK)
      goto dberr;
    char **owner = NULL; /* a PENDING workflow's owner, else NULL */
    while (sqlite3_step(st) == SQLITE_ROW) {
      char **p = realloc(ids, (size_t)(nids + 1) * sizeof *ids);
      int64_t *a = p ? realloc(after, (size_t)(nids + 1) * sizeof *after) : NULL;
      char **w = a ? realloc(owner, (size_t)(nids + 1) * sizeof *owner) : NULL;
      if (p) ids = p;
      if (a) after = a;
      if (!w) break;
      owner = w;
      const char *ex_id = (const char *)sqlite3_column_text(st, 3);
      owner[nids] = sqlite3_column_int(st, 2) && ex_id ? strdup(ex_id) : NULL;
      if (!(ids[nids] = strdup((const char *)sqlite3_column_text(st, 0)))) {
        free(owner[nids]);
        break;
      }
      after[nids++] = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    st = NULL;
    int failed = 0;
    sqlite3_stmt *park = NULL;
    for (int i = 0; i < nids && !m.more && m.n < m.max && !failed; i++) {
      if (mat_workflow(&m, ids[i], 0, after[i], err, errlen) != LODE_OK) failed = 1;
      /* its owner is gone: what it left is rendered now; park it until
       * another process claims it */
      else if (owner[i] && !m.more && !lode_sysdb_executor_alive(db, owner[i])) {
        if (!park && sqlite3_prepare_v2(m.s,
                                        "UPDATE trace_open SET parked_owner=?2 WHERE"
                                        " workflow_id=?1", -1, &park, NULL) != SQLITE_OK) {
          failed = 2;
          break;
        }
        sqlite3_bind_text(park, 1, ids[i], -1, SQLITE_STATIC);
        sqlite3_bind_text(park, 2, owner[i], -1, SQLITE_STATIC);
        if (sqlite3_step(park) != SQLITE_DONE) failed = 2;
        sqlite3_reset(park);
      }
    }
    sqlite3_finalize(park);
    for (int i = 0; i < nids; i++) free(owner[i]);
    free(owner);
    if (failed == 2)
      snprintf(err, errlen, "parking a workflow's trace: %s", sqlite3_errmsg(m.s));
    if (failed) goto rollback;
  }
  if (m.n >= m.max) m.more = 1;
  rc = lode_sysdb_commit(db, err, errlen);
  if (rc != LODE_OK) lode_sysdb_rollback(db);
  *more = m.more;
  goto out;
dberr:
  snprintf(err, errlen, "rendering trace records: %s", sqlite3_errmsg(m.s));
  sqlite3_finalize(st);
rollback:
  rc = LODE_EDB;
  lode_sysdb_rollback(db);
out:
  for (int i = 0; i < nids; i++) free(ids[i]);
  free(ids);
  free(after);
  sqlite3_finalize(m.steps);
  sqlite3_finalize(m.open_ins);
  sqlite3_finalize(m.open_upd);
  sqlite3_finalize(m.open_del);
  lode_trace_writer_free(m.ex.tw);
  return rc;
}
