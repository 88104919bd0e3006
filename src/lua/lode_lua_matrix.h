#ifndef LODE_LUA_MATRIX_H
#define LODE_LUA_MATRIX_H
/* lode_lua_matrix.h - the `lode.matrix` userdata, for other areas' bindings. */
#include "kernels/matrix.h"
#include "lua/lode_lua.h"

#define LODE_MATRIX_TNAME "lode.matrix"

/* Pushes a new zero-filled rows x dims matrix and returns it (raises a Lua
 * error if too large). */
lode_matrix *lode_lua_matrix_push(lua_State *L, int64_t rows, int64_t dims);
/* Pushes a matrix taking ownership of `data` (rows*dims floats, malloc'd);
 * on a Lua error `data` is freed by the userdata's __gc. */
lode_matrix *lode_lua_matrix_adopt(lua_State *L, int64_t rows, int64_t dims, float *data);
lode_matrix *lode_lua_matrix_check(lua_State *L, int idx);
/* A vector argument: a 1-row matrix or a table of numbers. Fills *v (owned by
 * the Lua stack or by *tmp, which the caller frees) and its length. */
const float *lode_lua_vector_arg(lua_State *L, int idx, int64_t *n, float **tmp);
#endif
