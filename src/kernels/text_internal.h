#ifndef LODE_TEXT_INTERNAL_H
#define LODE_TEXT_INTERNAL_H
/* text_internal.h - what text_split.c shares with text_markdown.c.
 *
 * A splitter works on a "working text": the source itself when it is valid
 * UTF-8, else a repaired copy (invalid bytes -> U+FFFD) plus a map from
 * working offsets back to source offsets. Chunks are appended to a list that
 * owns every byte they point to; lode__text_chunks_finish() turns arena
 * offsets into pointers once the list stops growing. */
#include "kernels/text.h"

struct lode__text_work {
  const char *t;  /* working text (source or repaired copy) */
  const char *src; /* the original input */
  size_t len;
  size_t *map;    /* working offset -> source offset (len+1), or NULL */
  int repaired;
};

/* Sets up the working text for `s`; the repaired copy (if any) is handed to
 * `out->repaired`. 0 or -1 (out of memory / too large, with `err`). */
int lode__text_work_init(struct lode__text_work *w, const char *s, size_t len,
                         struct lode_text_chunks *out, char *err);
void lode__text_work_free(struct lode__text_work *w);

struct lode_text_chunks *lode__text_chunks_new(void);
/* Copies bytes into the arena; returns the offset or (size_t)-1. */
size_t lode__text_arena_put(struct lode_text_chunks *c, const char *p, size_t n);
void lode__text_chunks_finish(struct lode_text_chunks *c,
                              const struct lode__text_work *w);

/* Splits working-text range [off, off+len) and appends its chunks, each
 * tagged with the header path (first, n). 0 or -1 (out of memory). */
int lode__text_split_range(const struct lode__text_work *w,
                           const struct lode_text_split_opts *o,
                           struct lode_text_chunks *out, size_t off,
                           size_t len, size_t header_first, size_t nheaders);

/* Length of the valid UTF-8 sequence at p (n >= 1 bytes available), 0 if
 * the bytes there are not one. */
size_t lode__text_utf8_seq(const unsigned char *p, size_t n);

/* Length in bytes of JS-trim() whitespace at the start / end of p[0..n). */
size_t lode__text_ws_prefix(const char *p, size_t n);
size_t lode__text_ws_suffix(const char *p, size_t n);

#endif
