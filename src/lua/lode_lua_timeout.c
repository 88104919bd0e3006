/* lode_lua_timeout.c - interrupting a step attempt that runs past its own
 * `timeout` or its workflow's deadline (docs/concurrency.md, Timeouts).
 *
 * A count hook (lua_sethook, LUA_MASKCOUNT) is set on the Lua thread that
 * runs the attempt only while a limit applies, so steps without one pay
 * nothing. Every LIMIT_EVERY instructions it reads the clock; past the
 * limit it raises an error where the Lua code is. Hooks belong to a Lua
 * thread: coroutines the step creates inherit it (lua_newthread copies it),
 * one created before the step does not, nor does the body of a workflow
 * started inside the step (lode__body_new clears the hook). C code called from Lua runs no
 * instructions and is not interrupted: it stops when it returns to Lua. A
 * step that catches the error with pcall is interrupted again at the next
 * check, since the limit stays passed. */
#include "lua/lode_lua_internal.h"

#include <stdio.h>

#include "base/util.h"

#define LIMIT_EVERY 2000 /* instructions between clock reads */

static void limit_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  host *h = lode__host(L);
  if (!h->step_deadline_ms || lode_now_ms() < h->step_deadline_ms) return;
  h->step_interrupted = h->step_deadline_kind;
  if (h->step_deadline_kind == LODE_LIMIT_STEP) {
    char secs[32];
    snprintf(secs, sizeof secs, "%g", h->step_timeout_s);
    luaL_error(L, "step '%s' timed out after %s s", h->step_name ? h->step_name : "?", secs);
  }
  luaL_error(L, "step '%s' interrupted: its workflow reached its deadline (timeout)",
             h->step_name ? h->step_name : "?");
}

void lode__limit_arm(lua_State *L, const char *name, double timeout_s, int64_t wf_deadline_ms,
                     lode_limit_saved *saved) {
  host *h = lode__host(L);
  saved->hook = lua_gethook(L);
  saved->mask = lua_gethookmask(L);
  saved->count = lua_gethookcount(L);
  saved->deadline_ms = h->step_deadline_ms;
  saved->kind = h->step_deadline_kind;
  saved->timeout_s = h->step_timeout_s;
  saved->name = h->step_name;
  int64_t dl = saved->deadline_ms;
  int kind = saved->kind;
  if (timeout_s > 0) {
    int64_t own = lode_now_ms() + lode_limit_ms(timeout_s);
    if (!dl || own < dl) {
      dl = own;
      kind = LODE_LIMIT_STEP;
      h->step_timeout_s = timeout_s;
      h->step_name = name;
    }
  }
  if (wf_deadline_ms > 0 && (!dl || wf_deadline_ms <= dl)) {
    dl = wf_deadline_ms;
    kind = LODE_LIMIT_WORKFLOW;
    h->step_name = name;
  }
  h->step_deadline_ms = dl;
  h->step_deadline_kind = kind;
  h->step_interrupted = LODE_LIMIT_NONE;
  /* a debugger's own hook is left alone (the limit then goes unchecked) */
  if (dl && (!saved->hook || saved->hook == limit_hook))
    lua_sethook(L, limit_hook, LUA_MASKCOUNT, LIMIT_EVERY);
}

int lode__limit_disarm(lua_State *L, const lode_limit_saved *saved) {
  host *h = lode__host(L);
  int hit = h->step_interrupted;
  if (lua_gethook(L) == limit_hook) lua_sethook(L, saved->hook, saved->mask, saved->count);
  h->step_deadline_ms = saved->deadline_ms;
  h->step_deadline_kind = saved->kind;
  h->step_timeout_s = saved->timeout_s;
  h->step_name = saved->name;
  h->step_interrupted = LODE_LIMIT_NONE;
  if (hit && saved->deadline_ms && lode_now_ms() >= saved->deadline_ms) {
    /* the enclosing step's limit (its own timeout, or its workflow's
     * deadline, inherited by this inner step) has passed too: the interrupt
     * is the outer step's. It stays set for the outer attempt to see, and
     * the inner one must not retry it (review9 2a). */
    h->step_interrupted = saved->kind;
    return LODE_LIMIT_OUTER;
  }
  return hit;
}
