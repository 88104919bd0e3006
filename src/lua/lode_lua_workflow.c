/* lode_lua_workflow.c - workflows and steps in Lua, driving the executor. */
#include "lua/lode_lua_workflow.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/log.h"
#include "base/util.h"
#include "lua/lode_lua_codec.h"
#include "lua/lode_lua_internal.h"
#include "lua/lode_lua_trace.h"

#define WORKFLOW_MT "lode.workflow"
#define STEP_MT "lode.step"
#define TRACK_MT "lode.track"
#define HOST_MT "lode.host"
#define ERRLEN LODE_LUA_ERRLEN
#define get_host lode__host

static const char host_key = 'h';      /* registry: the host userdata */
static const char workflows_key = 'w'; /* registry: name -> workflow object */



/* ---- host ------------------------------------------------------------------ */

static int host_gc(lua_State *L) {
  host *h = luaL_checkudata(L, 1, HOST_MT);
  lode_exec_close(h->ex);
  h->ex = NULL;
  free(h->db_path);
  free(h->pipeline);
  free(h->version);
  h->db_path = h->pipeline = h->version = NULL;
  return 0;
}

host *lode__host(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &host_key);
  host *h = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (h) return h;
  h = lua_newuserdatauv(L, sizeof *h, 0);
  memset(h, 0, sizeof *h);
  h->loading = 1; /* a new state loads code first (the CLI closes it after) */
  if (luaL_newmetatable(L, HOST_MT)) {
    lua_pushcfunction(L, host_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &host_key);
  return h;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

void lode_host_configure(lua_State *L, const lode_host_opts *o) {
  host *h = get_host(L);
  lode_exec_close(h->ex);
  h->ex = NULL;
  free(h->db_path);
  free(h->pipeline);
  free(h->version);
  h->db_path = dup_or_null(o->db_path);
  h->pipeline = dup_or_null(o->pipeline);
  h->version = dup_or_null(o->version);
  h->sync_full = o->sync_full;
}

lode_exec *lode_host_exec(lua_State *L, char *err, size_t errlen) {
  host *h = get_host(L);
  if (h->ex) return h->ex;
  const char *path = h->db_path ? h->db_path : lode_sysdb_default_path();
  lode_exec_opts o = {path, h->sync_full, h->pipeline, h->version};
  if (lode_exec_open(&o, &h->ex, err, errlen) != LODE_OK) return NULL;
  return h->ex;
}

void lode_host_set_loading(lua_State *L, int on) { get_host(L)->loading = on; }

void lode_host_set_timeout(lua_State *L, double seconds) { get_host(L)->main_timeout = seconds; }

const char *lode_host_last_id(lua_State *L) {
  host *h = get_host(L);
  return h->last_top_id[0] ? h->last_top_id : NULL;
}

/* Raises a Lua error after the caller has freed what it owns. */
static int raise_msg(lua_State *L, const char *msg) {
  lua_pushstring(L, msg);
  return lua_error(L);
}

/* The error of lode_wf_step_next: a cancel (or a deadline, which cancels)
 * is no bug of the caller's code, so it carries no traceback. */
static int raise_next(lua_State *L, int rc, const char *msg) {
  return rc == LODE_ECANCELLED ? lode__raise_fail(L, msg) : raise_msg(L, msg);
}

lode_exec *lode__need_exec(lua_State *L) {
  char err[ERRLEN];
  lode_exec *ex = lode_host_exec(L, err, sizeof err);
  if (!ex) raise_msg(L, err);
  return ex;
}
#define need_exec lode__need_exec

/* ---- options ---------------------------------------------------------------- */

typedef struct retry_opts {
  int max_attempts;
  double interval, backoff;
  double timeout;         /* the step's own limit per attempt (s), 0: none */
  int64_t wf_deadline_ms; /* its workflow's deadline, 0: none */
} retry_opts;

/* Reads a number option checked at declaration (lode__check_opts), so
 * reading it never raises: callers may hold allocations. */
static double opt_number(lua_State *L, int t, const char *k, double def) {
  lua_getfield(L, t, k);
  double v = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : def;
  lua_pop(L, 1);
  return v;
}

/* What each declaration accepts (docs/lua-api.md, docs/concurrency.md,
 * docs/tracing.md). */
static const lode_opt retry_spec[] = {{"max_attempts", LODE_OPT_POS_INT, NULL},
                                      {"interval", LODE_OPT_NONNEG_NUMBER, NULL},
                                      {"backoff", LODE_OPT_NUMBER_GE1, NULL},
                                      {NULL, 0, NULL}};
static const lode_opt step_spec[] = {{"retries", LODE_OPT_TABLE, retry_spec},
                                     {"timeout", LODE_OPT_SECONDS, NULL},
                                     {NULL, 0, NULL}};
static const lode_opt workflow_spec[] = {{"timeout", LODE_OPT_SECONDS, NULL},
                                         {"max_recovery_attempts", LODE_OPT_POS_INT, NULL},
                                         {"phase", LODE_OPT_STRING, NULL},
                                         {"tags", LODE_OPT_STRINGS, NULL},
                                         {"metadata", LODE_OPT_TABLE, NULL},
                                         {NULL, 0, NULL}};
static const lode_opt track_spec[] = {{"type", LODE_OPT_STRING, NULL}, {NULL, 0, NULL}};

/* ---- declaring ----------------------------------------------------------------- */

/* Checks a declaration's name (1), phase, function (2) and options (3). */
static void check_decl(lua_State *L, const char *api, const char *what, const lode_opt *spec) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  if (n == 0 || n > 200)
    luaL_error(L, "%s: a %s name must be 1 to 200 characters, got '%s'", api, what, s);
  lode__check_declare(L, api, s);
  if (lua_type(L, 2) != LUA_TFUNCTION)
    luaL_error(L, "%s '%s': the second argument must be a function (got %s)", api, s,
               luaL_typename(L, 2));
  lode__check_opts(L, 3, api, s, spec);
}

/* Builds {name=, fn=, opts=} with metatable mt. */
static void new_callable(lua_State *L, const char *mt) {
  lua_createtable(L, 0, 4);
  lua_pushvalue(L, 1);
  lua_setfield(L, -2, "name");
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, "fn");
  if (lua_istable(L, 3)) lua_pushvalue(L, 3);
  else lua_newtable(L);
  lua_setfield(L, -2, "opts");
  luaL_setmetatable(L, mt);
}

