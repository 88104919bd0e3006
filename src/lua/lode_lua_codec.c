/* lode_lua_codec.c - walking Lua values into and out of lode's encoding. */
#include "lua/lode_lua_codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_EXTS 16
static const lode_lua_ext *exts[MAX_EXTS];
static int n_exts;

void lode_lua_codec_register(const lode_lua_ext *ext) {
  for (int i = 0; i < n_exts; i++)
    if (exts[i]->id == ext->id) return;
  if (n_exts < MAX_EXTS) exts[n_exts++] = ext;
}

typedef struct enc {
  lua_State *L;
  lode_buf *out;
  char *err;
  size_t errlen;
  const void *stack[LODE_CODEC_MAX_DEPTH + 1]; /* tables on the current path */
  int depth;
  char path[512];
  size_t pathlen;
  /* preview mode (spans): strings cut at max_str, tables cut once `used`
   * passes budget, userdata as their summary */
  int preview;
  size_t max_str, budget, used;
} enc;

/* Appends one path segment for the key at index k; returns the old length. */
static size_t path_push(enc *e, int k) {
  lua_State *L = e->L;
  size_t old = e->pathlen;
  size_t room = sizeof e->path - e->pathlen;
  int n = 0;
  if (lua_type(L, k) == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(L, k, &len);
    int ident = len > 0 && len < 64 && !(s[0] >= '0' && s[0] <= '9');
    for (size_t i = 0; ident && i < len; i++)
      ident = (s[i] == '_' || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
               (s[i] >= '0' && s[i] <= '9'));
    n = ident ? snprintf(e->path + old, room, ".%s", s)
              : snprintf(e->path + old, room, "[\"%.40s\"]", s);
  } else if (lua_isinteger(L, k)) {
    n = snprintf(e->path + old, room, "[%lld]", (long long)lua_tointeger(L, k));
  } else if (lua_type(L, k) == LUA_TNUMBER) {
    n = snprintf(e->path + old, room, "[%g]", lua_tonumber(L, k));
  } else {
    n = snprintf(e->path + old, room, "[%s]", lua_toboolean(L, k) ? "true" : "false");
  }
  if (n > 0) e->pathlen = (size_t)n < room ? old + (size_t)n : sizeof e->path - 1;
  return old;
}

static int enc_fail(enc *e, const char *what) {
  snprintf(e->err, e->errlen, "%s %s", e->pathlen ? e->path : "value", what);
  return -1;
}

static int enc_value(enc *e, int idx);

static int enc_key(enc *e, int k) {
  switch (lua_type(e->L, k)) {
    case LUA_TSTRING:
    case LUA_TNUMBER:
    case LUA_TBOOLEAN: return enc_value(e, k);
    default: {
      char what[64];
      snprintf(what, sizeof what, "has a %s as a key", luaL_typename(e->L, k));
      return enc_fail(e, what);
    }
  }
}

static int enc_table_preview(enc *e, int idx);

/* Entering a table: refuses cycles and depth, pushes it on the path. */
static int enc_enter(enc *e, int idx) {
  lua_State *L = e->L;
  const void *ptr = lua_topointer(L, idx);
  for (int i = 0; i < e->depth; i++)
    if (e->stack[i] == ptr) return enc_fail(e, "is part of a cycle (a table contains itself)");
  if (e->depth >= LODE_CODEC_MAX_DEPTH) return enc_fail(e, "is nested too deeply");
  if (!lua_checkstack(L, 6)) return enc_fail(e, "cannot be encoded (Lua stack full)");
  e->stack[e->depth++] = ptr;
  return 0;
}

/* Is the key at k one of the array part's 1..narr (already encoded)? */
static int in_array_part(lua_State *L, int k, uint64_t narr) {
  if (!lua_isinteger(L, k)) return 0;
  lua_Integer ki = lua_tointeger(L, k);
  return ki >= 1 && (uint64_t)ki <= narr;
}

