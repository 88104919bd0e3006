/* test_text.c - text kernels: LangChain split parity against the committed
 * JS fixtures, UTF-8 validity on random bytes, markdown header paths. */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "kernels/text.h"

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *p = malloc((size_t)n + 1);
  if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
    free(p);
    p = NULL;
  }
  fclose(f);
  if (p) p[n] = 0;
  *len = (size_t)n;
  return p;
}

/* Every chunk of every fixture case, in order, byte for byte. */
static void split_parity(void **state) {
  (void)state;
  const char *root = getenv("LODE_SOURCE_DIR");
  char path[1024];
  snprintf(path, sizeof path, "%s/tests/fixtures/text/split_fixtures.json", root ? root : ".");
  size_t flen = 0;
  char *json = slurp(path, &flen);
  assert_non_null(json);
  cJSON *doc = cJSON_ParseWithLength(json, flen);
  assert_non_null(doc);
  cJSON *texts = cJSON_GetObjectItem(doc, "texts");
  cJSON *cases = cJSON_GetObjectItem(doc, "cases");
  assert_true(cJSON_GetArraySize(cases) > 500);
  size_t ncases = 0, nchunks = 0, failed = 0;
  cJSON *cs;
  cJSON_ArrayForEach(cs, cases) {
    const char *tname = cJSON_GetObjectItem(cs, "text")->valuestring;
    const char *text = cJSON_GetObjectItem(texts, tname)->valuestring;
    size_t tlen = strlen(text);
    struct lode_text_split_opts o;
    lode_text_split_opts_default(&o);
    o.size = (long)cJSON_GetObjectItem(cs, "size")->valuedouble;
    o.overlap = (long)cJSON_GetObjectItem(cs, "overlap")->valuedouble;
    o.keep_separator = cJSON_IsTrue(cJSON_GetObjectItem(cs, "keep_separator"));
    cJSON *seps = cJSON_GetObjectItem(cs, "separators"), *sp;
    if (cJSON_IsArray(seps)) {
      cJSON_ArrayForEach(sp, seps) {
        o.separators[o.nseparators] = sp->valuestring;
        o.separator_lens[o.nseparators++] = strlen(sp->valuestring);
      }
    }
    struct lode_text_chunks *res = NULL;
    char err[LODE_TEXT_ERRLEN];
    assert_int_equal(lode_text_split(text, tlen, &o, &res, err), 0);
    cJSON *want = cJSON_GetObjectItem(cs, "chunks"), *w;
    size_t i = 0;
    int bad = (size_t)cJSON_GetArraySize(want) != res->n;
    cJSON_ArrayForEach(w, want) {
      if (bad || i >= res->n) break;
      const char *wt;
      size_t wl;
      if (cJSON_IsString(w)) {
        wt = w->valuestring;
        wl = strlen(wt);
      } else {
        size_t a = (size_t)cJSON_GetArrayItem(w, 0)->valuedouble;
        size_t b = (size_t)cJSON_GetArrayItem(w, 1)->valuedouble;
        wt = text + a;
        wl = b - a;
      }
      const struct lode_text_chunk *c = &res->v[i];
      if (c->len != wl || memcmp(c->text, wt, wl) != 0) bad = 1;
      /* our own spans: exact chunks are the source bytes they claim */
      if (c->exact && (c->end - c->start != c->len || memcmp(text + c->start, c->text, c->len)))
        bad = 1;
      if (c->start > c->end || c->end > tlen) bad = 1;
      i++;
      nchunks++;
    }
    if (bad) {
      failed++;
      if (failed <= 5) {
        fprintf(stderr, "MISMATCH text=%s size=%ld overlap=%ld keep=%d seps=%zu: want %d chunks, got %zu\n",
                tname, o.size, o.overlap, o.keep_separator, o.nseparators,
                cJSON_GetArraySize(want), res->n);
        for (size_t k = 0; k < res->n && k < 6; k++)
          fprintf(stderr, "  got[%zu] = [%.*s]\n", k, (int)res->v[k].len, res->v[k].text);
        for (int k = 0; k < cJSON_GetArraySize(want) && k < 6; k++) {
          char *s = cJSON_PrintUnformatted(cJSON_GetArrayItem(want, k));
          fprintf(stderr, "  want[%d] = %s\n", k, s);
          free(s);
        }
      }
    }
    ncases++;
    lode_text_chunks_free(res);
  }
  fprintf(stderr, "split parity: %zu cases, %zu chunks, %zu failed\n", ncases, nchunks, failed);
  assert_int_equal(failed, 0);
  cJSON_Delete(doc);
  free(json);
}