static int l_workflow(lua_State *L) {
  check_decl(L, "lode.workflow", "workflow", workflow_spec);
  const char *name = lua_tostring(L, 1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &workflows_key); /* [.., wfs] */
  if (lua_getfield(L, -1, name) != LUA_TNIL)
    return luaL_error(L, "workflow '%s' is declared twice; workflow names must be unique",
                      name);
  lua_pop(L, 1);
  new_callable(L, WORKFLOW_MT); /* [.., wfs, obj] */
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, name);
  return 1;
}

static int l_step(lua_State *L) {
  check_decl(L, "lode.step", "step", step_spec);
  new_callable(L, STEP_MT);
  return 1;
}

static int l_track(lua_State *L) {
  check_decl(L, "lode.track", "tracked function", track_spec);
  new_callable(L, TRACK_MT);
  return 1;
}

/* Checkpoints, at position pos of wf, the value on top of the stack (ok) or
 * the error message on top of it (!ok): lode.now/lode.uuid, lode.sleep's
 * wake-up time, a handle's result, a child's outcome. The stack is left as
 * it was. */
int lode__record_top(lua_State *L, lode_wf *wf, int64_t pos, const char *name, int ok,
                     const char *child_id, int64_t started, char *err, size_t errlen) {
  lode_step_row row;
  memset(&row, 0, sizeof row);
  row.step_no = pos;
  row.name = (char *)name;
  row.attempts = 1;
  row.ended_at = lode_now_ms();
  row.started_at = started ? started : row.ended_at;
  row.child_id = (char *)child_id;
  lode_buf out;
  lode_buf_init(&out, 0);
  if (ok) {
    row.status = LODE_WF_SUCCESS;
    char eerr[256];
    if (lode_lua_encode(L, -1, &out, eerr, sizeof eerr) == 0) {
      row.output = out.p;
      row.output_len = out.len;
    }
  } else {
    row.status = LODE_WF_ERROR;
    row.error = (char *)lua_tostring(L, -1);
  }
  int rc = lode_wf_step_record(wf, &row, NULL, 0, err, errlen);
  lode_buf_free(&out);
  return rc;
}

/* ---- running steps -------------------------------------------------------------- */

static void get_retry(lua_State *L, int obj, retry_opts *r) {
  r->max_attempts = 1;
  r->interval = 1.0;
  r->backoff = 2.0;
  r->wf_deadline_ms = 0;
  lua_getfield(L, obj, "opts");
  r->timeout = lua_istable(L, -1) ? opt_number(L, lua_gettop(L), "timeout", 0) : 0;
  lua_getfield(L, -1, "retries");
  if (lua_istable(L, -1)) {
    int t = lua_gettop(L);
    r->max_attempts = (int)opt_number(L, t, "max_attempts", 1);
    r->interval = opt_number(L, t, "interval", 1.0);
    r->backoff = opt_number(L, t, "backoff", 2.0);
  }
  lua_pop(L, 2);
}

/* Pushes the decoded checkpoint, or raises the recorded error. */
static int replay(lua_State *L, const lode_step_row *rec, const char *what) {
  char err[ERRLEN];
  if (rec->status != LODE_WF_SUCCESS) {
    lua_pushstring(L, rec->error ? rec->error : "step failed");
    return lua_error(L);
  }
  if (!rec->output) {
    lua_pushnil(L);
    return 1;
  }
  if (lode_lua_decode(L, rec->output, rec->output_len, err, sizeof err))
    return luaL_error(L, "%s '%s': recorded output cannot be read: %s", what, rec->name, err);
  return 1;
}

/* Makes attempt number `attempt` of fn (the object at obj) with the nargs
 * values at args_idx, under the step's time limits; the errors so far are
 * the string at err_idx (the top). Returns 1 when it succeeded (its one
 * result replaces the errors; top is err_idx), 0 when it failed (its error
 * is appended to them; a step timeout is such a failure), -2 when its
 * workflow's deadline interrupted it (likewise appended), -3 when the limit
 * of a step it runs inside interrupted it (likewise; the outer attempt
 * sees that limit as its own interrupt, this one is not retried), -1 when it
 * returned several values (the message replaces them; not retried). If
 * `att` is given, the attempt's times and error are recorded there (up to
 * max_att; errors malloc'd). */
static int one_attempt(lua_State *L, const retry_opts *r, int attempt, int obj, int args_idx,
                       int nargs, const char *name, lode_attempt *att, int max_att,
                       int err_idx) {
  luaL_Buffer errs;
  int64_t t0 = lode_now_ms();
  lua_getfield(L, obj, "fn");
  for (int i = 0; i < nargs; i++) lua_pushvalue(L, args_idx + i);
  int base = lua_gettop(L) - nargs;
  lode_limit_saved saved;
  lode__limit_arm(L, name, r->timeout, r->wf_deadline_ms, &saved);
  int ok = lode_lua_pcall(L, nargs, LUA_MULTRET) == LUA_OK;
  int hit = lode__limit_disarm(L, &saved);
  if (att && attempt <= max_att) {
    att[attempt - 1].start_ms = t0;
    att[attempt - 1].end_ms = lode_now_ms();
    att[attempt - 1].error = ok ? NULL : strdup(lode_lua_errstr(L, -1));
  }
  if (ok) {
    int nres = lua_gettop(L) - base + 1;
    if (nres > 1) {
      lua_settop(L, err_idx);
      lua_pushfstring(L,
                      "step '%s' returned %d values; a step returns one value (use a "
                      "table for several)",
                      name, nres);
      lua_replace(L, err_idx);
      return -1;
    }
    if (nres == 0) lua_pushnil(L);
    lua_replace(L, err_idx);
    lua_settop(L, err_idx);
    return 1;
  }
  /* [.., errs, msg] */
  luaL_buffinit(L, &errs);
  lua_pushvalue(L, err_idx);
  luaL_addvalue(&errs);
  if (r->max_attempts > 1) {
    lua_pushfstring(L, "attempt %d of %d: ", attempt, r->max_attempts);
    luaL_addvalue(&errs);
  }
  /* the traceback once: the last attempt's (the others had the same one) */
  size_t mlen;
  const char *m = lua_tolstring(L, -2, &mlen);
  const char *tb = attempt < r->max_attempts && m ? strstr(m, "\nstack traceback:\n") : NULL;
  if (tb) {
    luaL_addlstring(&errs, m, (size_t)(tb - m));
  } else {
    lua_pushvalue(L, -2);
    luaL_addvalue(&errs);
  }
  luaL_addchar(&errs, '\n');
  luaL_pushresult(&errs); /* [.., errs, msg, joined] */
  lua_replace(L, err_idx);
  lua_settop(L, err_idx);
  return hit == LODE_LIMIT_WORKFLOW ? -2 : hit == LODE_LIMIT_OUTER ? -3 : 0;
}

