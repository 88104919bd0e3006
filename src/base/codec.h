#ifndef LODE_CODEC_H
#define LODE_CODEC_H
/* codec.h - lode's checkpoint value encoding (no Lua here; the Lua walker is
 * src/lua/lode_lua_codec.c).
 *
 * Wire format, version 1: one version byte (LODE_CODEC_VERSION), then one
 * value. A value is a tag byte followed by:
 *   NIL, FALSE, TRUE       nothing
 *   INT                    zigzag varint (int64)
 *   FLOAT                  8 bytes, IEEE-754 binary64, little-endian
 *   STR                    varint length, bytes (binary-safe)
 *   TABLE                  varint narr, varint nhash, narr values (keys 1..narr),
 *                          then nhash key/value pairs
 *   EXT                    varint ext id, varint length, payload (lode's own
 *                          userdata such as matrices; see lode_codec_ext_json)
 * Integers and floats stay distinct: 1 and 1.0 decode to what was encoded.
 *
 * Ownership: writers append to a caller-owned lode_buf. Readers point into the
 * caller's bytes and copy nothing; strings returned by the reader are not
 * NUL-terminated. */
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define LODE_CODEC_VERSION 1
#define LODE_CODEC_MAX_DEPTH 200

enum lode_codec_tag {
  LODE_V_NIL = 0,
  LODE_V_FALSE = 1,
  LODE_V_TRUE = 2,
  LODE_V_INT = 3,
  LODE_V_FLOAT = 4,
  LODE_V_STR = 5,
  LODE_V_TABLE = 6,
  LODE_V_EXT = 7,
};

/* Known extension ids. Never reuse a number. */
enum { LODE_EXT_MATRIX = 1 };

/* ---- writing (each returns 0, or -1 when the buffer cap is reached) ---- */
int lode_codec_put_version(lode_buf *b);
int lode_codec_put_nil(lode_buf *b);
int lode_codec_put_bool(lode_buf *b, int v);
int lode_codec_put_int(lode_buf *b, int64_t v);
int lode_codec_put_float(lode_buf *b, double v);
int lode_codec_put_str(lode_buf *b, const void *s, size_t n);
int lode_codec_put_table(lode_buf *b, uint64_t narr, uint64_t nhash);
int lode_codec_put_ext(lode_buf *b, uint32_t id, const void *p, size_t n);

/* ---- reading ---- */
typedef struct lode_codec_item {
  enum lode_codec_tag tag;
  int64_t i;
  double f;
  const uint8_t *s; /* STR bytes or EXT payload */
  size_t n;         /* their length */
  uint64_t narr, nhash;
  uint32_t ext;
} lode_codec_item;

typedef struct lode_codec_reader {
  const uint8_t *p, *end;
  char err[128];
} lode_codec_reader;

/* Starts reading an encoded value: checks the version byte. 0 or -1 (err). */
int lode_codec_reader_init(lode_codec_reader *r, const void *p, size_t n);
/* Reads the next item header (for TABLE only the counts: the caller reads
 * the children). 0 or -1 with r->err set. */
int lode_codec_next(lode_codec_reader *r, lode_codec_item *it);
/* Skips one whole value (with children). */
int lode_codec_skip(lode_codec_reader *r);

/* ---- JSON view, for the CLI and for trace spans ----
 * Renders an encoded value as JSON text into out (NUL-terminated). Strings
 * longer than max_str bytes (0: no limit) are cut and end with
 * "...[truncated N bytes]"; invalid UTF-8 is replaced by U+FFFD. Returns 0 or
 * -1 with err filled. */
int lode_codec_to_json(const void *p, size_t n, size_t max_str, lode_buf *out,
                       char *err, size_t errlen);

/* The same for an argument list (lode_lua_encode_args): a JSON array. */
int lode_codec_args_to_json(const void *p, size_t n, size_t max_str, lode_buf *out, char *err,
                            size_t errlen);
/* The same, stopping near `budget` bytes of JSON (0: no limit): the rest of
 * any table is skipped and counted ("...[N more items]" as the last array
 * element, "...": "[N more entries]" as the last member), so a huge value
 * costs no more than its preview. */
int lode_codec_to_json_budget(const void *p, size_t n, size_t max_str, size_t budget,
                              lode_buf *out, char *err, size_t errlen);
int lode_codec_args_to_json_budget(const void *p, size_t n, size_t max_str, size_t budget,
                                   lode_buf *out, char *err, size_t errlen);

/* Extensions may register how their payload looks in JSON. The hook appends
 * JSON to out; it must be registered before threads start. */
typedef int (*lode_codec_ext_json_fn)(const uint8_t *p, size_t n, lode_buf *out);
void lode_codec_ext_json(uint32_t id, const char *name, lode_codec_ext_json_fn fn);

/* JSON string escaping (shared by the JSON writers); replaces invalid UTF-8
 * with U+FFFD. */
int lode_json_put_str(lode_buf *out, const void *s, size_t n);

#endif