/* An independent strict UTF-8 check (not the kernel's own validator). */
static int valid_utf8(const unsigned char *p, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned c = p[i];
    size_t k;
    unsigned cp;
    if (c < 0x80) { i++; continue; }
    if ((c & 0xE0) == 0xC0) k = 2, cp = c & 0x1F;
    else if ((c & 0xF0) == 0xE0) k = 3, cp = c & 0x0F;
    else if ((c & 0xF8) == 0xF0) k = 4, cp = c & 0x07;
    else return 0;
    if (i + k > n) return 0;
    for (size_t j = 1; j < k; j++) {
      if ((p[i + j] & 0xC0) != 0x80) return 0;
      cp = (cp << 6) | (p[i + j] & 0x3F);
    }
    if ((k == 2 && cp < 0x80) || (k == 3 && cp < 0x800) || (k == 4 && cp < 0x10000)) return 0;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    i += k;
  }
  return 1;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng >> 11);
}

/* Random bytes biased towards UTF-8 lead/continuation bytes, newlines and
 * spaces, so both valid and broken sequences are common. */
static size_t random_text(unsigned char *buf, size_t max) {
  static const unsigned char pool[] = {' ', '\n', '\n', '\r', '\t', 'a', 'b', '.', '#',
                                       0xC3, 0xA9, 0xE2, 0x80, 0x8B, 0xF0, 0x9F, 0x98,
                                       0x80, 0xED, 0xA0, 0xC0, 0xFF, 0x00, 0xCC, 0x81,
                                       0xE3, 0x80, 0x80, 0xC2, 0xA0, '`', '='};
  size_t n = next_rand() % max;
  for (size_t i = 0; i < n; i++)
    buf[i] = (next_rand() % 4) ? pool[next_rand() % sizeof pool] : (unsigned char)next_rand();
  return n;
}

static void check_chunks(const struct lode_text_chunks *c, const unsigned char *src,
                         size_t n, long size) {
  (void)size;
  for (size_t i = 0; i < c->n; i++) {
    const struct lode_text_chunk *k = &c->v[i];
    assert_true(valid_utf8((const unsigned char *)k->text, k->len));
    assert_true(k->start <= k->end && k->end <= n);
    if (k->exact) {
      assert_int_equal(k->end - k->start, k->len);
      assert_memory_equal(src + k->start, k->text, k->len);
    }
    for (size_t h = 0; h < k->nheaders; h++) {
      const struct lode_text_header *hd = &c->headers[k->header_first + h];
      assert_true(valid_utf8((const unsigned char *)hd->text, hd->len));
    }
  }
}

/* normalize, split and split_markdown never emit invalid UTF-8, whatever the
 * bytes and options; spans stay inside the source. */
static void utf8_property(void **state) {
  (void)state;
  unsigned char buf[2048];
  char err[LODE_TEXT_ERRLEN];
  for (int iter = 0; iter < 3000; iter++) {
    size_t n = random_text(buf, sizeof buf);
    struct lode_text_normalize_opts no;
    lode_text_normalize_opts_default(&no);
    no.nfc = iter & 1;
    no.controls = (iter >> 1) & 1;
    no.whitespace = (iter >> 2) & 1;
    no.nfkc = (iter % 7) == 0;
    char *out = NULL;
    size_t olen = 0;
    assert_int_equal(lode_text_normalize((const char *)buf, n, &no, &out, &olen, err), 0);
    assert_true(valid_utf8((const unsigned char *)out, olen));
    assert_int_equal(out[olen], 0);
    free(out);

    struct lode_text_split_opts so;
    lode_text_split_opts_default(&so);
    so.size = 1 + (long)(next_rand() % 60);
    so.overlap = (long)(next_rand() % (unsigned long)so.size);
    so.keep_separator = iter & 1;
    if (iter % 3 == 0) {
      so.separators[0] = "\n";
      so.separator_lens[0] = 1;
      so.separators[1] = ". ";
      so.separator_lens[1] = 2;
      so.nseparators = 2;
    }
    struct lode_text_chunks *c = NULL;
    assert_int_equal(lode_text_split((const char *)buf, n, &so, &c, err), 0);
    check_chunks(c, buf, n, so.size);
    lode_text_chunks_free(c);

    struct lode_text_markdown_opts mo;
    lode_text_markdown_opts_default(&mo);
    mo.split = so;
    mo.strip_headers = iter & 2;
    assert_int_equal(lode_text_split_markdown((const char *)buf, n, &mo, &c, err), 0);
    check_chunks(c, buf, n, so.size);
    lode_text_chunks_free(c);
  }
}