/* Seconds to wait after failed attempt number `attempt`. */
static double backoff_s(const retry_opts *r, int attempt) {
  return r->interval * pow(r->backoff, attempt - 1);
}

/* Calls fn with the nargs values at args_idx, once per attempt, under the
 * retry policy, waiting between attempts on this thread (steps outside a
 * scheduled task; a step inside one waits by yielding, see step_cont). On
 * success leaves exactly one result on the stack and returns the number of
 * attempts; on failure leaves the joined errors (every attempt's) and
 * returns -attempts. */
static int run_attempts(lua_State *L, const retry_opts *ro, int obj, int args_idx, int nargs,
                        const char *name) {
  lua_pushliteral(L, ""); /* errors accumulate here (a buffer would pin the stack) */
  int err_idx = lua_gettop(L);
  for (int attempt = 1; attempt <= ro->max_attempts; attempt++) {
    int r = one_attempt(L, ro, attempt, obj, args_idx, nargs, name, NULL, 0, err_idx);
    if (r > 0) return attempt;
    /* -2 (a workflow deadline inherited from the enclosing step) and -3
     * (the enclosing step's own limit): the outer step's interrupt, not
     * retried here */
    if (r < 0) return -attempt;
    if (attempt < ro->max_attempts) {
      double delay = backoff_s(ro, attempt);
      lode_debug("step '%s' attempt %d failed; retrying in %.3fs", name, attempt, delay);
      lode_sleep_s(delay);
    }
  }
  return -ro->max_attempts;
}

static void free_attempts(lode_attempt *att, int n) {
  for (int i = 0; i < n; i++) free(att[i].error);
  free(att);
}

/* JSON of the nargs values at args_idx, for a span's input (NULL if
 * tracing is off or they cannot be encoded: the step reports that). */
static char *args_json(lua_State *L, lode_exec *ex, int args_idx, int nargs) {
  if (!ex || !lode_exec_tracing(ex)) return NULL;
  lode_buf b;
  lode_buf_init(&b, 0);
  char err[256];
  char *j = NULL;
  if (lode_lua_encode_args_preview(L, args_idx, nargs, LODE_SPAN_MAX_STR, LODE_SPAN_MAX_JSON, &b,
                                   err, sizeof err) == 0)
    j = lode_span_json(b.p, b.len, 1);
  lode_buf_free(&b);
  return j;
}

/* JSON of the value at idx (a step's or tracked function's result). */
static char *value_json(lua_State *L, lode_exec *ex, int idx) {
  if (!ex || !lode_exec_tracing(ex)) return NULL;
  lode_buf b;
  lode_buf_init(&b, 0);
  char err[256];
  char *j = NULL;
  if (lode_lua_encode_preview(L, idx, LODE_SPAN_MAX_STR, LODE_SPAN_MAX_JSON, &b, err,
                              sizeof err) == 0)
    j = lode_span_json(b.p, b.len, 0);
  lode_buf_free(&b);
  return j;
}

/* A traced call that is not a checkpoint: a step outside any workflow, or a
 * tracked function. Leaves its results (or raises its error). */
static int plain_traced(lua_State *L, int kind, int nargs, const char *name, const char *type) {
  host *h = get_host(L);
  char err[ERRLEN];
  lode_exec *ex = lode_host_exec(L, err, sizeof err); /* NULL: untraced, still runs */
  retry_opts ro;
  if (kind == LODE_FRAME_STEP) get_retry(L, 1, &ro);
  lode_span_frame *f = lode__frame_push(L, kind, name, type);
  char *in = args_json(L, ex, 2, nargs);
  int in_step = h->in_step;
  int top = lua_gettop(L);
  int ok;
  if (kind == LODE_FRAME_STEP) {
    h->in_step = 1;
    ok = run_attempts(L, &ro, 1, 2, nargs, name) > 0;
  } else {
    lua_getfield(L, 1, "fn");
    for (int i = 0; i < nargs; i++) lua_pushvalue(L, 2 + i);
    ok = lode_lua_pcall(L, nargs, LUA_MULTRET) == LUA_OK;
  }
  h->in_step = in_step;
  int nres = lua_gettop(L) - top;
  char *out = ok && nres > 0 ? value_json(L, ex, top + 1) : NULL;
  int rc = lode__frame_finish(L, f, ex, in, out, ok ? NULL : lode_lua_errstr(L, -1), err,
                              sizeof err);
  lode__frame_pop(L, f);
  free(in);
  free(out);
  if (rc != LODE_OK) lode_warn("span '%s' not recorded: %s", name, err);
  if (!ok) return lua_error(L);
  return nres;
}

/* A step's run in a workflow, kept in a userdata on the stack so it
 * survives the yields of its retry back-off; __gc frees what a step that
 * never finished (its workflow abandoned while waiting) still holds. */
#define STEP_RUN_MT "lode.step_run"
typedef struct step_run {
  char *in;          /* JSON of the arguments (span input), or NULL */
  lode_attempt *att; /* each attempt's times and error (tracing), or NULL */
  int max_att;
  lode_span_frame *f; /* its span frame (owned by the frame chain) */
  retry_opts ro;
  int64_t pos, started;
  int nargs, attempt;
  char *errs; /* the failed attempts' errors so far (malloc'd), or NULL: a
               * step that succeeds on a later attempt records them */
} step_run;

static int step_run_gc(lua_State *L) {
  step_run *sr = luaL_checkudata(L, 1, STEP_RUN_MT);
  free(sr->in);
  sr->in = NULL;
  free(sr->errs);
  sr->errs = NULL;
  if (sr->att) free_attempts(sr->att, sr->max_att);
  sr->att = NULL;
  return 0;
}

static int step_finish(lua_State *L, step_run *sr, int attempts);

/* A step stopped by its workflow's deadline (waiting to retry, or
 * interrupted while running): like a cancel seen before a step starts,
 * nothing is recorded for the step, so a resumed workflow runs it again (as
 * lode.sleep and lode_wf_step_next do). Raises msg. */
static int step_abandon(lua_State *L, step_run *sr, const char *msg) {
  if (sr->f) lode__frame_pop(L, sr->f);
  sr->f = NULL;
  free(sr->in);
  sr->in = NULL;
  if (sr->att) free_attempts(sr->att, sr->max_att);
  sr->att = NULL;
  return lode__raise_fail(L, msg);
}

