/* fs_pdf.c - PDF to text with poppler-glib: the text of every page in
 * reading order, pages separated by a paragraph break; the title from the
 * document's metadata.
 *
 * poppler-glib is opened with dlopen at the first PDF, not linked: it pulls
 * in some forty libraries (poppler, cairo, NSS, X11, fontconfig, image
 * codecs) whose loading and relocation cost every `lode` process about as
 * much as the rest of its start-up, though most runs never read a PDF
 * (docs/architecture.md#start-up). The soname is the one the build found
 * (LODE_POPPLER_GLIB_SONAME); a missing library is a load error naming it.
 *
 * poppler reports damaged files on stderr through its own error callback,
 * which poppler-glib does not expose; the loader's error (or a successful
 * partial recovery) is what callers act on, so that noise is harmless. glib
 * warnings from the binding are routed to lode's log at debug level. */
#include <dlfcn.h>
#include <glib.h>
#include <poppler.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "kernels/fs_int.h"

static void route_glib_log(const gchar *domain, GLogLevelFlags level, const gchar *msg,
                           gpointer ud) {
  (void)level;
  (void)ud;
  lode_debug("%s: %s", domain ? domain : "glib", msg);
}

static void quiet_poppler_once(void) {
  static gsize done = 0;
  if (g_once_init_enter(&done)) {
    g_log_set_handler("Poppler", G_LOG_LEVEL_MASK | G_LOG_FLAG_FATAL | G_LOG_FLAG_RECURSION,
                      route_glib_log, NULL);
    g_once_init_leave(&done, 1);
  }
}

/* The poppler-glib functions this file calls, resolved once. */
static struct {
  PopplerDocument *(*new_from_bytes)(GBytes *, const char *, GError **);
  int (*get_n_pages)(PopplerDocument *);
  PopplerPage *(*get_page)(PopplerDocument *, int);
  char *(*page_get_text)(PopplerPage *);
  gchar *(*get_title)(PopplerDocument *);
  GQuark (*error_quark)(void);
  char why[256]; /* set when the library could not be opened */
} pp;
static pthread_once_t pp_once = PTHREAD_ONCE_INIT;

static void pp_open(void) {
  /* never closed: poppler keeps process-wide state */
  void *h = dlopen(LODE_POPPLER_GLIB_SONAME, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char *e = dlerror();
    snprintf(pp.why, sizeof pp.why, "%s", e ? e : LODE_POPPLER_GLIB_SONAME " not found");
    return;
  }
  /* POSIX: a void * from dlsym converts to a function pointer */
#define PP_SYM(field, name) *(void **)&pp.field = dlsym(h, name)
  PP_SYM(new_from_bytes, "poppler_document_new_from_bytes");
  PP_SYM(get_n_pages, "poppler_document_get_n_pages");
  PP_SYM(get_page, "poppler_document_get_page");
  PP_SYM(page_get_text, "poppler_page_get_text");
  PP_SYM(get_title, "poppler_document_get_title");
  PP_SYM(error_quark, "poppler_error_quark");
#undef PP_SYM
  if (!pp.new_from_bytes || !pp.get_n_pages || !pp.get_page || !pp.page_get_text ||
      !pp.get_title || !pp.error_quark) {
    snprintf(pp.why, sizeof pp.why, "%s lacks a function lode needs", LODE_POPPLER_GLIB_SONAME);
    pp.new_from_bytes = NULL;
  }
}

/* A copy of a glib string as malloc'd memory (the doc's strings are
 * released with free()); NULL for NULL or empty. */
static char *from_gchar(gchar *s) {
  char *copy = NULL;
  if (s && *s) {
    size_t n = strlen(s);
    copy = malloc(n + 1);
    if (copy) memcpy(copy, s, n + 1);
  }
  g_free(s);
  return copy;
}

/* poppler keeps process-wide state (its global parameters, the colour
 * management caches of lcms2) that documents on different threads touch
 * without locking: PDFs are loaded one at a time. Worker threads otherwise
 * load in parallel; a PDF waits only for another PDF. */
