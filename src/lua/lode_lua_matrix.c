/* lode_lua_matrix.c - `lode.matrix`: float32 rows x dims userdata. */
#include "lua/lode_lua_matrix.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lua/lode_lua_codec.h"

lode_matrix *lode_lua_matrix_check(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, LODE_MATRIX_TNAME);
}

/* Safe empty state first (data NULL), then filled: a longjmp in between
 * leaks nothing. */
lode_matrix *lode_lua_matrix_adopt(lua_State *L, int64_t rows, int64_t dims, float *data) {
  lode_matrix *m = lua_newuserdatauv(L, sizeof *m, 0);
  m->rows = m->dims = 0;
  m->data = NULL;
  luaL_setmetatable(L, LODE_MATRIX_TNAME);
  m->rows = rows;
  m->dims = dims;
  m->data = data;
  return m;
}

lode_matrix *lode_lua_matrix_push(lua_State *L, int64_t rows, int64_t dims) {
  lode_matrix *m = lode_lua_matrix_adopt(L, 0, 0, NULL);
  float *d = lode_matrix_alloc(rows, dims);
  if (!d) luaL_error(L, "matrix %lld x %lld is too large", (long long)rows, (long long)dims);
  m->data = d;
  m->rows = rows;
  m->dims = dims;
  return m;
}

const float *lode_lua_vector_arg(lua_State *L, int idx, int64_t *n, float **tmp) {
  *tmp = NULL;
  lode_matrix *m = luaL_testudata(L, idx, LODE_MATRIX_TNAME);
  if (m) {
    if (m->rows != 1) luaL_argerror(L, idx, "expected a 1-row matrix or a table of numbers");
    *n = m->dims;
    return m->data;
  }
  luaL_checktype(L, idx, LUA_TTABLE);
  int64_t len = (int64_t)lua_rawlen(L, idx);
  /* the buffer lives in a userdata so an error while reading frees it */
  float *v = lua_newuserdatauv(L, (size_t)(len ? len : 1) * sizeof(float), 0);
  for (int64_t i = 0; i < len; i++) {
    lua_rawgeti(L, idx, (lua_Integer)i + 1);
    int ok;
    v[i] = (float)lua_tonumberx(L, -1, &ok);
    if (!ok) luaL_error(L, "vector element %lld is not a number", (long long)i + 1);
    lua_pop(L, 1);
  }
  lua_replace(L, idx); /* keep it anchored in the argument slot */
  *n = len;
  return v;
}

static int m_new(lua_State *L) {
  lua_Integer rows = luaL_checkinteger(L, 1), dims = luaL_checkinteger(L, 2);
  luaL_argcheck(L, rows >= 0, 1, "rows must be >= 0");
  luaL_argcheck(L, dims >= 0, 2, "dims must be >= 0");
  lode_lua_matrix_push(L, rows, dims);
  return 1;
}