/* normalize's NFC/NFKC (which skips lines that cannot change) equals
 * utf8proc's over the whole text, on random text full of combining marks,
 * Hangul jamo, singletons and newlines. */
static void nfc_matches_utf8proc(void **state) {
  (void)state;
  static const char *const pool[] = {"a", "e", "A", "\n", " ", "\xCC\x81", "\xCC\xA3",
                                     "\xCD\x84", "\xE1\x84\x80", "\xE1\x85\xA1",
                                     "\xE1\x86\xA8", "\xE2\x84\xAB", "\xC3\xA9",
                                     "\xEF\xAC\x81", "\xC2\xA0", "\xE2\x82\x82",
                                     "\xF0\x9F\x98\x80", "\xE4\xB8\xAD", "\xC7\x84"};
  char buf[4096];
  for (int iter = 0; iter < 2000; iter++) {
    size_t n = 0, k = next_rand() % 200;
    for (size_t i = 0; i < k; i++) {
      const char *p = pool[next_rand() % (sizeof pool / sizeof pool[0])];
      memcpy(buf + n, p, strlen(p));
      n += strlen(p);
    }
    struct lode_text_normalize_opts o = {.nfc = 1, .nfkc = iter & 1};
    char *out = NULL;
    size_t olen = 0;
    assert_int_equal(lode_text_normalize(buf, n, &o, &out, &olen, NULL), 0);
    utf8proc_uint8_t *ref = NULL;
    utf8proc_option_t flags = UTF8PROC_STABLE | UTF8PROC_COMPOSE | ((iter & 1) ? UTF8PROC_COMPAT : 0);
    utf8proc_ssize_t rl = utf8proc_map((const utf8proc_uint8_t *)buf, (utf8proc_ssize_t)n, &ref, flags);
    assert_true(rl >= 0);
    assert_int_equal(olen, (size_t)rl);
    assert_memory_equal(out, ref, olen);
    free(ref);
    free(out);
  }
}

static void normalize_examples(void **state) {
  (void)state;
  struct lode_text_normalize_opts o;
  lode_text_normalize_opts_default(&o);
  char *out;
  size_t n;
  /* decomposed e + acute -> NFC; CRLF, NUL, NBSP, blank-run collapse; a bad
   * byte becomes U+FFFD; three newlines keep one paragraph break */
  const char in[] = "  Cafe\xCC\x81\r\n\r\n\r\nfoo \t bar\0\xC2\xA0" "baz\xFF  \n x  ";
  assert_int_equal(lode_text_normalize(in, sizeof in - 1, &o, &out, &n, NULL), 0);
  assert_string_equal(out, "Caf\xC3\xA9\n\nfoo bar baz\xEF\xBF\xBD\nx");
  free(out);
  o.whitespace = 0;
  o.nfc = 0;
  assert_int_equal(lode_text_normalize("a\r\nb\x01 \xCC\x81", 9, &o, &out, &n, NULL), 0);
  assert_string_equal(out, "a\nb \xCC\x81");
  free(out);
  o.controls = 0;
  assert_int_equal(lode_text_normalize("a\r\x01", 3, &o, &out, &n, NULL), 0);
  assert_int_equal(n, 3);
  free(out);
}

static void split_errors(void **state) {
  (void)state;
  struct lode_text_split_opts o;
  struct lode_text_chunks *c = NULL;
  char err[LODE_TEXT_ERRLEN];
  lode_text_split_opts_default(&o);
  o.size = 100;
  o.overlap = 100;
  assert_int_equal(lode_text_split("abc", 3, &o, &c, err), -1);
  assert_non_null(strstr(err, "overlap"));
  o.size = 0;
  o.overlap = 0;
  assert_int_equal(lode_text_split("abc", 3, &o, &c, err), -1);
  assert_non_null(strstr(err, "size must be > 0"));
  o.size = 10;
  o.separators[0] = "\xC3";
  o.separator_lens[0] = 1;
  o.nseparators = 1;
  assert_int_equal(lode_text_split("abc", 3, &o, &c, err), -1);
  assert_non_null(strstr(err, "UTF-8"));
  assert_null(c);
}

