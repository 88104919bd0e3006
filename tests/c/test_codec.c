/* test_codec.c - the checkpoint encoding, without Lua. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/codec.h"

static uint64_t rng = 88172645463325252ull;
static uint64_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* Writes a random value and, in parallel, the expectation list. */
typedef struct exp_item {
  int tag;
  int64_t i;
  double f;
  size_t n;
  uint8_t bytes[16];
  uint64_t narr, nhash;
} exp_item;

static exp_item expect[200000];
static size_t nexp;

static void gen(lode_buf *b, int depth) {
  exp_item *e = &expect[nexp++];
  memset(e, 0, sizeof *e);
  int k = (int)(next() % (depth > 4 ? 6 : 7));
  switch (k) {
    case 0: e->tag = LODE_V_NIL; assert_int_equal(lode_codec_put_nil(b), 0); break;
    case 1: e->tag = (next() & 1) ? LODE_V_TRUE : LODE_V_FALSE;
      assert_int_equal(lode_codec_put_bool(b, e->tag == LODE_V_TRUE), 0); break;
    case 2: e->tag = LODE_V_INT; e->i = (int64_t)next();
      assert_int_equal(lode_codec_put_int(b, e->i), 0); break;
    case 3: e->tag = LODE_V_FLOAT; e->f = (double)(int64_t)next() / 1e6;
      assert_int_equal(lode_codec_put_float(b, e->f), 0); break;
    case 4: e->tag = LODE_V_STR; e->n = next() % 16;
      for (size_t j = 0; j < e->n; j++) e->bytes[j] = (uint8_t)next();
      assert_int_equal(lode_codec_put_str(b, e->bytes, e->n), 0); break;
    case 5: e->tag = LODE_V_EXT; e->n = next() % 16;
      for (size_t j = 0; j < e->n; j++) e->bytes[j] = (uint8_t)next();
      assert_int_equal(lode_codec_put_ext(b, 1, e->bytes, e->n), 0); break;
    default:
      e->tag = LODE_V_TABLE; e->narr = next() % 4; e->nhash = next() % 3;
      assert_int_equal(lode_codec_put_table(b, e->narr, e->nhash), 0);
      for (uint64_t j = 0; j < e->narr + 2 * e->nhash; j++) gen(b, depth + 1);
  }
}

static void test_roundtrip_random(void **state) {
  (void)state;
  for (int round = 0; round < 2000; round++) {
    lode_buf b;
    lode_buf_init(&b, 0);
    nexp = 0;
    assert_int_equal(lode_codec_put_version(&b), 0);
    gen(&b, 0);
    lode_codec_reader r;
    assert_int_equal(lode_codec_reader_init(&r, b.p, b.len), 0);
    for (size_t k = 0; k < nexp; k++) {
      lode_codec_item it;
      assert_int_equal(lode_codec_next(&r, &it), 0);
      exp_item *e = &expect[k];
      assert_int_equal(it.tag, e->tag);
      if (e->tag == LODE_V_INT) assert_true(it.i == e->i);
      if (e->tag == LODE_V_FLOAT) assert_memory_equal(&it.f, &e->f, sizeof(double));
      if (e->tag == LODE_V_STR || e->tag == LODE_V_EXT) {
        assert_int_equal(it.n, e->n);
        if (e->n) assert_memory_equal(it.s, e->bytes, e->n);
      }
      if (e->tag == LODE_V_TABLE) {
        assert_true(it.narr == e->narr);
        assert_true(it.nhash == e->nhash);
      }
    }
    assert_ptr_equal(r.p, r.end);
    /* every truncation is an error, never a crash; so is garbage */
    for (size_t cut = 1; cut < b.len; cut += 1 + b.len / 16) {
      lode_codec_reader t;
      lode_codec_reader_init(&t, b.p, cut);
      int bad = lode_codec_skip(&t);
      assert_true(bad != 0 || t.p <= t.end);
    }
    lode_buf_free(&b);
  }
}

static void test_json_view(void **state) {
  (void)state;
  lode_buf b, out;
  lode_buf_init(&b, 0);
  lode_buf_init(&out, 0);
  lode_codec_put_version(&b);
  lode_codec_put_table(&b, 2, 1);
  lode_codec_put_int(&b, -3);
  lode_codec_put_float(&b, 0.1);
  lode_codec_put_str(&b, "k", 1);
  lode_codec_put_str(&b, "a\"\n\xff", 4);
  char err[128];
  assert_int_equal(lode_codec_to_json(b.p, b.len, 0, &out, err, sizeof err), 0);
  assert_string_equal(lode_buf_cstr(&out), "{\"1\":-3,\"2\":0.1,\"k\":\"a\\\"\\n\xef\xbf\xbd\"}");
  /* truncation marker, not a cut UTF-8 sequence */
  lode_buf_reset(&b);
  lode_buf_reset(&out);
  lode_codec_put_version(&b);
  lode_codec_put_str(&b, "h\xc3\xa9llo", 6);
  assert_int_equal(lode_codec_to_json(b.p, b.len, 2, &out, err, sizeof err), 0);
  assert_string_equal(lode_buf_cstr(&out), "\"h...[truncated 5 bytes]\"");
  lode_buf_free(&b);
  lode_buf_free(&out);
}

static void test_unknown_version(void **state) {
  (void)state;
  uint8_t bad[] = {9, 0};
  lode_codec_reader r;
  assert_int_equal(lode_codec_reader_init(&r, bad, 2), -1);
  assert_non_null(strstr(r.err, "version 9"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip_random),
      cmocka_unit_test(test_json_view),
      cmocka_unit_test(test_unknown_version),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
