/* buf.c - growable byte buffers with a size cap. */
#include "base/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lode_buf_init(lode_buf *b, size_t max) {
  b->p = NULL;
  b->len = b->cap = 0;
  b->max = max ? max : LODE_BUF_DEFAULT_MAX;
}

void lode_buf_free(lode_buf *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

void lode_buf_reset(lode_buf *b) { b->len = 0; }

int lode_buf_reserve(lode_buf *b, size_t n) {
  if (n > b->max || b->len > b->max - n) return -1;
  size_t need = b->len + n + 1; /* +1: room for lode_buf_cstr's NUL */
  if (need <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  uint8_t *p = realloc(b->p, cap);
  if (!p) return -1;
  b->p = p;
  b->cap = cap;
  return 0;
}

int lode_buf_append(lode_buf *b, const void *p, size_t n) {
  if (n == 0) return 0;
  if (lode_buf_reserve(b, n)) return -1;
  memcpy(b->p + b->len, p, n);
  b->len += n;
  return 0;
}

int lode_buf_putc(lode_buf *b, uint8_t c) {
  if (lode_buf_reserve(b, 1)) return -1;
  b->p[b->len++] = c;
  return 0;
}

int lode_buf_puts(lode_buf *b, const char *s) {
  return lode_buf_append(b, s, strlen(s));
}

int lode_buf_printf(lode_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char tmp[256];
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return -1;
  if ((size_t)n < sizeof tmp) return lode_buf_append(b, tmp, (size_t)n);
  if (lode_buf_reserve(b, (size_t)n)) return -1;
  va_start(ap, fmt);
  vsnprintf((char *)b->p + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return 0;
}

char *lode_buf_cstr(lode_buf *b) {
  if (!b->p && lode_buf_reserve(b, 0)) return NULL;
  b->p[b->len] = 0;
  return (char *)b->p;
}

uint8_t *lode_buf_steal(lode_buf *b, size_t *len) {
  uint8_t *p = b->p;
  if (len) *len = b->len;
  b->p = NULL;
  b->len = b->cap = 0;
  return p;
}