static void expect_path(const struct lode_text_chunks *c, const struct lode_text_chunk *k,
                        const char *const *want, size_t n) {
  assert_int_equal(k->nheaders, n);
  for (size_t i = 0; i < n; i++) {
    const struct lode_text_header *h = &c->headers[k->header_first + i];
    assert_int_equal(h->len, strlen(want[i]));
    assert_memory_equal(h->text, want[i], h->len);
  }
}

static const struct lode_text_chunk *find_chunk(const struct lode_text_chunks *c,
                                                const char *needle) {
  for (size_t i = 0; i < c->n; i++)
    if (memmem(c->v[i].text, c->v[i].len, needle, strlen(needle))) return &c->v[i];
  fail_msg("no chunk contains '%s'", needle);
  return NULL;
}

/* Nested ATX and setext headers; '#' lines inside fenced and indented code
 * are not headers; header paths pop at the same or a higher level. */
static void markdown_paths(void **state) {
  (void)state;
  const char *doc =
      "Preamble text.\n\n"
      "# Install\n\nInstall intro.\n\n"
      "## From source\n\nRun make.\n\n"
      "```sh\n# not a header, a shell comment\nmake install\n```\n\n"
      "    # indented code, not a header\n\n"
      "### Debian\n\nUse apt.\n\n"
      "## From npm\n\nnpm install.\n\n"
      "Usage\n=====\n\nCall it.\n\n"
      "Options\n-------\n\nSome options.\n";
  struct lode_text_markdown_opts o;
  lode_text_markdown_opts_default(&o);
  o.split.size = 200;
  o.split.overlap = 0;
  struct lode_text_chunks *c = NULL;
  char err[LODE_TEXT_ERRLEN];
  assert_int_equal(lode_text_split_markdown(doc, strlen(doc), &o, &c, err), 0);
  static const char *const p_install[] = {"Install"};
  static const char *const p_source[] = {"Install", "From source"};
  static const char *const p_debian[] = {"Install", "From source", "Debian"};
  static const char *const p_npm[] = {"Install", "From npm"};
  static const char *const p_usage[] = {"Usage"};
  static const char *const p_opts[] = {"Usage", "Options"};
  expect_path(c, find_chunk(c, "Preamble"), NULL, 0);
  expect_path(c, find_chunk(c, "Install intro."), p_install, 1);
  const struct lode_text_chunk *k = find_chunk(c, "# not a header");
  expect_path(c, k, p_source, 2);
  assert_non_null(memmem(k->text, k->len, "# indented code", 15));
  expect_path(c, find_chunk(c, "Use apt."), p_debian, 3);
  expect_path(c, find_chunk(c, "npm install."), p_npm, 2);
  expect_path(c, find_chunk(c, "Call it."), p_usage, 1);
  expect_path(c, find_chunk(c, "Some options."), p_opts, 2);
  /* headers stripped from text; spans index the source */
  for (size_t i = 0; i < c->n; i++) {
    assert_null(memmem(c->v[i].text, c->v[i].len, "=====", 5));
    assert_memory_equal(doc + c->v[i].start, c->v[i].text, c->v[i].len);
  }
  assert_int_equal(c->n, 7);
  lode_text_chunks_free(c);

  /* only level 1: '##' lines stay in the body */
  o.levels = 1u << 1;
  o.strip_headers = 0;
  assert_int_equal(lode_text_split_markdown(doc, strlen(doc), &o, &c, err), 0);
  k = find_chunk(c, "Use apt.");
  expect_path(c, k, p_install, 1);
  assert_non_null(find_chunk(c, "# Install"));
  lode_text_chunks_free(c);

  /* an empty ATX header (found by the fuzzer: its name has no bytes) */
  static const char *const p_empty[] = {""};
  lode_text_markdown_opts_default(&o);
  assert_int_equal(lode_text_split_markdown("#\nbody\n", 8, &o, &c, err), 0);
  assert_int_equal(c->n, 1);
  expect_path(c, &c->v[0], p_empty, 1);
  assert_non_null(c->headers[0].text);
  assert_int_equal(c->v[0].start, 2);
  lode_text_chunks_free(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(split_parity),
      cmocka_unit_test(utf8_property),
      cmocka_unit_test(nfc_matches_utf8proc),
      cmocka_unit_test(normalize_examples),
      cmocka_unit_test(split_errors),
      cmocka_unit_test(markdown_paths),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
