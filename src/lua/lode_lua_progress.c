/* lode_lua_progress.c - lode.progress{...}: a running workflow reports its
 * progress (any table: files done, total, ...) where another process reads
 * it (`lode workflow list/get`). lua/lode/progress.lua calls it. */
#include <stdio.h>

#include "base/buf.h"
#include "base/codec.h"
#include "base/error.h"
#include "lua/lode_lua.h"
#include "lua/lode_host.h"
#include "lua/lode_lua_codec.h"
#include "lua/lode_lua_internal.h"

/* A report is a preview: long strings cut, at most this much JSON. */
#define PROGRESS_MAX_STR 512
#define PROGRESS_MAX_JSON 4096

/* lode.progress(tbl) -> true if recorded, false outside a workflow body */
static int l_progress(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  host *hs = lode__host(L);
  if (!hs->current || hs->in_step) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lode_buf enc, js;
  char err[256];
  lode_buf_init(&enc, 0);
  lode_buf_init(&js, 0);
  int rc = lode_lua_encode(L, 1, &enc, err, sizeof err);
  if (rc == 0)
    rc = lode_codec_to_json_budget(enc.p, enc.len, PROGRESS_MAX_STR, PROGRESS_MAX_JSON, &js, err,
                                   sizeof err);
  if (rc == 0 && !lode_buf_cstr(&js)) rc = -1, snprintf(err, sizeof err, "out of memory");
  if (rc == 0) rc = lode_wf_progress(hs->current, lode_buf_cstr(&js), err, sizeof err);
  lode_buf_free(&enc);
  lode_buf_free(&js);
  if (rc != 0) return luaL_error(L, "lode.progress: %s", err); /* buffers freed first */
  lua_pushboolean(L, 1);
  return 1;
}

void lode_lua_open_progress(lua_State *L) {
  lua_pushcfunction(L, l_progress);
  lua_setfield(L, -2, "progress");
}