/* ---- keys in a stable order ------------------------------------------------
 * The hash part of a table is encoded with its keys sorted (booleans, then
 * numbers, then strings byte-wise), not in lua_next's order, which changes
 * from one process to the next (string hashes are seeded): the same value
 * gives the same bytes, so checkpoints, inputs compared by `lode run --id`
 * and every JSON lode prints are deterministic. */
typedef struct skey {
  int type;       /* LUA_TBOOLEAN, LUA_TNUMBER, LUA_TSTRING */
  int b, isint;
  lua_Integer i;
  lua_Number f;
  const char *s;  /* a key of the table, so it lives while the table does */
  size_t len;
} skey;

static int type_rank(int t) { return t == LUA_TBOOLEAN ? 0 : t == LUA_TNUMBER ? 1 : 2; }

static int skey_cmp(const void *pa, const void *pb) {
  const skey *a = pa, *b = pb;
  if (a->type != b->type) return type_rank(a->type) - type_rank(b->type);
  if (a->type == LUA_TBOOLEAN) return a->b - b->b;
  if (a->type == LUA_TNUMBER) {
    if (a->isint && b->isint) return a->i < b->i ? -1 : a->i > b->i;
    lua_Number x = a->isint ? (lua_Number)a->i : a->f, y = b->isint ? (lua_Number)b->i : b->f;
    if (x != y) return x < y ? -1 : 1;
    return b->isint - a->isint;
  }
  size_t n = a->len < b->len ? a->len : b->len;
  int c = memcmp(a->s, b->s, n);
  return c ? c : (a->len < b->len ? -1 : a->len > b->len);
}

/* The keys of a table outside its array part, sorted. Small tables (most
 * step outputs) use the array inside; a bigger one a userdata on the stack
 * (`pushed`), freed by the collector whatever happens. */
#define SMALL_KEYS 16
typedef struct key_list {
  skey *v;
  size_t n;
  int pushed, sortable;
  skey small[SMALL_KEYS];
} key_list;

/* One pass of lua_next: counts the keys (returned), and stores those
 * outside 1..narr in kl->v while they fit in cap (*overflow otherwise). */
static uint64_t collect_keys(lua_State *L, int idx, uint64_t narr, key_list *kl, size_t cap,
                             int *overflow) {
  uint64_t total = 0;
  kl->n = 0;
  kl->sortable = 1;
  *overflow = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) { /* [.., key, value] */
    int ki = lua_gettop(L) - 1;
    lua_pop(L, 1);
    total++;
    if (in_array_part(L, ki, narr)) continue;
    int t = lua_type(L, ki);
    if (t != LUA_TBOOLEAN && t != LUA_TNUMBER && t != LUA_TSTRING) {
      kl->sortable = 0;
      continue;
    }
    if (kl->n >= cap) {
      *overflow = 1;
      continue;
    }
    skey *e = &kl->v[kl->n++];
    memset(e, 0, sizeof *e);
    e->type = t;
    if (t == LUA_TBOOLEAN) e->b = lua_toboolean(L, ki);
    else if (t == LUA_TNUMBER && lua_isinteger(L, ki)) e->isint = 1, e->i = lua_tointeger(L, ki);
    else if (t == LUA_TNUMBER) e->f = lua_tonumber(L, ki);
    else e->s = lua_tolstring(L, ki, &e->len);
  }
  return total;
}

/* Fills kl with the table's keys outside 1..narr, sorted (kl->sortable 0
 * when a key is of a type that cannot be sorted: enc_key refuses it anyway,
 * in lua_next's order), and returns the count of all its keys. */
static uint64_t sorted_keys(lua_State *L, int idx, uint64_t narr, key_list *kl) {
  int overflow;
  kl->pushed = 0;
  kl->v = kl->small;
  uint64_t total = collect_keys(L, idx, narr, kl, SMALL_KEYS, &overflow);
  if (overflow && kl->sortable) {
    kl->v = lua_newuserdatauv(L, (size_t)(total - narr) * sizeof *kl->v, 0);
    kl->pushed = 1;
    collect_keys(L, idx, narr, kl, (size_t)(total - narr), &overflow);
  }
  if (kl->sortable) qsort(kl->v, kl->n, sizeof *kl->v, skey_cmp);
  return total;
}