/* The attempts of a step in a workflow. Stack: [self, args..., sr, errs].
 * Between attempts, inside a scheduled task, the back-off yields like
 * lode.sleep (other workflows of this thread run meanwhile); elsewhere it
 * sleeps. */
static int step_cont(lua_State *L, int st, lua_KContext ctx) {
  int sr_idx = (int)ctx, err_idx = sr_idx + 1;
  step_run *sr = lua_touserdata(L, sr_idx);
  host *h = get_host(L);
  lua_getfield(L, 1, "name");
  const char *name = lua_tostring(L, -1);
  lua_pop(L, 1); /* still anchored by self.name */
  lua_settop(L, err_idx);
  if (st == LUA_YIELD) { /* back from a back-off */
    char derr[ERRLEN];
    if (lode_wf_check_deadline(h->current, derr, sizeof derr) != LODE_OK)
      return step_abandon(L, sr, derr);
  }
  h->in_step = 1;
  for (;;) {
    int a = ++sr->attempt;
    int r = one_attempt(L, &sr->ro, a, 1, 2, sr->nargs, name, sr->att, sr->max_att, err_idx);
    if (r == -2) { /* interrupted at its workflow's deadline */
      char derr[ERRLEN];
      h->in_step = 0;
      if (lode_wf_check_deadline(h->current, derr, sizeof derr) == LODE_OK)
        snprintf(derr, sizeof derr, "workflow %s reached its deadline (timeout)",
                 lode_wf_id(h->current));
      return step_abandon(L, sr, derr);
    }
    if (r == -3) { /* an enclosing step's limit (a workflow run inside a
                    * step): nothing recorded, the error goes up to it */
      h->in_step = 0;
      return step_abandon(L, sr, lua_tostring(L, err_idx));
    }
    if (r != 0 || a >= sr->ro.max_attempts) {
      h->in_step = 0;
      return step_finish(L, sr, r > 0 ? a : -a);
    }
    double delay = backoff_s(&sr->ro, a);
    lode_debug("step '%s' attempt %d failed; retrying in %.3fs", name, a, delay);
    free(sr->errs);
    sr->errs = strdup(lua_tostring(L, err_idx));
    h->in_step = 0;
    if (lode__sched_in_task(L)) {
      lode__sched_wait_until(L, lode_now_ms() + (int64_t)(delay * 1000.0));
      return lua_yieldk(L, 0, ctx, step_cont);
    }
    h->in_step = 1;
    lode_sleep_s(delay);
  }
}

