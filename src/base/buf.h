#ifndef LODE_BUF_H
#define LODE_BUF_H
/* buf.h - growable byte buffers with a size cap.
 *
 * Ownership: a lode_buf owns its bytes; lode_buf_free releases them. A buffer
 * never grows past `max` (0 means LODE_BUF_DEFAULT_MAX); an append that would
 * returns -1 and leaves the buffer unchanged. */
#include <stddef.h>
#include <stdint.h>

#define LODE_BUF_DEFAULT_MAX ((size_t)1 << 31) /* 2 GiB */

typedef struct lode_buf {
  uint8_t *p;
  size_t len, cap, max;
} lode_buf;

void lode_buf_init(lode_buf *b, size_t max);
void lode_buf_free(lode_buf *b);
void lode_buf_reset(lode_buf *b);
/* Makes room for n more bytes; 0 or -1 (cap reached / out of memory). */
int lode_buf_reserve(lode_buf *b, size_t n);
int lode_buf_append(lode_buf *b, const void *p, size_t n);
int lode_buf_putc(lode_buf *b, uint8_t c);
int lode_buf_puts(lode_buf *b, const char *s);
int lode_buf_printf(lode_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* NUL-terminates without counting the NUL in len; returns p as char*. */
char *lode_buf_cstr(lode_buf *b);
/* Hands the bytes to the caller (free() them); the buffer is left empty. */
uint8_t *lode_buf_steal(lode_buf *b, size_t *len);

#endif