/* Pushes key number i of the sorted keys, then its value: [.., key, value]. */
static void push_sorted_pair(lua_State *L, int idx, const skey *e) {
  if (e->type == LUA_TBOOLEAN) lua_pushboolean(L, e->b);
  else if (e->type == LUA_TNUMBER && e->isint) lua_pushinteger(L, e->i);
  else if (e->type == LUA_TNUMBER) lua_pushnumber(L, e->f);
  else lua_pushlstring(L, e->s, e->len);
  lua_pushvalue(L, -1);
  lua_rawget(L, idx);
}

static int enc_table(enc *e, int idx) {
  if (e->preview) return enc_table_preview(e, idx);
  if (enc_enter(e, idx)) return -1;
  lua_State *L = e->L;

  /* array part: keys 1..narr, all non-nil */
  uint64_t narr = 0;
  while (lua_rawgeti(L, idx, (lua_Integer)narr + 1) != LUA_TNIL) {
    lua_pop(L, 1);
    narr++;
  }
  lua_pop(L, 1);
  key_list kl;
  uint64_t total = sorted_keys(L, idx, narr, &kl); /* [.., keys?] */
  if (lode_codec_put_table(e->out, narr, total - narr)) return enc_fail(e, "is too large");
  for (uint64_t i = 1; i <= narr; i++) {
    lua_pushinteger(L, (lua_Integer)i);
    size_t old = path_push(e, lua_gettop(L));
    lua_pop(L, 1);
    lua_rawgeti(L, idx, (lua_Integer)i);
    int rc = enc_value(e, lua_gettop(L));
    lua_pop(L, 1);
    if (rc) return -1;
    e->pathlen = old;
    e->path[old] = 0;
  }
  if (kl.sortable) {
    for (size_t i = 0; i < kl.n; i++) {
      if (!lua_checkstack(L, 4)) return enc_fail(e, "cannot be encoded (Lua stack full)");
      push_sorted_pair(L, idx, &kl.v[i]); /* [.., keys?, key, value] */
      int k = lua_gettop(L) - 1;
      size_t old = path_push(e, k);
      int rc = enc_key(e, k) || enc_value(e, k + 1);
      lua_pop(L, 2);
      if (rc) return -1; /* a pushed key list stays for the collector */
      e->pathlen = old;
      e->path[old] = 0;
    }
    if (kl.pushed) lua_pop(L, 1);
    e->depth--;
    return 0;
  }
  if (kl.pushed) lua_pop(L, 1);
  lua_pushnil(L);
  while (lua_next(L, idx)) { /* [.., key, value] */
    int k = lua_gettop(L) - 1;
    if (in_array_part(L, k, narr)) {
      lua_pop(L, 1);
      continue;
    }
    size_t old = path_push(e, k);
    if (enc_key(e, k) || enc_value(e, k + 1)) {
      lua_pop(L, 2);
      return -1;
    }
    e->pathlen = old;
    e->path[old] = 0;
    lua_pop(L, 1);
  }
  e->depth--;
  return 0;
}

/* Preview: the elements go to a scratch buffer until the budget is spent;
 * the rest is counted in one last element ("...[N more items]", or the key
 * "..." with "[N more entries]"), then the header with the counts kept. */
