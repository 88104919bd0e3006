/* fuzz_split.c - lode_text_split on any bytes with options from the input. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  struct lode_text_split_opts o;
  size_t used = fuzz_split_opts(d, n, &o);
  const char *s = (const char *)d + used;
  size_t len = n - used;
  struct lode_text_chunks *c = NULL;
  char err[LODE_TEXT_ERRLEN];
  FUZZ_CHECK(lode_text_split(s, len, &o, &c, err) == 0);
  fuzz_check_chunks(c, s, len, &o);
  /* chunks come in source order, overlapping by at most the overlap */
  for (size_t i = 1; i < c->n; i++) FUZZ_CHECK(c->v[i].start >= c->v[i - 1].start);
  lode_text_chunks_free(c);
  return 0;
}
