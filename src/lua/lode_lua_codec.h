#ifndef LODE_LUA_CODEC_H
#define LODE_LUA_CODEC_H
/* lode_lua_codec.h - Lua values <-> lode's checkpoint encoding (base/codec.h).
 *
 * Encoding never raises a Lua error: it returns -1 with a message naming the
 * path of the offending part, e.g. ".meta.cb is a function". Decoding pushes
 * exactly one value or returns -1 with a message (and pushes nothing). */
#include "base/codec.h"
#include "lua/lode_host.h"
#include "lua/lode_lua.h"

/* lode's own userdata register how they are encoded. `tname` is the
 * metatable name given to luaL_newmetatable. */
typedef struct lode_lua_ext {
  uint32_t id;
  const char *tname;
  /* Appends the payload for the userdata at idx; 0 or -1 (buffer cap). */
  int (*encode)(lua_State *L, int idx, lode_buf *out);
  /* Pushes a new userdata built from the payload; 0, or -1 if malformed. */
  int (*decode)(lua_State *L, const uint8_t *p, size_t n);
  /* Optional: a short payload standing for the value in previews (the
   * first bytes the codec's JSON hook reads); NULL: the payload, cut. */
  int (*summary)(lua_State *L, int idx, lode_buf *out);
} lode_lua_ext;

/* Registers an extension; call from an area's open function. */
void lode_lua_codec_register(const lode_lua_ext *ext);

/* lode_lua_encode and lode_lua_encode_args: see lua/lode_host.h. */
/* Previews for spans: the same encoding, except that strings longer than
 * max_str keep their first max_str bytes (cut at a character) followed by
 * "...[truncated N bytes]", tables stop once about `budget` bytes of
 * content are encoded (the rest counted in a last "...[N more items]"
 * element or a "..." entry), and lode's userdata are their summary. The
 * cost is bounded by the budget, not by the value. Not for checkpoints. */
int lode_lua_encode_preview(lua_State *L, int idx, size_t max_str, size_t budget, lode_buf *out,
                            char *err, size_t errlen);
int lode_lua_encode_args_preview(lua_State *L, int idx, int n, size_t max_str, size_t budget,
                                 lode_buf *out, char *err, size_t errlen);
/* Pushes the decoded value. */
int lode_lua_decode(lua_State *L, const void *p, size_t n, char *err, size_t errlen);
/* Decodes a value made by lode_lua_encode_args and pushes its elements;
 * returns their count, or -1 with err. */
int lode_lua_decode_args(lua_State *L, const void *p, size_t n, char *err, size_t errlen);

#endif
