/* fuzz_normalize.c - lode_text_normalize on any bytes with options from the
 * first byte: valid UTF-8 out; with `controls` no control characters but
 * "\n" and "\t"; with `whitespace` no double blanks, no blank line runs and
 * nothing to trim. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  if (n < 1) return 0;
  struct lode_text_normalize_opts o;
  lode_text_normalize_opts_default(&o);
  o.nfc = d[0] & 1;
  o.nfkc = (d[0] >> 1) & 1;
  o.controls = (d[0] >> 2) & 1;
  o.whitespace = (d[0] >> 3) & 1;
  char *out = NULL, err[LODE_TEXT_ERRLEN];
  size_t len = 0;
  FUZZ_CHECK(lode_text_normalize((const char *)d + 1, n - 1, &o, &out, &len, err) == 0);
  FUZZ_CHECK(out[len] == 0);
  FUZZ_CHECK(lode_text_utf8_invalid_at(out, len) == len);
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)out[i];
    if (o.controls) FUZZ_CHECK(c >= 0x20 || c == '\n' || c == '\t');
    if (o.controls) FUZZ_CHECK(c != 0x7F);
    if (o.whitespace) {
      FUZZ_CHECK(c != '\t' && c != '\r');
      if (i > 0) FUZZ_CHECK(!(c == ' ' && out[i - 1] == ' '));
      if (i > 1) FUZZ_CHECK(!(c == '\n' && out[i - 1] == '\n' && out[i - 2] == '\n'));
      if (i > 0) FUZZ_CHECK(!(c == '\n' && out[i - 1] == ' '));
      if (i > 0) FUZZ_CHECK(!(c == ' ' && out[i - 1] == '\n'));
    }
  }
  if (o.whitespace && len > 0) {
    FUZZ_CHECK(out[0] != ' ' && out[0] != '\n');
    FUZZ_CHECK(out[len - 1] != ' ' && out[len - 1] != '\n');
  }
  free(out);
  return 0;
}