static int enc_table_preview(enc *e, int idx) {
  if (enc_enter(e, idx)) return -1;
  lua_State *L = e->L;
  lode_buf *parent = e->out, body;
  lode_buf_init(&body, 0);
  e->out = &body;
  uint64_t narr = 0, kept_arr = 0, kept_hash = 0, left = 0;
  int rc = 0;
  while (lua_rawgeti(L, idx, (lua_Integer)narr + 1) != LUA_TNIL) {
    narr++;
    if (e->used >= e->budget) {
      left++;
    } else {
      rc = enc_value(e, lua_gettop(L));
      kept_arr++;
    }
    lua_pop(L, 1);
    if (rc) goto done;
  }
  lua_pop(L, 1);
  key_list kl;
  sorted_keys(L, idx, narr, &kl); /* [.., keys?] */
  if (kl.sortable) {
    for (size_t i = 0; i < kl.n && !rc; i++) {
      if (e->used >= e->budget) {
        left++;
        continue;
      }
      push_sorted_pair(L, idx, &kl.v[i]);
      int k = lua_gettop(L) - 1;
      rc = enc_key(e, k) || enc_value(e, k + 1);
      kept_hash++;
      lua_pop(L, 2);
    }
    if (kl.pushed) lua_pop(L, 1);
    if (rc) goto done;
  } else {
    if (kl.pushed) lua_pop(L, 1);
    lua_pushnil(L);
    while (lua_next(L, idx)) { /* [.., key, value] */
      int k = lua_gettop(L) - 1;
      if (in_array_part(L, k, narr)) {
        lua_pop(L, 1);
        continue;
      }
      if (e->used >= e->budget) {
        left++;
      } else {
        rc = enc_key(e, k) || enc_value(e, k + 1);
        kept_hash++;
      }
      lua_pop(L, 1);
      if (rc) {
        lua_pop(L, 1);
        goto done;
      }
    }
  }
  if (left) {
    char note[64];
    if (kept_hash || !kept_arr) {
      snprintf(note, sizeof note, "[%llu more entries]", (unsigned long long)left);
      rc = lode_codec_put_str(&body, "...", 3) || lode_codec_put_str(&body, note, strlen(note));
      kept_hash++;
    } else {
      snprintf(note, sizeof note, "...[%llu more items]", (unsigned long long)left);
      rc = lode_codec_put_str(&body, note, strlen(note));
      kept_arr++;
    }
    if (rc) goto done;
  }
  e->out = parent;
  rc = lode_codec_put_table(parent, kept_arr, kept_hash) ||
       lode_buf_append(parent, body.p, body.len);
  if (rc) rc = enc_fail(e, "is too large");
done:
  e->out = parent;
  lode_buf_free(&body);
  e->depth--;
  return rc ? -1 : 0;
}

static int enc_value(enc *e, int idx) {
  lua_State *L = e->L;
  int rc = 0;
  switch (lua_type(L, idx)) {
    case LUA_TNIL: rc = lode_codec_put_nil(e->out); break;
    case LUA_TBOOLEAN: rc = lode_codec_put_bool(e->out, lua_toboolean(L, idx)); break;
    case LUA_TNUMBER:
      rc = lua_isinteger(L, idx) ? lode_codec_put_int(e->out, lua_tointeger(L, idx))
                                 : lode_codec_put_float(e->out, lua_tonumber(L, idx));
      break;
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      if (e->preview && e->max_str && n > e->max_str) {
        /* the same cut and note as lode_codec_to_json's */
        size_t cut = e->max_str;
        while (cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80) cut--;
        char note[64];
        int nl = snprintf(note, sizeof note, "...[truncated %zu bytes]", n - cut);
        lode_buf t;
        lode_buf_init(&t, 0);
        rc = lode_buf_append(&t, s, cut) || lode_buf_append(&t, note, (size_t)nl) ||
             lode_codec_put_str(e->out, t.p, t.len);
        lode_buf_free(&t);
        e->used += cut;
        break;
      }
      e->used += n;
      rc = lode_codec_put_str(e->out, s, n);
      break;
    }
    case LUA_TTABLE: return enc_table(e, idx);
    case LUA_TUSERDATA:
      for (int i = 0; i < n_exts; i++) {
        if (luaL_testudata(L, idx, exts[i]->tname)) {
          lode_buf payload;
          lode_buf_init(&payload, 0);
          int r = e->preview && exts[i]->summary ? exts[i]->summary(L, idx, &payload)
                                                 : exts[i]->encode(L, idx, &payload);
          if (e->preview && payload.len > 64) payload.len = 64;
          if (!r) r = lode_codec_put_ext(e->out, exts[i]->id, payload.p, payload.len);
          lode_buf_free(&payload);
          if (r) return enc_fail(e, "is too large");
          return 0;
        }
      }
      return enc_fail(e, "is a userdata lode cannot encode");
    case LUA_TLIGHTUSERDATA: return enc_fail(e, "is a light userdata");
    case LUA_TFUNCTION: return enc_fail(e, "is a function");
    case LUA_TTHREAD: return enc_fail(e, "is a coroutine");
    default: return enc_fail(e, "cannot be encoded");
  }
  if (rc) return enc_fail(e, "is too large");
  return 0;
}