static int step_call(lua_State *L) {
  /* [self, args...] */
  int nargs = lua_gettop(L) - 1;
  host *h = get_host(L);
  lua_getfield(L, 1, "name");
  const char *name = lua_tostring(L, -1);
  lua_pop(L, 1); /* still anchored by self.name */
  lode_wf *wf = h->current;

  if (!wf || h->in_step) return plain_traced(L, LODE_FRAME_STEP, nargs, name, "general");

  char err[ERRLEN];
  int64_t pos;
  const lode_step_row *rec;
  int rc = lode_wf_step_next(wf, name, &pos, &rec, err, sizeof err);
  if (rc != LODE_OK) return raise_next(L, rc, err);
  if (rec) return replay(L, rec, "step");

  lode_test_crash_point(name);
  lode_exec *ex = h->ex;
  int tracing = ex && lode_exec_tracing(ex);
  lua_checkstack(L, 16);
  /* safe-empty first: whatever raises after this leaves __gc to free */
  step_run *sr = lua_newuserdatauv(L, sizeof *sr, 0);
  memset(sr, 0, sizeof *sr);
  if (luaL_newmetatable(L, STEP_RUN_MT)) {
    lua_pushcfunction(L, step_run_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  int sr_idx = lua_gettop(L);
  get_retry(L, 1, &sr->ro);
  sr->ro.wf_deadline_ms = lode_wf_deadline(wf);
  sr->max_att = sr->ro.max_attempts < 1000 ? sr->ro.max_attempts : 1000;
  sr->pos = pos;
  sr->nargs = nargs;
  sr->f = tracing ? lode__frame_push(L, LODE_FRAME_STEP, name, "general") : NULL;
  sr->in = tracing ? args_json(L, ex, 2, nargs) : NULL;
  sr->att = tracing ? calloc((size_t)sr->max_att, sizeof *sr->att) : NULL;
  sr->started = lode_now_ms();
  lua_pushliteral(L, ""); /* errors accumulate here */
  return step_cont(L, LUA_OK, (lua_KContext)sr_idx);
}

/* Records the step's outcome (the result or the joined errors on top) and
 * returns its result or raises its error. */
static int step_finish(lua_State *L, step_run *sr, int attempts) {
  host *h = get_host(L);
  lode_wf *wf = h->current;
  lode_exec *ex = h->ex;
  lua_getfield(L, 1, "name");
  const char *name = lua_tostring(L, -1);
  lua_pop(L, 1);
  char err[ERRLEN];
  int64_t pos = sr->pos;
  char *in = sr->in;
  lode_attempt *att = sr->att;
  int max_att = sr->max_att;
  lode_span_frame *f = sr->f;
  int rc;

  lode_step_row row;
  memset(&row, 0, sizeof row);
  row.step_no = pos;
  row.name = (char *)name;
  row.started_at = sr->started;
  row.ended_at = lode_now_ms();
  lode_buf out;
  lode_buf_init(&out, 0);
  if (attempts > 0) {
    row.attempts = attempts;
    row.status = LODE_WF_SUCCESS;
    /* the attempts that failed before this one (lode workflow steps shows them) */
    if (attempts > 1 && sr->errs) row.error = sr->errs;
    char eerr[512];
    if (lode_lua_encode(L, -1, &out, eerr, sizeof eerr)) {
      /* not retried: the same function would return the same kind of value */
      lode_buf_free(&out);
      lua_pushfstring(L, "step '%s' output: %s", name, eerr);
      row.status = LODE_WF_ERROR;
      row.error = (char *)lua_tostring(L, -1);
    } else {
      row.output = out.p;
      row.output_len = out.len;
    }
  } else {
    row.attempts = -attempts;
    row.status = LODE_WF_ERROR;
    lua_pushfstring(L, "step '%s' failed after %d attempt%s:\n%s", name, -attempts,
                    -attempts == 1 ? "" : "s", lua_tostring(L, -1));
    row.error = (char *)lua_tostring(L, -1);
  }
  const lode_span_rec *spans = NULL;
  int nspans = 0;
  char *outj = NULL;
  int failed_attempts = 0;
  for (int i = 0; att && i < max_att && i < row.attempts; i++) failed_attempts += !!att[i].error;
  if (f && !failed_attempts && lode__frame_plain(f) && lode_wf_traced(wf)) {
    /* the usual step: its span is its checkpoint row plus these two fields,
     * rendered later (lode_trace_materialize), so tracing adds no record to
     * this commit */
    row.span_id = (char *)lode__frame_id(f);
    row.span_input = in ? in : "";
    row.span_recovery = lode_wf_recovery_attempts(wf);
    row.started_at = lode__frame_start(f);
  } else if (f) {
    outj = row.output ? lode_span_json(row.output, row.output_len, 0) : NULL;
    nspans = lode__frame_spans(f, ex, lode_wf_id(wf), pos, lode_wf_recovery_attempts(wf), in,
                               outj, row.status == LODE_WF_SUCCESS ? NULL : row.error, att, row.attempts < max_att ? row.attempts : max_att,
                               &spans);
  }
  rc = lode_wf_step_record(wf, &row, spans, nspans, err, sizeof err);
  if (f) lode__frame_pop(L, f);
  sr->f = NULL;
  free(in);
  sr->in = NULL;
  free(outj);
  if (att) free_attempts(att, max_att);
  sr->att = NULL;
  lode_buf_free(&out);
  free(sr->errs);
  sr->errs = NULL;
  if (rc != LODE_OK) return raise_msg(L, err);
  if (row.status != LODE_WF_SUCCESS) return lua_error(L);
  return 1;
}

/* lode.track: a span, not durable: it runs every time it is called. */
static int track_call(lua_State *L) {
  int nargs = lua_gettop(L) - 1;
  lua_getfield(L, 1, "name");
  const char *name = lua_tostring(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, 1, "opts");
  lua_getfield(L, -1, "type");
  char type[32];
  lode_strlcpy(type, lua_isstring(L, -1) ? lua_tostring(L, -1) : "general", sizeof type);
  lua_pop(L, 2);
  return plain_traced(L, LODE_FRAME_TRACK, nargs, name, type);
}

/* Runs `fn` as a recorded pseudo-step (lode.now, lode.uuid): its value is
 * produced once and replayed. fn pushes the value. */
static int recorded_value(lua_State *L, const char *name, void (*fn)(lua_State *L)) {
  host *h = get_host(L);
  lode_wf *wf = h->in_step ? NULL : h->current;
  if (!wf) {
    fn(L);
    return 1;
  }
  char err[ERRLEN];
  int64_t pos;
  const lode_step_row *rec;
  int nrc = lode_wf_step_next(wf, name, &pos, &rec, err, sizeof err);
  if (nrc != LODE_OK) return raise_next(L, nrc, err);
  if (rec) return replay(L, rec, "value");
  fn(L);
  if (lode__record_top(L, wf, pos, name, 1, NULL, 0, err, sizeof err) != LODE_OK)
    return raise_msg(L, err);
  return 1;
}

static void push_now(lua_State *L) { lua_pushnumber(L, (double)lode_now_ms() / 1000.0); }
static void push_uuid(lua_State *L) {
  char u[37];
  lode_uuid7(u);
  lua_pushstring(L, u);
}
static int l_now(lua_State *L) { return recorded_value(L, "lode.now", push_now); }
static int l_uuid(lua_State *L) { return recorded_value(L, "lode.uuid", push_uuid); }

/* ---- running workflows ------------------------------------------------------------ */

/* A workflow body in progress: its coroutine (user value 1), the workflow
 * object (user value 2), the executor's record and, while it is suspended,
 * its own chain of span frames. Created safe-empty, then filled; __gc frees
 * what a body that never finished still holds. */
#define BODY_MT "lode.body"

static int body_gc(lua_State *L) {
  lode_body *b = luaL_checkudata(L, 1, BODY_MT);
  lode__frame_chain_free(b->frames);
  b->frames = NULL;
  lode_wf_free(b->wf);
  b->wf = NULL;
  return 0;
}

lode_body *lode__body_new(lua_State *L, int obj, lode_wf *wf, int args_idx, int nargs) {
  obj = lua_absindex(L, obj);
  args_idx = lua_absindex(L, args_idx);
  lode_body *b = lua_newuserdatauv(L, sizeof *b, 2);
  memset(b, 0, sizeof *b);
  if (luaL_newmetatable(L, BODY_MT)) {
    lua_pushcfunction(L, body_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  b->wf = wf;
  lua_State *co = lua_newthread(L);
  /* lua_newthread copies L's hook: a body started (or claimed by a nested
   * scheduler pass) inside a step with a time limit must not inherit that
   * step's limit, which would interrupt it with the step's message for life */
  lua_sethook(co, NULL, 0, 0);
  lua_setiuservalue(L, -2, 1);
  lua_pushvalue(L, obj);
  lua_setiuservalue(L, -2, 2);
  /* a new thread has LUA_MINSTACK slots: make room for every argument
   * (the body's __gc frees wf if this raises) */
  if (!lua_checkstack(co, nargs + 1)) luaL_error(L, "too many workflow arguments (%d)", nargs);
  luaL_checkstack(L, nargs + 2, "too many workflow arguments");
  lua_getfield(L, obj, "fn");
  for (int i = 0; i < nargs; i++) lua_pushvalue(L, args_idx + i);
  lua_xmove(L, co, nargs + 1);
  b->nargs = nargs;
  return b;
}

/* Resumes the body at idx. LODE_BODY_YIELD: it waits (nothing pushed);
 * LODE_BODY_OK: finished, result pushed; LODE_BODY_ERR: failed, error
 * pushed (its outcome is recorded either way). */
int lode__body_run(lua_State *L, int idx) {
  host *h = get_host(L);
  idx = lua_absindex(L, idx);
  lode_body *b = luaL_checkudata(L, idx, BODY_MT);
  lua_getiuservalue(L, idx, 1);
  lua_State *co = lua_tothread(L, -1);
  lua_pop(L, 1); /* still anchored by the body */
  lode_wf *saved = h->current;
  int saved_in_step = h->in_step;
  h->current = b->wf;
  h->in_step = 0;
  lode_span_frame *outer = lode__frames_set(L, b->frames);
  if (!b->started) {
    b->wf_frame = lode__frame_push_wf(L, lode_wf_trace_id(b->wf), lode_wf_span_id(b->wf));
    b->started = 1;
  }
  /* A fault is charged to the body that ran when it happened: to this one
   * for this resume's faults, less those charged to bodies that ran nested
   * inside it (a workflow claimed or started during one of its steps). Not
   * a thread-wide count since it began: bodies on one thread share the
   * connection, and another's fault (perhaps hours ago) would make this
   * one's own failure look like the disk's (review9 1c). */
  lode_sysdb *fdb = h->ex ? lode_exec_db(h->ex) : NULL;
  unsigned f0 = fdb ? lode_sysdb_faults(fdb) : 0, charged0 = h->faults_charged;
  int nres = 0;
  int st = lua_resume(co, L, b->nargs, &nres);
  b->nargs = 0;
  if (fdb) {
    unsigned during = lode_sysdb_faults(fdb) - f0, nested = h->faults_charged - charged0;
    if (during > nested) b->hit_fault = 1;
    h->faults_charged = charged0 + during;
  }
  b->frames = lode__frames_set(L, outer);
  h->current = saved;
  h->in_step = saved_in_step;
  if (st == LUA_YIELD) {
    lua_pop(co, nres);
    return LODE_BODY_YIELD;
  }

  lode_wf *wf = b->wf;
  char err[ERRLEN];
  int status;
  lode_buf out;
  lode_buf_init(&out, 0);
  if (st == LUA_OK) {
    if (nres > 1) {
      lua_pushfstring(L, "workflow '%s' returned %d values; a workflow returns one value "
                         "(use a table for several)", lode_wf_name(wf), nres);
      status = LODE_WF_ERROR;
    } else {
      if (nres == 0) lua_pushnil(L);
      else lua_xmove(co, L, 1);
      char eerr[512];
      if (lode_lua_encode(L, -1, &out, eerr, sizeof eerr)) {
        lua_pushfstring(L, "workflow '%s' result: %s", lode_wf_name(wf), eerr);
        status = LODE_WF_ERROR;
      } else {
        status = LODE_WF_SUCCESS;
      }
    }
  } else {
    /* rendered on L: no calls on a coroutine that died of an error */
    lua_xmove(co, L, 1);
    int plain = lode__is_fail(L, -1);
    lode_lua_push_errmsg(L, -1);
    if (plain || lode__has_traceback(lua_tostring(L, -1))) {
      lua_remove(L, -2); /* a lode.fail, or a step's error with its own */
    } else {
      luaL_traceback(L, co, lua_tostring(L, -1), 0);
      lua_remove(L, -2);
      lua_remove(L, -2);
    }
    status = LODE_WF_ERROR;
  }
  /* [.., result-or-error] */
  if (status != LODE_WF_SUCCESS && b->hit_fault) {
    /* it failed because the state database could not be written (a full
     * disk): that is not its outcome. Nothing is recorded; it stays
     * PENDING, to be put back on its queue or recovered by a later run. */
    lode__frame_chain_free(b->frames);
    b->frames = NULL;
    b->wf_frame = NULL;
    b->finished = 1;
    b->abandoned = 1;
    lode_wf_free(b->wf);
    b->wf = NULL;
    lode_buf_free(&out);
    return LODE_BODY_ERR;
  }
  lode_span_extra extra;
  lode__frame_extra(b->wf_frame, &extra);
  lode_step_row prow;
  char child_id[512];
  if (b->parent) {
    memset(&prow, 0, sizeof prow);
    prow.step_no = b->parent_pos;
    prow.name = b->parent_step_name;
    prow.attempts = 1;
    prow.started_at = b->parent_started;
    prow.ended_at = lode_now_ms();
    lode_strlcpy(child_id, lode_wf_id(wf), sizeof child_id);
    prow.child_id = child_id;
    prow.status = status;
    if (status == LODE_WF_SUCCESS) {
      prow.output = out.p;
      prow.output_len = out.len;
    } else {
      prow.error = (char *)lua_tostring(L, -1);
    }
  }
  int rc = lode_wf_finish(wf, status, status == LODE_WF_SUCCESS ? out.p : NULL, out.len,
                          status == LODE_WF_SUCCESS ? NULL : lua_tostring(L, -1), &extra,
                          b->parent, b->parent ? &prow : NULL, err, sizeof err);
  lode_buf_free(&out);
  lode__frame_chain_free(b->frames);
  b->frames = NULL;
  b->wf_frame = NULL;
  b->finished = 1;
  lode_wf_free(b->wf);
  b->wf = NULL;
  if (rc != LODE_OK) {
    /* its outcome could not be written: it stays PENDING (as above) */
    if (rc == LODE_EFULL || rc == LODE_EIO) b->abandoned = 1;
    lua_pop(L, 1);
    lua_pushstring(L, err);
    return LODE_BODY_ERR;
  }
  return status == LODE_WF_SUCCESS ? LODE_BODY_OK : LODE_BODY_ERR;
}

/* Pushes a finished workflow's recorded result, or its error (returns -1). */
static int push_outcome(lua_State *L, lode_wf_outcome *o) {
  char err[ERRLEN];
  int rc = 0;
  if (o->status == LODE_WF_SUCCESS) {
    if (!o->output) lua_pushnil(L);
    else if (lode_lua_decode(L, o->output, o->output_len, err, sizeof err)) {
      lua_pushfstring(L, "recorded result cannot be read: %s", err);
      rc = -1;
    }
  } else {
    lua_pushstring(L, o->error ? o->error : "workflow failed");
    rc = -1;
  }
  return rc;
}

static int max_recovery(lua_State *L, int obj) {
  lua_getfield(L, obj, "opts");
  int v = (int)opt_number(L, lua_gettop(L), "max_recovery_attempts", 0);
  lua_pop(L, 1);
  return v;
}

/* Trace attributes from the workflow's options; strings stay valid while
 * the options table is on the stack (at opts_idx). */
typedef struct trace_opts {
  lode_wf_trace t;
  const char *tags[32];
  char *metadata;
} trace_opts;

static void get_trace_opts(lua_State *L, int obj, int child, trace_opts *to) {
  memset(to, 0, sizeof *to);
  to->t.tags = to->tags;
  lua_getfield(L, obj, "opts"); /* left on the stack: anchors the strings */
  int o = lua_gettop(L);
  lua_getfield(L, o, "phase");
  if (lua_isstring(L, -1)) {
    if (child) {
      /* phase belongs on trace roots only (docs/tracing.md): warn once, ignore */
      lua_getfield(L, o, "_phase_warned");
      if (!lua_toboolean(L, -1)) {
        lua_getfield(L, obj, "name");
        lode_warn("workflow '%s' declares phase '%s' but runs as a child workflow; phase "
                  "belongs on top-level workflows and is ignored here",
                  lua_tostring(L, -1), lua_tostring(L, -3));
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
        lua_setfield(L, o, "_phase_warned");
      }
      lua_pop(L, 1);
    } else {
      to->t.phase = lua_tostring(L, -1);
    }
  }
  lua_pop(L, 1);
  lua_getfield(L, o, "tags");
  if (lua_istable(L, -1)) {
    int n = (int)lua_rawlen(L, -1);
    for (int i = 1; i <= n && to->t.ntags < 32; i++) {
      lua_rawgeti(L, -1, i);
      if (lua_isstring(L, -1)) to->tags[to->t.ntags++] = lua_tostring(L, -1);
      lua_pop(L, 1); /* the string stays alive in the tags table */
    }
  }
  lua_pop(L, 1);
  lua_getfield(L, o, "metadata");
  if (lua_istable(L, -1)) {
    lode_buf b;
    lode_buf_init(&b, 0);
    char err[256];
    if (lode_lua_encode(L, -1, &b, err, sizeof err) == 0)
      to->metadata = lode_span_json(b.p, b.len, 0);
    lode_buf_free(&b);
    to->t.metadata_json = to->metadata;
  }
  lua_pop(L, 1);
}

/* Checkpoints a child's outcome (on top of the stack) at its position in
 * the parent. */
static int record_child(lua_State *L, lode_wf *parent, const char *name, int64_t pos,
                        int64_t started, int ok, char *err, size_t errlen) {
  char child_id[512];
  snprintf(child_id, sizeof child_id, "%s-%lld", lode_wf_id(parent), (long long)pos);
  return lode__record_top(L, parent, pos, name, ok, child_id, started, err, errlen);
}

/* Begins (or resumes) a workflow. Returns 1 with a body pushed (run it),
 * 0 with the recorded outcome pushed (it had finished; *status set), or -1
 * with the error pushed (*status -1 if it never started). */
int lode__begin_body(lua_State *L, int obj, const char *id, lode_wf *parent, int64_t pos,
                      int args_idx, int nargs, int use_recorded_input, int *status) {
  char err[ERRLEN];
  lode_exec *ex = need_exec(L);
  obj = lua_absindex(L, obj);
  /* everything that may raise comes before the first allocation */
  args_idx = lua_absindex(L, args_idx);
  lua_getfield(L, obj, "name");
  const char *name = lua_tostring(L, -1);
  int max_rec = max_recovery(L, obj);
  lua_getfield(L, obj, "opts");
  double timeout_s = opt_number(L, lua_gettop(L), "timeout", 0);
  lua_pop(L, 1);
  lua_checkstack(L, 8);
  lode_buf in;
  lode_buf_init(&in, 0);
  if (!use_recorded_input &&
      lode_lua_encode_args(L, args_idx, nargs, &in, err, sizeof err)) {
    lode_buf_free(&in);
    lua_pushfstring(L, "workflow '%s' input: %s", name, err);
    *status = LODE_WF_ERROR;
    return -1;
  }
  trace_opts to;
  get_trace_opts(L, obj, parent != NULL, &to); /* pushes opts */
  lode_wf_start s = {id, name, in.p, in.len, parent, pos, max_rec, &to.t, timeout_s};
  if (!parent && !use_recorded_input && get_host(L)->main_timeout > 0) {
    s.timeout_s = get_host(L)->main_timeout; /* lode run --timeout */
    get_host(L)->main_timeout = 0;
  }
  lode_wf *wf;
  lode_wf_outcome done;
  int rc = lode_wf_begin(ex, &s, &wf, &done, err, sizeof err);
  lode_buf_free(&in);
  free(to.metadata);
  lua_pop(L, 2); /* opts, name */
  if (rc == LODE_EBUSY && id) {
    rc = lode_exec_await(ex, id, &done, err, sizeof err);
    wf = NULL;
  }
  if (rc != LODE_OK) {
    lua_pushstring(L, err);
    *status = -1;
    get_host(L)->begin_rc = rc;
    return -1;
  }
  if (!parent && !use_recorded_input)
    lode_strlcpy(get_host(L)->last_top_id, id ? id : (wf ? lode_wf_id(wf) : ""),
                 sizeof get_host(L)->last_top_id);
  if (!wf) {
    *status = done.status;
    int r = push_outcome(L, &done);
    lode_wf_outcome_clear(&done);
    return r < 0 ? -1 : 0;
  }
  if (use_recorded_input || lode_wf_resumed(wf)) {
    /* a resumed workflow runs with what was recorded, not what was passed */
    const uint8_t *p;
    size_t n;
    lode_wf_input(wf, &p, &n);
    int got = p ? lode_lua_decode_args(L, p, n, err, sizeof err) : 0;
    if (got < 0) {
      lode_wf_free(wf);
      lua_pushfstring(L, "workflow %s: recorded input cannot be read: %s", id ? id : "?", err);
      *status = -1;
      return -1;
    }
    lode__body_new(L, obj, wf, lua_gettop(L) - got + 1, got);
    lua_insert(L, lua_gettop(L) - got);
    lua_pop(L, got);
    return 1;
  }
  lode__body_new(L, obj, wf, args_idx, nargs);
  return 1;
}

/* Begins and runs a top-level workflow to its end on this thread's
 * scheduler (which also runs what it waits for). Pushes the result or the
 * error; returns 0 or -1, and sets *status. */
static int start_and_run(lua_State *L, int obj, const char *id, int args_idx, int nargs,
                         int use_recorded_input, int *status) {
  int r = lode__begin_body(L, obj, id, NULL, 0, args_idx, nargs, use_recorded_input, status);
  if (r <= 0) return r;
  lode_body *b = lua_touserdata(L, -1);
  char wid[512];
  lode_strlcpy(wid, b && b->wf ? lode_wf_id(b->wf) : "", sizeof wid);
  r = lode__sched_run_body(L, lua_gettop(L) - 0);
  lua_remove(L, -2); /* the body */
  *status = r == LODE_BODY_OK ? LODE_WF_SUCCESS : LODE_WF_ERROR;
  if (r != LODE_BODY_OK && wid[0]) {
    /* a cancel (or deadline) wins over the error it caused */
    char err[256];
    int st;
    if (lode_sysdb_wf_status(lode_exec_db(need_exec(L)), wid, &st, err, sizeof err) == LODE_OK &&
        st != LODE_WF_PENDING)
      *status = st;
  }
  return r == LODE_BODY_OK ? 0 : -1;
}

/* A child called inline: its body runs in its own coroutine; when it waits,
 * the parent's coroutine waits too, and this continuation resumes the child
 * when the parent is resumed. Stack: [self, args..., body, pos, started] */
static int child_cont(lua_State *L, int st, lua_KContext ctx) {
  (void)st;
  int body_idx = (int)ctx;
  int r = lode__body_run(L, body_idx);
  if (r == LODE_BODY_YIELD) return lua_yieldk(L, 0, ctx, child_cont);
  /* its checkpoint in the parent was written with its end */
  if (r != LODE_BODY_OK) return lua_error(L);
  return 1;
}

static int wf_call(lua_State *L) {
  /* [self, args...] */
  int nargs = lua_gettop(L) - 1;
  host *h = get_host(L);
  lode_wf *parent = h->in_step ? NULL : h->current;
  int status;
  if (!parent) {
    if (start_and_run(L, 1, NULL, 2, nargs, 0, &status) < 0) return lua_error(L);
    return 1;
  }
  /* a child workflow takes the next position of its parent */
  lua_getfield(L, 1, "name");
  const char *name = lua_tostring(L, -1);
  lua_pop(L, 1);
  char err[ERRLEN];
  int64_t pos;
  const lode_step_row *rec;
  int nrc = lode_wf_step_next(parent, name, &pos, &rec, err, sizeof err);
  if (nrc != LODE_OK) return raise_next(L, nrc, err);
  if (rec) return replay(L, rec, "child workflow");
  int64_t started = lode_now_ms();
  int r = lode__begin_body(L, 1, NULL, parent, pos, 2, nargs, 0, &status);
  if (r <= 0) {
    /* finished before (its outcome pushed) or could not start */
    if (status != -1) {
      int rc = record_child(L, parent, name, pos, started, r == 0, err, sizeof err);
      if (rc != LODE_OK) return raise_msg(L, err);
    }
    if (r < 0) return lua_error(L);
    return 1;
  }
  int body_idx = lua_gettop(L);
  lode_body *b = lua_touserdata(L, body_idx);
  b->parent = parent;
  b->parent_pos = pos;
  b->parent_started = started;
  lode_strlcpy(b->parent_step_name, name, sizeof b->parent_step_name);
  return child_cont(L, LUA_OK, (lua_KContext)body_idx);
}

int lode_lua_is_workflow(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  if (!lua_istable(L, idx) || !lua_getmetatable(L, idx)) return 0;
  luaL_getmetatable(L, WORKFLOW_MT);
  int same = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  if (!same) return 0;
  lua_getfield(L, idx, "name");
  return 1;
}

void lode_lua_push_workflow(lua_State *L, const char *name) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &workflows_key);
  lua_getfield(L, -1, name);
  lua_remove(L, -2);
}

/* Protected entry points for the CLI. */
typedef struct run_args {
  const char *id;
  int nargs;
  int use_recorded;
  int status;
  int failed;
} run_args;

static int p_run(lua_State *L) {
  /* [ra, wfobj, args...] */
  run_args *ra = lua_touserdata(L, 1);
  int r = start_and_run(L, 2, ra->id, 3, ra->nargs, ra->use_recorded, &ra->status);
  ra->failed = r < 0;
  return 1;
}

static int call_run(lua_State *L, int wf_idx, run_args *ra, int *status) {
  wf_idx = lua_absindex(L, wf_idx);
  int nargs = ra->nargs;
  lua_pushcfunction(L, p_run);
  lua_pushlightuserdata(L, ra);
  lua_pushvalue(L, wf_idx);
  /* move the args above [fn, ra, wf] */
  for (int i = 0; i < 3; i++) lua_insert(L, lua_gettop(L) - nargs - 2);
  int rc = lode_lua_pcall(L, nargs + 2, 1);
  *status = ra->status;
  if (rc != LUA_OK) {
    *status = LODE_WF_ERROR;
    return LODE_EUSAGE;
  }
  if (ra->failed) return ra->status == -1 ? get_host(L)->begin_rc : LODE_EUSAGE;
  return LODE_OK;
}

int lode_lua_run_top(lua_State *L, int wf_idx, const char *id, int nargs, int *status) {
  run_args ra = {id, nargs, 0, 0, 0};
  return call_run(L, wf_idx, &ra, status);
}

int lode_lua_resume(lua_State *L, const char *id, int *status) {
  char err[ERRLEN];
  *status = -1;
  lode_exec *ex = lode_host_exec(L, err, sizeof err);
  if (!ex) {
    lua_pushstring(L, err);
    return LODE_EDB;
  }
  lode_wf_row r;
  if (lode_sysdb_wf_get(lode_exec_db(ex), id, &r, err, sizeof err) != LODE_OK) {
    lua_pushstring(L, err);
    return LODE_ENOTFOUND;
  }
  lode_lua_push_workflow(L, r.name);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushfstring(L, "workflow %s: the pipeline %s declares no workflow named '%s'", id,
                    r.pipeline ? r.pipeline : "(unknown)", r.name);
    lode_wf_row_clear(&r);
    return LODE_ENOTFOUND;
  }
  lode_wf_row_clear(&r);
  run_args ra = {id, 0, 1, 0, 0};
  int rc = call_run(L, -1, &ra, status);
  lua_remove(L, -2); /* the workflow object */
  return rc;
}

/* lode._test_use_db(path): `lode test` gives each spec file a fresh database */
static int l_test_use_db(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lode_host_opts o = {path, 0, NULL, NULL};
  lode_host_configure(L, &o);
  return 0;
}

static int callable_tostring(lua_State *L) {
  lua_getfield(L, 1, "name");
  lua_getmetatable(L, 1);
  lua_getfield(L, -1, "__name");
  lua_pushfstring(L, "%s '%s'", lua_tostring(L, -1), lua_tostring(L, -3));
  return 1;
}

static void callable_mt(lua_State *L, const char *name, lua_CFunction call) {
  luaL_newmetatable(L, name);
  lua_pushcfunction(L, call);
  lua_setfield(L, -2, "__call");
  lua_pushcfunction(L, callable_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
}

static const luaL_Reg api[] = {
    {"workflow", l_workflow}, {"step", l_step}, {"track", l_track},
    {"now", l_now},           {"uuid", l_uuid}, {"_test_use_db", l_test_use_db},
    {NULL, NULL}};

void lode_lua_open_workflow(lua_State *L) {
  get_host(L);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &workflows_key);
  if (lua_isnil(L, -1)) {
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &workflows_key);
  }
  lua_pop(L, 1);
  callable_mt(L, WORKFLOW_MT, wf_call);
  callable_mt(L, STEP_MT, step_call);
  callable_mt(L, TRACK_MT, track_call);
  luaL_setfuncs(L, api, 0);
}
