/* test_util.c - base/util: the one API-key scrubber (used by the trace
 * exporter and the OpenAI embedder alike). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "base/util.h"

static void test_scrub_long_key(void **state) {
  (void)state;
  char t[200] = "401: bad key sk-abcdef0123456789 (Authorization: Bearer sk-abcdef0123456789)";
  lode_scrub_secret(t, "sk-abcdef0123456789");
  assert_string_equal(t, "401: bad key [redacted] (Authorization: Bearer [redacted])");
}

static void test_scrub_short_key_keeps_length(void **state) {
  (void)state;
  char t[64] = "key=abc; again abcabc";
  lode_scrub_secret(t, "abc");
  assert_string_equal(t, "key=***; again ******");
}

static void test_scrub_nothing(void **state) {
  (void)state;
  char t[32] = "nothing secret here";
  lode_scrub_secret(t, NULL);
  lode_scrub_secret(t, "");
  lode_scrub_secret(t, "absent-key-123");
  assert_string_equal(t, "nothing secret here");
  lode_scrub_secret(NULL, "x");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_scrub_long_key),
      cmocka_unit_test(test_scrub_short_key_keeps_length),
      cmocka_unit_test(test_scrub_nothing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
