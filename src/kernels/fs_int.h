#ifndef LODE_FS_INT_H
#define LODE_FS_INT_H
/* fs_int.h - internals shared by the fs loaders (fs_load.c, fs_html.c,
 * fs_pdf.c). Not part of the C API. */
#include "base/buf.h"
#include "kernels/fs.h"

/* Per-format loaders (fs_load.c, fs_html.c, fs_pdf.c). */
int lode__fs_load_html(const char *name, const char *p, size_t n, lode_fs_doc *out, char *err,
                       size_t errlen);
int lode__fs_load_pdf(const char *name, const char *p, size_t n, lode_fs_doc *out, char *err,
                      size_t errlen);
int lode__fs_load_markdown(const char *name, const char *p, size_t n, lode_fs_doc *out,
                           char *err, size_t errlen);
/* The text of a UTF-8 HTML page appended to *text (the SAX reading of
 * fs_html.c) and its title (malloc'd, or NULL). 0; -1 when out of memory;
 * -2 when elements nest deeper than the loader allows (the parse stopped). */
int lode__fs_html_text(const char *src, size_t n, lode_buf *text, char **title);
/* Replaces invalid UTF-8 in *text with U+FFFD (reallocating it if needed). */
int lode__fs_make_utf8(char **text, size_t *len);
void lode__fs_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
