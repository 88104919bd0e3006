#ifndef LODE_FUZZ_COMMON_H
#define LODE_FUZZ_COMMON_H
/* fuzz_common.h - invariant checks shared by the text fuzz targets. A broken
 * invariant aborts, which libFuzzer reports as a crash with the input. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/text.h"

#define FUZZ_CHECK(cond)                                                  \
  do {                                                                    \
    if (!(cond)) {                                                        \
      fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, \
              #cond);                                                     \
      abort();                                                            \
    }                                                                     \
  } while (0)

/* Separator lists the split targets pick from (the first byte chooses). */
static const char *const fuzz_seps[][4] = {
    {"\n\n", "\n", " ", ""}, {"\n", " ", NULL, NULL}, {"\n\n", NULL, NULL, NULL},
    {". ", "\xE3\x80\x82", "\n", ""}, {" ", "\n\n", NULL, NULL}, {"", NULL, NULL, NULL},
};

/* Fills split options from the input's first bytes; returns bytes used. */
static inline size_t fuzz_split_opts(const uint8_t *d, size_t n, struct lode_text_split_opts *o) {
  lode_text_split_opts_default(o);
  if (n < 3) return 0;
  o->size = 1 + d[0] % 64;
  o->overlap = d[1] % o->size;
  o->keep_separator = d[2] & 1;
  size_t which = (d[2] >> 1) % (sizeof fuzz_seps / sizeof fuzz_seps[0]);
  for (size_t i = 0; i < 4 && fuzz_seps[which][i]; i++) {
    o->separators[i] = fuzz_seps[which][i];
    o->separator_lens[i] = strlen(fuzz_seps[which][i]);
    o->nseparators++;
  }
  return 3;
}

/* Valid UTF-8 out, spans inside the source, exact chunks equal their span,
 * and chunks no longer than `size` code points when the separator list ends
 * with "" (LangChain only promises that then). */
static inline void fuzz_check_chunks(const struct lode_text_chunks *c, const char *src, size_t n,
                              const struct lode_text_split_opts *o) {
  int bounded = o->nseparators == 0 || o->separator_lens[o->nseparators - 1] == 0;
  for (size_t i = 0; i < c->n; i++) {
    const struct lode_text_chunk *k = &c->v[i];
    FUZZ_CHECK(k->len > 0);
    FUZZ_CHECK(lode_text_utf8_invalid_at(k->text, k->len) == k->len);
    FUZZ_CHECK(k->start <= k->end && k->end <= n);
    if (k->exact) {
      FUZZ_CHECK(k->end - k->start == k->len);
      FUZZ_CHECK(memcmp(src + k->start, k->text, k->len) == 0);
    }
    if (bounded) FUZZ_CHECK(lode_text_cp_count(k->text, k->len) <= (size_t)o->size);
    for (size_t h = 0; h < k->nheaders; h++) {
      const struct lode_text_header *hd = &c->headers[k->header_first + h];
      FUZZ_CHECK(lode_text_utf8_invalid_at(hd->text, hd->len) == hd->len);
      FUZZ_CHECK(hd->level >= 1 && hd->level <= 6);
      if (h > 0) FUZZ_CHECK(hd->level > c->headers[k->header_first + h - 1].level);
    }
  }
}

#endif
