/* fuzz_html.c - libFuzzer target for the HTML loader: any bytes must give a
 * document (valid UTF-8 text and title, no NUL inside) or an error with a
 * message, never a crash, a leak or a hang. */
#include <glib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/fs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lode_fs_doc d;
  char err[LODE_FS_ERRLEN];
  if (lode_fs_load_bytes("fuzz.html", data, size, LODE_FS_HTML, &d, err, sizeof err) == 0) {
    if (!d.text || strlen(d.text) != d.text_len) abort();
    if (!g_utf8_validate(d.text, (gssize)d.text_len, NULL)) abort();
    if (d.title && !g_utf8_validate(d.title, -1, NULL)) abort();
    lode_fs_doc_free(&d);
  } else if (!err[0]) {
    abort();
  }
  return 0;
}
