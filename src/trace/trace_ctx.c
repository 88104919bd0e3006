/* trace_ctx.c - reading and writing trace context (trace_ctx.h). */
#include "trace/trace_ctx.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"

static int hex1(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Any-version UUID text to bytes; -1 if malformed. */
static int uuid_bytes(const char *s, uint8_t out[16]) {
  if (!s || strlen(s) != 36) return -1;
  int k = 0;
  for (int i = 0; i < 36; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return -1;
      continue;
    }
    int h = hex1((unsigned char)s[i]), l = hex1((unsigned char)s[i + 1]);
    if (h < 0 || l < 0) return -1;
    out[k++] = (uint8_t)(h * 16 + l);
    i++;
  }
  return 0;
}

static int is_v7(const uint8_t b[16]) { return (b[6] >> 4) == 7 && (b[8] & 0xc0) == 0x80; }

int lode_uuid7_parse(const char *s, uint8_t out[16]) {
  uint8_t b[16];
  if (uuid_bytes(s, b) || !is_v7(b)) return -1;
  if (out) memcpy(out, b, 16);
  return 0;
}

int lode_otlp_trace_id(const char *uuid, uint8_t out[16]) { return uuid_bytes(uuid, out); }

int lode_otlp_span_id(const char *uuid, uint8_t out[8]) {
  uint8_t b[16];
  if (uuid_bytes(uuid, b)) return -1;
  memcpy(out, b + 8, 8);
  return 0;
}

static void uuid_text(const uint8_t b[16], char out[37]) {
  static const char hx[] = "0123456789abcdef";
  int o = 0;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
    out[o++] = hx[b[i] >> 4];
    out[o++] = hx[b[i] & 15];
  }
  out[o] = 0;
}

static void hex_text(const uint8_t *b, int n, char *out) {
  static const char hx[] = "0123456789abcdef";
  for (int i = 0; i < n; i++) {
    out[2 * i] = hx[b[i] >> 4];
    out[2 * i + 1] = hx[b[i] & 15];
  }
  out[2 * n] = 0;
}

/* n bytes of lower-case hex at s; -1 on anything else. */
static int lower_hex(const char *s, int n, uint8_t *out) {
  for (int i = 0; i < n; i++) {
    int h = s[2 * i], l = s[2 * i + 1];
    if (isupper(h) || isupper(l) || hex1(h) < 0 || hex1(l) < 0) return -1;
    out[i] = (uint8_t)(hex1(h) * 16 + hex1(l));
  }
  return 0;
}

static int all_zero(const uint8_t *b, int n) {
  for (int i = 0; i < n; i++)
    if (b[i]) return 0;
  return 1;
}

int lode_traceparent_parse(const char *s, uint8_t trace_id[16], uint8_t span_id[8],
                           uint8_t *flags) {
  uint8_t ver, t[16], p[8], f;
  if (!s) return -1;
  size_t n = strlen(s);
  if (n < 55 || lower_hex(s, 1, &ver) || ver == 0xff || s[2] != '-' || s[35] != '-' ||
      s[52] != '-')
    return -1;
  if (ver == 0 && n != 55) return -1;
  if (ver != 0 && n > 55 && s[55] != '-') return -1;
  if (lower_hex(s + 3, 16, t) || lower_hex(s + 36, 8, p) || lower_hex(s + 53, 1, &f)) return -1;
  if (all_zero(t, 16) || all_zero(p, 8)) return -1;
  if (trace_id) memcpy(trace_id, t, 16);
  if (span_id) memcpy(span_id, p, 8);
  if (flags) *flags = f;
  return 0;
}

/* W3C baggage: list-members "key=value[;properties]" separated by commas,
 * keys are tokens, values baggage-octets or percent-escapes. 0 when s is
 * well-formed and within the limits. */