static int encode(lua_State *L, int idx, lode_buf *out, size_t max_str, size_t budget,
                  char *err, size_t errlen) {
  enc e;
  e.preview = budget > 0;
  e.max_str = max_str;
  e.budget = budget;
  e.used = 0;
  e.L = L;
  e.out = out;
  e.err = err;
  e.errlen = errlen;
  e.depth = 0;
  e.path[0] = 0;
  e.pathlen = 0;
  err[0] = 0;
  idx = lua_absindex(L, idx);
  size_t start = out->len;
  int top = lua_gettop(L);
  if (lode_codec_put_version(out) || enc_value(&e, idx)) {
    if (!err[0]) snprintf(err, errlen, "value is too large");
    out->len = start;
    lua_settop(L, top);
    return -1;
  }
  return 0;
}

int lode_lua_encode(lua_State *L, int idx, lode_buf *out, char *err, size_t errlen) {
  return encode(L, idx, out, 0, 0, err, errlen);
}

int lode_lua_encode_preview(lua_State *L, int idx, size_t max_str, size_t budget, lode_buf *out,
                            char *err, size_t errlen) {
  return encode(L, idx, out, max_str, budget ? budget : 1, err, errlen);
}

static int encode_args(lua_State *L, int idx, int n, lode_buf *out, size_t max_str,
                       size_t budget, char *err, size_t errlen) {
  idx = lua_absindex(L, idx);
  lua_createtable(L, n, 1);
  for (int i = 0; i < n; i++) {
    lua_pushvalue(L, idx + i);
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushinteger(L, n);
  lua_setfield(L, -2, "n");
  err[0] = 0;
  int rc = encode(L, -1, out, max_str, budget, err, errlen);
  lua_pop(L, 1);
  return rc;
}

int lode_lua_encode_args(lua_State *L, int idx, int n, lode_buf *out, char *err,
                         size_t errlen) {
  return encode_args(L, idx, n, out, 0, 0, err, errlen);
}

int lode_lua_encode_args_preview(lua_State *L, int idx, int n, size_t max_str, size_t budget,
                                 lode_buf *out, char *err, size_t errlen) {
  return encode_args(L, idx, n, out, max_str, budget ? budget : 1, err, errlen);
}

static int dec_value(lua_State *L, lode_codec_reader *r, int depth) {
  lode_codec_item it;
  if (depth > LODE_CODEC_MAX_DEPTH) {
    snprintf(r->err, sizeof r->err, "corrupt value: nested too deeply");
    return -1;
  }
  if (!lua_checkstack(L, 4)) {
    snprintf(r->err, sizeof r->err, "Lua stack full");
    return -1;
  }
  if (lode_codec_next(r, &it)) return -1;
  switch (it.tag) {
    case LODE_V_NIL: lua_pushnil(L); return 0;
    case LODE_V_FALSE: lua_pushboolean(L, 0); return 0;
    case LODE_V_TRUE: lua_pushboolean(L, 1); return 0;
    case LODE_V_INT: lua_pushinteger(L, it.i); return 0;
    case LODE_V_FLOAT: lua_pushnumber(L, it.f); return 0;
    case LODE_V_STR: lua_pushlstring(L, (const char *)it.s, it.n); return 0;
    case LODE_V_EXT:
      for (int i = 0; i < n_exts; i++)
        if (exts[i]->id == it.ext) {
          if (exts[i]->decode(L, it.s, it.n)) {
            snprintf(r->err, sizeof r->err, "corrupt value: bad %s payload", exts[i]->tname);
            return -1;
          }
          return 0;
        }
      snprintf(r->err, sizeof r->err, "unknown value extension %u", it.ext);
      return -1;
    case LODE_V_TABLE: {
      int narr = it.narr > 0x7fffffff ? 0x7fffffff : (int)it.narr;
      int nhash = it.nhash > 0x7fffffff ? 0x7fffffff : (int)it.nhash;
      lua_createtable(L, narr, nhash);
      for (uint64_t i = 0; i < it.narr; i++) {
        if (dec_value(L, r, depth + 1)) { lua_pop(L, 1); return -1; }
        lua_rawseti(L, -2, (lua_Integer)i + 1);
      }
      for (uint64_t i = 0; i < it.nhash; i++) {
        if (dec_value(L, r, depth + 1)) { lua_pop(L, 1); return -1; }
        if (lua_isnil(L, -1)) {
          lua_pop(L, 2);
          snprintf(r->err, sizeof r->err, "corrupt value: nil key");
          return -1;
        }
        if (dec_value(L, r, depth + 1)) { lua_pop(L, 2); return -1; }
        lua_rawset(L, -3);
      }
      return 0;
    }
  }
  snprintf(r->err, sizeof r->err, "corrupt value: unknown tag");
  return -1;
}

int lode_lua_decode(lua_State *L, const void *p, size_t n, char *err, size_t errlen) {
  lode_codec_reader r;
  if (lode_codec_reader_init(&r, p, n) || dec_value(L, &r, 0)) {
    snprintf(err, errlen, "%s", r.err);
    return -1;
  }
  return 0;
}

int lode_lua_decode_args(lua_State *L, const void *p, size_t n, char *err, size_t errlen) {
  if (lode_lua_decode(L, p, n, err, errlen)) return -1;
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    snprintf(err, errlen, "corrupt arguments: not a table");
    return -1;
  }
  lua_getfield(L, -1, "n");
  lua_Integer cnt = lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (cnt < 0 || cnt > 250 || !lua_checkstack(L, (int)cnt + 2)) {
    lua_pop(L, 1);
    snprintf(err, errlen, "corrupt arguments: bad count");
    return -1;
  }
  int t = lua_gettop(L);
  for (lua_Integer i = 1; i <= cnt; i++) lua_rawgeti(L, t, i);
  lua_remove(L, t);
  return (int)cnt;
}