/* lode.matrix.from({{...}, {...}}) */
static int m_from(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int64_t rows = (int64_t)lua_rawlen(L, 1), dims = 0;
  if (rows > 0) {
    lua_rawgeti(L, 1, 1);
    luaL_argcheck(L, lua_istable(L, -1), 1, "expected a table of rows");
    dims = (int64_t)lua_rawlen(L, -1);
    lua_pop(L, 1);
  }
  lode_matrix *m = lode_lua_matrix_push(L, rows, dims);
  for (int64_t i = 0; i < rows; i++) {
    lua_rawgeti(L, 1, (lua_Integer)i + 1);
    if (!lua_istable(L, -1) || (int64_t)lua_rawlen(L, -1) != dims)
      return luaL_error(L, "row %lld must be a table of %lld numbers", (long long)i + 1,
                        (long long)dims);
    for (int64_t j = 0; j < dims; j++) {
      lua_rawgeti(L, -1, (lua_Integer)j + 1);
      int ok;
      m->data[i * dims + j] = (float)lua_tonumberx(L, -1, &ok);
      if (!ok) return luaL_error(L, "row %lld column %lld is not a number", (long long)i + 1,
                                 (long long)j + 1);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  return 1;
}

static int m_len(lua_State *L) {
  lua_pushinteger(L, lode_lua_matrix_check(L, 1)->rows);
  return 1;
}

static int m_dims(lua_State *L) {
  lua_pushinteger(L, lode_lua_matrix_check(L, 1)->dims);
  return 1;
}

static int64_t check_row(lua_State *L, lode_matrix *m, int arg) {
  lua_Integer i = luaL_checkinteger(L, arg);
  luaL_argcheck(L, i >= 1 && i <= m->rows, arg, "row index out of range");
  return i - 1;
}

static int m_row(lua_State *L) {
  lode_matrix *m = lode_lua_matrix_check(L, 1);
  int64_t i = check_row(L, m, 2);
  lua_createtable(L, (int)m->dims, 0);
  for (int64_t j = 0; j < m->dims; j++) {
    lua_pushnumber(L, m->data[i * m->dims + j]);
    lua_rawseti(L, -2, (lua_Integer)j + 1);
  }
  return 1;
}

static int m_get(lua_State *L) {
  lode_matrix *m = lode_lua_matrix_check(L, 1);
  int64_t i = check_row(L, m, 2);
  lua_Integer j = luaL_checkinteger(L, 3);
  luaL_argcheck(L, j >= 1 && j <= m->dims, 3, "column index out of range");
  lua_pushnumber(L, m->data[i * m->dims + j - 1]);
  return 1;
}

static int m_set(lua_State *L) {
  lode_matrix *m = lode_lua_matrix_check(L, 1);
  int64_t i = check_row(L, m, 2);
  lua_Integer j = luaL_checkinteger(L, 3);
  luaL_argcheck(L, j >= 1 && j <= m->dims, 3, "column index out of range");
  m->data[i * m->dims + j - 1] = (float)luaL_checknumber(L, 4);
  return 0;
}

/* m:dot(v) -> { row_1 . v, ..., row_n . v } */
static int m_dot(lua_State *L) {
  lode_matrix *m = lode_lua_matrix_check(L, 1);
  int64_t n;
  float *tmp;
  const float *v = lode_lua_vector_arg(L, 2, &n, &tmp);
  if (n != m->dims)
    return luaL_error(L, "dot: vector has %lld dims, matrix has %lld", (long long)n,
                      (long long)m->dims);
  lua_createtable(L, (int)m->rows, 0);
  for (int64_t i = 0; i < m->rows; i++) {
    lua_pushnumber(L, lode_dot_f32(lode_matrix_row(m, i), v, n));
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

static int m_normalize(lua_State *L) {
  lode_matrix *m = lode_lua_matrix_check(L, 1);
  for (int64_t i = 0; i < m->rows; i++) lode_l2_normalize(lode_matrix_row(m, i), m->dims);
  lua_settop(L, 1);
  return 1;
}

static int m_tostring(lua_State *L) {
  lode_matrix *m = lode_lua_matrix_check(L, 1);
  lua_pushfstring(L, "lode.matrix(%d x %d)", (int)m->rows, (int)m->dims);
  return 1;
}

static int m_eq(lua_State *L) {
  lode_matrix *a = lode_lua_matrix_check(L, 1), *b = lode_lua_matrix_check(L, 2);
  lua_pushboolean(L, a->rows == b->rows && a->dims == b->dims &&
                         (a->rows * a->dims == 0 ||
                          !memcmp(a->data, b->data, (size_t)(a->rows * a->dims) * 4)));
  return 1;
}

static int m_gc(lua_State *L) {
  lode_matrix *m = lode_lua_matrix_check(L, 1);
  free(m->data);
  m->data = NULL;
  m->rows = m->dims = 0;
  return 0;
}

static const luaL_Reg m_methods[] = {
    {"dims", m_dims}, {"row", m_row}, {"get", m_get}, {"set", m_set},
    {"dot", m_dot},   {"normalize", m_normalize}, {NULL, NULL}};

static const luaL_Reg m_meta[] = {{"__len", m_len}, {"__tostring", m_tostring},
                                  {"__eq", m_eq},   {"__gc", m_gc},
                                  {"__close", m_gc}, {NULL, NULL}};

static int enc_matrix(lua_State *L, int idx, lode_buf *out) {
  lode_matrix *m = lode_lua_matrix_check(L, idx);
  size_t n = lode_matrix_payload_size(m);
  /* a big matrix (an embedded page: 6 MB for 3,800 chunks) gets room for
   * itself and a little more, not the doubling of lode_buf_reserve (which
   * would take 8 MB for those 6) */
  size_t need = out->len + n + 1, want = need + 65536;
  if (n > 65536 && out->cap < need && want <= out->max) {
    uint8_t *p = realloc(out->p, want);
    if (!p) return -1;
    out->p = p;
    out->cap = want;
  }
  if (lode_buf_reserve(out, n)) return -1;
  lode_matrix_payload_write(m, out->p + out->len);
  out->len += n;
  return 0;
}

/* In span previews a matrix is its shape (what matrix_json shows). */
static int sum_matrix(lua_State *L, int idx, lode_buf *out) {
  lode_matrix *m = lode_lua_matrix_check(L, idx);
  uint8_t h[8];
  uint32_t r = (uint32_t)m->rows, d = (uint32_t)m->dims;
  for (int i = 0; i < 4; i++) {
    h[i] = (uint8_t)(r >> (8 * i));
    h[4 + i] = (uint8_t)(d >> (8 * i));
  }
  return lode_buf_append(out, h, sizeof h);
}

static int dec_matrix(lua_State *L, const uint8_t *p, size_t n) {
  lode_matrix tmp;
  if (lode_matrix_payload_read(p, n, &tmp)) return -1;
  lode_lua_matrix_adopt(L, tmp.rows, tmp.dims, tmp.data);
  return 0;
}

static int matrix_json(const uint8_t *p, size_t n, lode_buf *out) {
  if (n < 8) return lode_buf_puts(out, "{\"$matrix\":null}");
  uint32_t rows = p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
  uint32_t dims = p[4] | p[5] << 8 | p[6] << 16 | (uint32_t)p[7] << 24;
  return lode_buf_printf(out, "{\"$matrix\":{\"rows\":%u,\"dims\":%u}}", rows, dims);
}

static const lode_lua_ext matrix_ext = {LODE_EXT_MATRIX, LODE_MATRIX_TNAME, enc_matrix,
                                        dec_matrix, sum_matrix};

static pthread_once_t ext_once = PTHREAD_ONCE_INIT;
static void register_ext(void) {
  lode_lua_codec_register(&matrix_ext);
  lode_codec_ext_json(LODE_EXT_MATRIX, "matrix", matrix_json);
}

void lode_lua_open_matrix(lua_State *L) {
  if (luaL_newmetatable(L, LODE_MATRIX_TNAME)) {
    luaL_setfuncs(L, m_meta, 0);
    luaL_newlib(L, m_methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  /* process-wide tables: filled once, before any thread encodes */
  pthread_once(&ext_once, register_ext);
  lua_newtable(L);
  lua_pushcfunction(L, m_new);
  lua_setfield(L, -2, "new");
  lua_pushcfunction(L, m_from);
  lua_setfield(L, -2, "from");
  lua_setfield(L, -2, "matrix");
}