static int token_char(int c) {
  return c > 0x20 && c < 0x7f && !strchr("()<>@,;:\\\"/[]?={}", c);
}
static int value_char(int c) {
  return c == 0x21 || (c >= 0x23 && c <= 0x2b) || (c >= 0x2d && c <= 0x3a) ||
         (c >= 0x3c && c <= 0x5b) || (c >= 0x5d && c <= 0x7e);
}
static int baggage_ok(const char *s) {
  if (strlen(s) > LODE_BAGGAGE_MAX) return -1;
  int members = 0;
  const char *p = s;
  while (*p) {
    while (*p == ' ' || *p == '\t') p++;
    const char *k = p;
    while (token_char((unsigned char)*p)) p++;
    if (p == k) return -1;
    while (*p == ' ' || *p == '\t') p++;
    if (*p++ != '=') return -1;
    while (*p == ' ' || *p == '\t') p++;
    while (*p && *p != ',' && *p != ';' && *p != ' ' && *p != '\t') {
      if (*p == '%') {
        if (hex1((unsigned char)p[1]) < 0 || hex1((unsigned char)p[2]) < 0) return -1;
        p += 3;
      } else if (value_char((unsigned char)*p)) {
        p++;
      } else {
        return -1;
      }
    }
    while (*p == ' ' || *p == '\t') p++;
    if (*p == ';') /* properties: kept as given, printable ASCII up to the next member */
      while (*p && *p != ',') {
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e) return -1;
        p++;
      }
    if (++members > 180) return -1;
    if (*p == ',') {
      p++;
      if (!*p) return -1;
    } else if (*p) {
      return -1;
    }
  }
  return 0;
}

/* The value of member `key` in a well-formed baggage string, percent-decoded
 * into out; 0 when found. */
static int baggage_get(const char *s, const char *key, char *out, size_t outlen) {
  size_t kl = strlen(key);
  const char *p = s;
  while (p && *p) {
    while (*p == ' ' || *p == '\t') p++;
    if (!strncmp(p, key, kl)) {
      const char *q = p + kl;
      while (*q == ' ' || *q == '\t') q++;
      if (*q == '=') {
        q++;
        while (*q == ' ' || *q == '\t') q++;
        size_t o = 0;
        while (*q && *q != ',' && *q != ';' && *q != ' ' && o + 1 < outlen) {
          if (*q == '%') {
            out[o++] = (char)(hex1((unsigned char)q[1]) * 16 + hex1((unsigned char)q[2]));
            q += 3;
          } else {
            out[o++] = *q++;
          }
        }
        out[o] = 0;
        return 0;
      }
    }
    p = strchr(p, ',');
    if (p) p++;
  }
  return -1;
}

