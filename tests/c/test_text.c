/* test_text.c - text kernels: LangChain split parity against the committed
 * JS fixtures, UTF-8 validity on random bytes, markdown header paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(split_parity),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
