/* fuzz_split_markdown.c - lode_text_split_markdown on any bytes. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  struct lode_text_markdown_opts o;
  lode_text_markdown_opts_default(&o);
  size_t used = fuzz_split_opts(d, n, &o.split);
  if (n > used) {
    o.levels = (unsigned)(d[used] & 0x7E) ? (unsigned)(d[used] & 0x7E) : 0x7E;
    o.strip_headers = d[used] & 1;
    used++;
  }
  const char *s = (const char *)d + used;
  size_t len = n - used;
  struct lode_text_chunks *c = NULL;
  char err[LODE_TEXT_ERRLEN];
  FUZZ_CHECK(lode_text_split_markdown(s, len, &o, &c, err) == 0);
  fuzz_check_chunks(c, s, len, &o.split);
  for (size_t i = 1; i < c->n; i++) FUZZ_CHECK(c->v[i].start >= c->v[i - 1].start);
  lode_text_chunks_free(c);
  return 0;
}