int lode_trace_ctx_read(lode_trace_ctx *c, const char *where, const char *traceparent,
                        const char *baggage, const char *opik_trace_id,
                        const char *opik_parent_span_id) {
  memset(c, 0, sizeof *c);
  int took = 0;
  if (traceparent && *traceparent) {
    if (lode_traceparent_parse(traceparent, NULL, NULL, NULL) == 0) {
      snprintf(c->traceparent, sizeof c->traceparent, "%.55s", traceparent);
      took = 1;
    } else {
      lode_warn("%s: traceparent '%.80s' is not a valid W3C traceparent; ignored", where,
                traceparent);
    }
  }
  if (baggage && *baggage) {
    if (baggage_ok(baggage) == 0) {
      lode_strlcpy(c->baggage, baggage, sizeof c->baggage);
      took = 1;
    } else {
      lode_warn("%s: baggage '%.80s%s' is not valid W3C baggage (or longer than %d bytes); "
                "ignored", where, baggage, strlen(baggage) > 80 ? "..." : "", LODE_BAGGAGE_MAX);
    }
  }
  /* Opik's pair: the headers, else the same names in the baggage */
  char bt[64] = "", bp[64] = "";
  const char *ot = opik_trace_id, *op = opik_parent_span_id;
  if (!(ot && *ot) && !(op && *op) && c->baggage[0]) {
    if (!baggage_get(c->baggage, "opik_trace_id", bt, sizeof bt)) ot = bt;
    if (!baggage_get(c->baggage, "opik_parent_span_id", bp, sizeof bp)) op = bp;
  }
  if ((ot && *ot) || (op && *op)) {
    if (!(ot && *ot) || !(op && *op))
      lode_warn("%s: opik_trace_id and opik_parent_span_id come together (Opik's "
                "distributed-trace headers); only one was given, ignored", where);
    else if (lode_uuid7_parse(ot, NULL))
      lode_warn("%s: opik_trace_id '%.40s' is not a UUIDv7; Opik's headers ignored", where, ot);
    else if (lode_uuid7_parse(op, NULL))
      lode_warn("%s: opik_parent_span_id '%.40s' is not a UUIDv7; Opik's headers ignored", where,
                op);
    else {
      /* lower case, as lode writes ids */
      for (int i = 0; i < 36; i++) {
        c->trace_id[i] = (char)tolower((unsigned char)ot[i]);
        c->parent_span_id[i] = (char)tolower((unsigned char)op[i]);
      }
      took = 1;
    }
  }
  if (!c->trace_id[0] && c->traceparent[0]) {
    uint8_t t[16];
    lode_traceparent_parse(c->traceparent, t, NULL, NULL);
    if (is_v7(t)) uuid_text(t, c->trace_id);
    /* else: not an Opik trace id; lode starts its own trace and links the
     * caller's (docs/tracing.md) */
  }
  return took;
}

static lode_trace_ctx joined;
static int has_joined;

void lode_trace_join(const lode_trace_ctx *c) {
  has_joined = c != NULL;
  if (c) joined = *c;
}

const lode_trace_ctx *lode_trace_joined(void) { return has_joined ? &joined : NULL; }

int lode_ctx_headers_make(lode_ctx_headers *h, const char *trace_id, const char *span_id) {
  uint8_t t[16], s[8];
  if (!trace_id || !span_id || lode_otlp_trace_id(trace_id, t) || lode_otlp_span_id(span_id, s))
    return -1;
  char th[33], sh[17];
  hex_text(t, 16, th);
  hex_text(s, 8, sh);
  snprintf(h->traceparent, sizeof h->traceparent, "00-%s-%s-01", th, sh);
  lode_strlcpy(h->trace_id, trace_id, sizeof h->trace_id);
  lode_strlcpy(h->span_id, span_id, sizeof h->span_id);
  int n = snprintf(h->baggage, sizeof h->baggage, "opik_trace_id=%s,opik_parent_span_id=%s",
                   trace_id, span_id);
  /* the joined caller's other members travel on (W3C baggage propagation) */
  const lode_trace_ctx *j = lode_trace_joined();
  if (j && j->baggage[0]) {
    const char *p = j->baggage;
    while (*p) {
      const char *e = strchr(p, ',');
      size_t len = e ? (size_t)(e - p) : strlen(p);
      const char *k = p;
      while (*k == ' ' || *k == '\t') k++;
      if (strncmp(k, "opik_trace_id", 13) && strncmp(k, "opik_parent_span_id", 19) &&
          (size_t)n + len + 1 < sizeof h->baggage && n + len + 1 <= LODE_BAGGAGE_MAX)
        n += snprintf(h->baggage + n, sizeof h->baggage - (size_t)n, ",%.*s", (int)len, p);
      p = e ? e + 1 : p + len;
    }
  }
  h->name[0] = "traceparent";
  h->value[0] = h->traceparent;
  h->name[1] = "baggage";
  h->value[1] = h->baggage;
  h->name[2] = "opik_trace_id";
  h->value[2] = h->trace_id;
  h->name[3] = "opik_parent_span_id";
  h->value[3] = h->span_id;
  return 0;
}