static pthread_mutex_t pdf_lock = PTHREAD_MUTEX_INITIALIZER;

static int load_pdf_locked(const char *name, const char *p, size_t n, lode_fs_doc *out,
                           char *err, size_t errlen);

int lode__fs_load_pdf(const char *name, const char *p, size_t n, lode_fs_doc *out, char *err,
                      size_t errlen) {
  pthread_mutex_lock(&pdf_lock);
  int rc = load_pdf_locked(name, p, n, out, err, errlen);
  pthread_mutex_unlock(&pdf_lock);
  return rc;
}

static int load_pdf_locked(const char *name, const char *p, size_t n, lode_fs_doc *out, char *err,
                      size_t errlen) {
  GError *gerr = NULL;
  GBytes *bytes = NULL;
  PopplerDocument *doc = NULL;
  lode_buf b;
  int rc = -1;
  lode_buf_init(&b, 0);
  out->mime = "application/pdf";
  pthread_once(&pp_once, pp_open);
  if (!pp.new_from_bytes) {
    lode__fs_seterr(err, errlen, "%s: cannot load PDF: poppler-glib is not available (%s)", name,
                    pp.why);
    goto done;
  }
  quiet_poppler_once();
  if (n < 5 || memcmp(p, "%PDF-", 5) != 0) {
    /* some PDFs have junk before the header; poppler accepts the first 1 KiB */
    if (n < 5 || !g_strstr_len(p, (gssize)(n < 1024 ? n : 1024), "%PDF-")) {
      lode__fs_seterr(err, errlen, "%s: not a PDF (no %%PDF- header), not loaded", name);
      goto done;
    }
  }
  if (n > G_MAXINT) {
    lode__fs_seterr(err, errlen, "%s: PDF larger than 2 GiB, not loaded", name);
    goto done;
  }
  bytes = g_bytes_new_static(p, n); /* p outlives doc: both end in this call */
  doc = pp.new_from_bytes(bytes, NULL, &gerr);
  if (!doc) {
    const char *why = gerr ? gerr->message : "unknown error";
    if (gerr && gerr->domain == pp.error_quark() && gerr->code == POPPLER_ERROR_ENCRYPTED)
      why = "encrypted, needs a password";
    lode__fs_seterr(err, errlen, "%s: cannot load PDF: %s", name, why);
    goto done;
  }
  int pages = pp.get_n_pages(doc);
  for (int i = 0; i < pages; i++) {
    PopplerPage *page = pp.get_page(doc, i);
    if (!page) continue;
    gchar *t = pp.page_get_text(page);
    g_object_unref(page);
    if (!t) continue;
    size_t tl = strlen(t);
    while (tl && (t[tl - 1] == '\n' || t[tl - 1] == ' ')) tl--;
    int bad = (b.len && tl && lode_buf_puts(&b, "\n\n") != 0) || lode_buf_append(&b, t, tl) != 0;
    g_free(t);
    if (bad) {
      lode__fs_seterr(err, errlen, "%s: out of memory extracting PDF text", name);
      goto done;
    }
  }
  if (!lode_buf_cstr(&b)) {
    lode__fs_seterr(err, errlen, "%s: out of memory", name);
    goto done;
  }
  out->title = from_gchar(pp.get_title(doc));
  out->text = (char *)lode_buf_steal(&b, &out->text_len);
  size_t tl = out->title ? strlen(out->title) : 0;
  if (lode__fs_make_utf8(&out->text, &out->text_len) != 0 ||
      (out->title && lode__fs_make_utf8(&out->title, &tl) != 0)) {
    lode__fs_seterr(err, errlen, "%s: out of memory", name);
    goto done;
  }
  rc = 0;
done:
  if (doc) g_object_unref(doc);
  if (bytes) g_bytes_unref(bytes);
  if (gerr) g_error_free(gerr);
  lode_buf_free(&b);
  if (rc != 0) {
    lode_fs_doc_free(out);
    out->mime = "application/pdf";
  }
  return rc;
}