/* lode._encode(v) -> string; lode._decode(s) -> v: the checkpoint codec,
 * exposed for tests and debugging. */
static int l_encode(lua_State *L) {
  luaL_checkany(L, 1);
  lode_buf b;
  lode_buf_init(&b, 0);
  char err[600];
  /* lode._encode(v [, max_str, budget]): with a budget, the span preview */
  lua_Integer max_str = luaL_optinteger(L, 2, 0), budget = luaL_optinteger(L, 3, 0);
  int rc = budget > 0 ? lode_lua_encode_preview(L, 1, (size_t)(max_str > 0 ? max_str : 0),
                                                (size_t)budget, &b, err, sizeof err)
                      : lode_lua_encode(L, 1, &b, err, sizeof err);
  if (rc) {
    lode_buf_free(&b);
    return luaL_error(L, "%s", err);
  }
  lua_pushlstring(L, (const char *)b.p, b.len);
  lode_buf_free(&b);
  return 1;
}

static int l_decode(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  char err[256];
  if (lode_lua_decode(L, s, n, err, sizeof err)) return luaL_error(L, "%s", err);
  return 1;
}

static int l_to_json(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lode_buf b;
  lode_buf_init(&b, 0);
  char err[256];
  /* lode._to_json(bytes [, max_str, budget]) */
  if (lode_codec_to_json_budget(s, n, (size_t)luaL_optinteger(L, 2, 0),
                                (size_t)luaL_optinteger(L, 3, 0), &b, err, sizeof err)) {
    lode_buf_free(&b);
    return luaL_error(L, "%s", err);
  }
  lua_pushlstring(L, (const char *)b.p, b.len);
  lode_buf_free(&b);
  return 1;
}

void lode_lua_open_codec(lua_State *L) {
  lua_pushcfunction(L, l_encode);
  lua_setfield(L, -2, "_encode");
  lua_pushcfunction(L, l_decode);
  lua_setfield(L, -2, "_decode");
  lua_pushcfunction(L, l_to_json);
  lua_setfield(L, -2, "_to_json");
}
