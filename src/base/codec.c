/* codec.c - lode's checkpoint value encoding. See codec.h for the format. */
#include "base/codec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- writing ------------------------------------------------------------ */

static int put_varint(lode_buf *b, uint64_t v) {
  uint8_t tmp[10];
  int n = 0;
  while (v >= 0x80) {
    tmp[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  tmp[n++] = (uint8_t)v;
  return lode_buf_append(b, tmp, (size_t)n);
}

int lode_codec_put_version(lode_buf *b) { return lode_buf_putc(b, LODE_CODEC_VERSION); }
int lode_codec_put_nil(lode_buf *b) { return lode_buf_putc(b, LODE_V_NIL); }
int lode_codec_put_bool(lode_buf *b, int v) {
  return lode_buf_putc(b, v ? LODE_V_TRUE : LODE_V_FALSE);
}

int lode_codec_put_int(lode_buf *b, int64_t v) {
  uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
  if (lode_buf_putc(b, LODE_V_INT)) return -1;
  return put_varint(b, z);
}

int lode_codec_put_float(lode_buf *b, double v) {
  uint64_t u;
  memcpy(&u, &v, 8);
  uint8_t t[9];
  t[0] = LODE_V_FLOAT;
  for (int i = 0; i < 8; i++) t[1 + i] = (uint8_t)(u >> (8 * i));
  return lode_buf_append(b, t, 9);
}

int lode_codec_put_str(lode_buf *b, const void *s, size_t n) {
  if (lode_buf_putc(b, LODE_V_STR) || put_varint(b, n)) return -1;
  return lode_buf_append(b, s, n);
}

int lode_codec_put_table(lode_buf *b, uint64_t narr, uint64_t nhash) {
  if (lode_buf_putc(b, LODE_V_TABLE)) return -1;
  if (put_varint(b, narr)) return -1;
  return put_varint(b, nhash);
}

int lode_codec_put_ext(lode_buf *b, uint32_t id, const void *p, size_t n) {
  if (lode_buf_putc(b, LODE_V_EXT) || put_varint(b, id) || put_varint(b, n)) return -1;
  return lode_buf_append(b, p, n);
}

/* ---- reading ------------------------------------------------------------ */

static int fail(lode_codec_reader *r, const char *msg) {
  snprintf(r->err, sizeof r->err, "corrupt value: %s", msg);
  return -1;
}

static int get_varint(lode_codec_reader *r, uint64_t *v) {
  uint64_t x = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (r->p >= r->end) return fail(r, "truncated varint");
    uint8_t c = *r->p++;
    x |= (uint64_t)(c & 0x7f) << shift;
    if (!(c & 0x80)) {
      *v = x;
      return 0;
    }
  }
  return fail(r, "varint too long");
}

int lode_codec_reader_init(lode_codec_reader *r, const void *p, size_t n) {
  r->p = p;
  r->end = r->p + n;
  r->err[0] = 0;
  if (n == 0) return fail(r, "empty");
  if (*r->p != LODE_CODEC_VERSION) {
    snprintf(r->err, sizeof r->err, "unknown value encoding version %u", *r->p);
    return -1;
  }
  r->p++;
  return 0;
}

int lode_codec_next(lode_codec_reader *r, lode_codec_item *it) {
  if (r->p >= r->end) return fail(r, "truncated");
  memset(it, 0, sizeof *it);
  it->tag = (enum lode_codec_tag) * r->p++;
  uint64_t u, n;
  switch (it->tag) {
    case LODE_V_NIL:
    case LODE_V_FALSE:
    case LODE_V_TRUE: return 0;
    case LODE_V_INT:
      if (get_varint(r, &u)) return -1;
      it->i = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
      return 0;
    case LODE_V_FLOAT:
      if (r->end - r->p < 8) return fail(r, "truncated float");
      u = 0;
      for (int i = 0; i < 8; i++) u |= (uint64_t)r->p[i] << (8 * i);
      memcpy(&it->f, &u, 8);
      r->p += 8;
      return 0;
    case LODE_V_STR:
      if (get_varint(r, &n)) return -1;
      if ((uint64_t)(r->end - r->p) < n) return fail(r, "truncated string");
      it->s = r->p;
      it->n = (size_t)n;
      r->p += n;
      return 0;
    case LODE_V_TABLE:
      if (get_varint(r, &it->narr) || get_varint(r, &it->nhash)) return -1;
      /* every child takes at least one byte: reject absurd counts early */
      if (it->narr > (uint64_t)(r->end - r->p) ||
          it->nhash > (uint64_t)(r->end - r->p) / 2)
        return fail(r, "table count exceeds data");
      return 0;
    case LODE_V_EXT:
      if (get_varint(r, &u) || get_varint(r, &n)) return -1;
      if (u > UINT32_MAX) return fail(r, "bad extension id");
      if ((uint64_t)(r->end - r->p) < n) return fail(r, "truncated extension");
      it->ext = (uint32_t)u;
      it->s = r->p;
      it->n = (size_t)n;
      r->p += n;
      return 0;
  }
  return fail(r, "unknown tag");
}

static int skip_depth(lode_codec_reader *r, int depth) {
  lode_codec_item it;
  if (depth > LODE_CODEC_MAX_DEPTH) return fail(r, "nested too deeply");
  if (lode_codec_next(r, &it)) return -1;
  if (it.tag != LODE_V_TABLE) return 0;
  for (uint64_t i = 0; i < it.narr + 2 * it.nhash; i++)
    if (skip_depth(r, depth + 1)) return -1;
  return 0;
}

int lode_codec_skip(lode_codec_reader *r) { return skip_depth(r, 0); }

/* ---- JSON --------------------------------------------------------------- */

#define MAX_EXT 16
static struct {
  const char *name;
  lode_codec_ext_json_fn fn;
} ext_json[MAX_EXT];

void lode_codec_ext_json(uint32_t id, const char *name, lode_codec_ext_json_fn fn) {
  if (id < MAX_EXT) {
    ext_json[id].name = name;
    ext_json[id].fn = fn;
  }
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t utf8_valid_len(const uint8_t *s, size_t n) {
  uint8_t c = s[0];
  if (c < 0x80) return 1;
  size_t len;
  uint32_t cp;
  if (c >= 0xc2 && c <= 0xdf) { len = 2; cp = c & 0x1f; }
  else if (c >= 0xe0 && c <= 0xef) { len = 3; cp = c & 0x0f; }
  else if (c >= 0xf0 && c <= 0xf4) { len = 4; cp = c & 0x07; }
  else return 0;
  if (n < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
      (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return len;
}

static int json_str_n(lode_buf *out, const uint8_t *s, size_t n, size_t extra_note) {
  static const char hex[] = "0123456789abcdef";
  if (lode_buf_putc(out, '"')) return -1;
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      size_t j = i;
      while (j < n && s[j] >= 0x20 && s[j] < 0x80 && s[j] != '"' && s[j] != '\\') j++;
      if (lode_buf_append(out, s + i, j - i)) return -1;
      i = j;
      continue;
    }
    if (c < 0x80) {
      char e[7] = {'\\', 0, 0, 0, 0, 0, 0};
      size_t el = 2;
      switch (c) {
        case '"': e[1] = '"'; break;
        case '\\': e[1] = '\\'; break;
        case '\n': e[1] = 'n'; break;
        case '\r': e[1] = 'r'; break;
        case '\t': e[1] = 't'; break;
        default:
          e[1] = 'u'; e[2] = '0'; e[3] = '0';
          e[4] = hex[c >> 4]; e[5] = hex[c & 15];
          el = 6;
      }
      if (lode_buf_append(out, e, el)) return -1;
      i++;
      continue;
    }
    size_t l = utf8_valid_len(s + i, n - i);
    if (l == 0) {
      if (lode_buf_append(out, "\xef\xbf\xbd", 3)) return -1;
      i++;
    } else {
      if (lode_buf_append(out, s + i, l)) return -1;
      i += l;
    }
  }
  if (extra_note && lode_buf_printf(out, "...[truncated %zu bytes]", extra_note)) return -1;
  return lode_buf_putc(out, '"');
}

int lode_json_put_str(lode_buf *out, const void *s, size_t n) {
  return json_str_n(out, s, n, 0);
}

static int json_value(lode_codec_reader *r, size_t max_str, size_t budget, lode_buf *out,
                      int depth);

/* The shortest %g form that reads back as the same double. */
static int put_shortest(lode_buf *out, double f) {
  char tmp[40];
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(tmp, sizeof tmp, "%.*g", prec, f);
    if (strtod(tmp, NULL) == f) break;
  }
  return lode_buf_puts(out, tmp);
}

static int json_key(lode_codec_reader *r, lode_buf *out) {
  lode_codec_item k;
  if (lode_codec_next(r, &k)) return -1;
  char tmp[64];
  switch (k.tag) {
    case LODE_V_STR: return json_str_n(out, k.s, k.n, 0);
    case LODE_V_INT: snprintf(tmp, sizeof tmp, "%lld", (long long)k.i); break;
    case LODE_V_FLOAT: snprintf(tmp, sizeof tmp, "%.17g", k.f); break;
    case LODE_V_TRUE: snprintf(tmp, sizeof tmp, "true"); break;
    case LODE_V_FALSE: snprintf(tmp, sizeof tmp, "false"); break;
    default: return fail(r, "unsupported key type");
  }
  return json_str_n(out, (const uint8_t *)tmp, strlen(tmp), 0);
}

/* Past the byte budget, the rest of a table is skipped and counted. */
static int over(const lode_buf *out, size_t budget) { return budget && out->len >= budget; }

static int json_value(lode_codec_reader *r, size_t max_str, size_t budget, lode_buf *out,
                      int depth) {
  lode_codec_item it;
  if (depth > LODE_CODEC_MAX_DEPTH) return fail(r, "nested too deeply");
  if (lode_codec_next(r, &it)) return -1;
  switch (it.tag) {
    case LODE_V_NIL: return lode_buf_puts(out, "null");
    case LODE_V_FALSE: return lode_buf_puts(out, "false");
    case LODE_V_TRUE: return lode_buf_puts(out, "true");
    case LODE_V_INT: return lode_buf_printf(out, "%lld", (long long)it.i);
    case LODE_V_FLOAT:
      if (isnan(it.f) || isinf(it.f)) return lode_buf_puts(out, "null");
      if (it.f == floor(it.f) && fabs(it.f) < 1e15)
        return lode_buf_printf(out, "%.1f", it.f);
      return put_shortest(out, it.f);
    case LODE_V_STR:
      if (max_str && it.n > max_str) {
        size_t cut = max_str; /* do not cut inside a UTF-8 sequence */
        while (cut > 0 && (it.s[cut] & 0xc0) == 0x80) cut--;
        return json_str_n(out, it.s, cut, it.n - cut);
      }
      return json_str_n(out, it.s, it.n, 0);
    case LODE_V_EXT:
      if (it.ext < MAX_EXT && ext_json[it.ext].fn) return ext_json[it.ext].fn(it.s, it.n, out);
      return lode_buf_printf(out, "{\"$ext\":%u,\"bytes\":%zu}", it.ext, it.n);
    case LODE_V_TABLE: {
      int as_array = it.nhash == 0 && it.narr > 0;
      uint64_t left = 0;
      if (lode_buf_putc(out, as_array ? '[' : '{')) return -1;
      for (uint64_t i = 0; i < it.narr; i++) {
        if (over(out, budget)) {
          if (lode_codec_skip(r)) return -1;
          left++;
          continue;
        }
        if (i && lode_buf_putc(out, ',')) return -1;
        if (!as_array && lode_buf_printf(out, "\"%llu\":", (unsigned long long)(i + 1)))
          return -1;
        if (json_value(r, max_str, budget, out, depth + 1)) return -1;
      }
      for (uint64_t i = 0; i < it.nhash; i++) {
        if (over(out, budget)) {
          if (lode_codec_skip(r) || lode_codec_skip(r)) return -1;
          left++;
          continue;
        }
        if ((i || it.narr) && lode_buf_putc(out, ',')) return -1;
        if (json_key(r, out) || lode_buf_putc(out, ':')) return -1;
        if (json_value(r, max_str, budget, out, depth + 1)) return -1;
      }
      if (left) {
        int first = left == it.narr + it.nhash;
        if (!first && lode_buf_putc(out, ',')) return -1;
        if (as_array ? lode_buf_printf(out, "\"...[%llu more items]\"", (unsigned long long)left)
                     : lode_buf_printf(out, "\"...\":\"[%llu more entries]\"",
                                       (unsigned long long)left))
          return -1;
      }
      return lode_buf_putc(out, as_array ? ']' : '}');
    }
  }
  return fail(r, "unknown tag");
}

int lode_codec_to_json_budget(const void *p, size_t n, size_t max_str, size_t budget,
                              lode_buf *out, char *err, size_t errlen) {
  lode_codec_reader r;
  if (lode_codec_reader_init(&r, p, n) || json_value(&r, max_str, budget, out, 0)) {
    snprintf(err, errlen, "%s", r.err[0] ? r.err : "cannot render value (out of memory)");
    return -1;
  }
  if (lode_buf_cstr(out) == NULL) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  return 0;
}

int lode_codec_to_json(const void *p, size_t n, size_t max_str, lode_buf *out,
                       char *err, size_t errlen) {
  return lode_codec_to_json_budget(p, n, max_str, 0, out, err, errlen);
}

int lode_codec_args_to_json(const void *p, size_t n, size_t max_str, lode_buf *out, char *err,
                            size_t errlen) {
  return lode_codec_args_to_json_budget(p, n, max_str, 0, out, err, errlen);
}

int lode_codec_args_to_json_budget(const void *p, size_t n, size_t max_str, size_t budget,
                                   lode_buf *out, char *err, size_t errlen) {
  lode_codec_reader r;
  lode_codec_item it, k;
  if (lode_codec_reader_init(&r, p, n) == 0 && lode_codec_next(&r, &it) == 0 &&
      it.tag == LODE_V_TABLE && it.nhash == 1) {
    size_t mark = out->len;
    int ok = lode_buf_putc(out, '[') == 0;
    for (uint64_t i = 0; ok && i < it.narr; i++)
      ok = (i == 0 || lode_buf_putc(out, ',') == 0) &&
           json_value(&r, max_str, budget, out, 1) == 0;
    ok = ok && lode_codec_next(&r, &k) == 0 && k.tag == LODE_V_STR && k.n == 1 && k.s[0] == 'n';
    if (ok && lode_buf_putc(out, ']') == 0 && lode_buf_cstr(out)) return 0;
    out->len = mark;
  }
  return lode_codec_to_json_budget(p, n, max_str, budget, out, err, errlen);
}
