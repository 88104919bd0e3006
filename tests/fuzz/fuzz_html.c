/* fuzz_html.c - libFuzzer target for the HTML loader: any bytes must give a
 * document (valid UTF-8 text and title) or an error, never a crash. Valid
 * UTF-8 inputs are also parsed in small pieces (fs_html.c), which must give
 * exactly the text and title of one parse. */
#include <glib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/fs.h"
#include "kernels/fs_int.h"

static void same_in_pieces(const char *p, size_t n) {
  lode_buf whole, part;
  char *wt = NULL, *pt = NULL;
  lode_buf_init(&whole, 0);
  if (lode__fs_html_text(p, n, SIZE_MAX / 4, &whole, &wt, NULL) != 0) abort();
  static const size_t sizes[] = {40, 300};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    lode_buf_init(&part, 0);
    if (lode__fs_html_text(p, n, sizes[i], &part, &pt, NULL) != 0) abort();
    if (part.len != whole.len || (part.len && memcmp(part.p, whole.p, part.len))) abort();
    if (!pt != !wt || (pt && strcmp(pt, wt))) abort();
    lode_buf_free(&part);
    free(pt);
    pt = NULL;
  }
  lode_buf_free(&whole);
  free(wt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lode_fs_doc d;
  char err[LODE_FS_ERRLEN];
  if (lode_fs_load_bytes("fuzz.html", data, size, LODE_FS_HTML, &d, err, sizeof err) == 0) {
    if (!d.text || strlen(d.text) != d.text_len) abort();
    if (!g_utf8_validate(d.text, (gssize)d.text_len, NULL)) abort();
    if (d.title && !g_utf8_validate(d.title, -1, NULL)) abort();
    lode_fs_doc_free(&d);
    /* pages nested too deep were refused above */
    if (g_utf8_validate((const char *)data, (gssize)size, NULL))
      same_in_pieces((const char *)data, size);
  } else if (!err[0]) {
    abort();
  }
  return 0;
}
