/* test_sysdb.c - the system database and the executor's core rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/error.h"
#include "core/executor.h"
#include "core/sysdb.h"

static char path[256];

static int setup(void **state) {
  (void)state;
  snprintf(path, sizeof path, "/tmp/lode-test-sysdb-%d/sub/state.db", (int)getpid());
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf /tmp/lode-test-sysdb-%d", (int)getpid());
  return system(cmd) == 0 ? 0 : -1;
}

static void test_open_migrates_once(void **state) {
  (void)state;
  char err[256];
  lode_sysdb *a, *b;
  assert_int_equal(lode_sysdb_open(path, 0, &a, err, sizeof err), LODE_OK);
  assert_int_equal(lode_sysdb_open(path, 1, &b, err, sizeof err), LODE_OK);
  lode_sysdb_close(a);
  lode_sysdb_close(b);
}

static void test_steps_and_replay(void **state) {
  (void)state;
  char err[512];
  lode_exec *ex;
  lode_exec_opts o = {path, 0, "/p.lua", "v1"};
  assert_int_equal(lode_exec_open(&o, &ex, err, sizeof err), LODE_OK);
  lode_wf_start s = {"wf-1", "main", (const uint8_t *)"\1\0", 2, NULL, 0, 0, NULL, 0};
  lode_wf *wf;
  lode_wf_outcome done;
  assert_int_equal(lode_wf_begin(ex, &s, &wf, &done, err, sizeof err), LODE_OK);
  assert_non_null(wf);
  int64_t pos;
  const lode_step_row *rec;
  assert_int_equal(lode_wf_step_next(wf, "a", &pos, &rec, err, sizeof err), LODE_OK);
  assert_null(rec);
  assert_int_equal(pos, 1);
  lode_step_row row = {.step_no = 1, .name = "a", .status = LODE_WF_SUCCESS,
                       .output = (uint8_t *)"\1\3\4", .output_len = 3, .attempts = 1};
  assert_int_equal(lode_wf_step_record(wf, &row, NULL, 0, err, sizeof err), LODE_OK);
  lode_wf_free(wf); /* as if the process died here */

  /* same executor again: resumes (not a recovery), replays step 1 */
  assert_int_equal(lode_wf_begin(ex, &s, &wf, &done, err, sizeof err), LODE_OK);
  assert_non_null(wf);
  assert_int_equal(lode_wf_step_next(wf, "a", &pos, &rec, err, sizeof err), LODE_OK);
  assert_non_null(rec);
  assert_int_equal(rec->output_len, 3);
  /* determinism: position 2 is new, so any name runs */
  assert_int_equal(lode_wf_step_next(wf, "b", &pos, &rec, err, sizeof err), LODE_OK);
  assert_null(rec);
  assert_int_equal(lode_wf_finish(wf, LODE_WF_SUCCESS, (const uint8_t *)"\1\0", 2, NULL, NULL, NULL, NULL, err,
                                  sizeof err), LODE_OK);
  lode_wf_free(wf);

  /* finished: the recorded outcome comes back, the body does not run */
  assert_int_equal(lode_wf_begin(ex, &s, &wf, &done, err, sizeof err), LODE_OK);
  assert_null(wf);
  assert_int_equal(done.status, LODE_WF_SUCCESS);
  lode_wf_outcome_clear(&done);

  /* another name under the same id is a conflict */
  lode_wf_start s2 = {"wf-1", "other", NULL, 0, NULL, 0, 0, NULL, 0};
  assert_int_equal(lode_wf_begin(ex, &s2, &wf, &done, err, sizeof err), LODE_ECONFLICT);
  assert_non_null(strstr(err, "already used by workflow 'main'"));
  lode_exec_close(ex);
}

static void test_nondeterminism_message(void **state) {
  (void)state;
  char err[512];
  lode_exec *ex;
  lode_exec_opts o = {path, 0, NULL, NULL};
  assert_int_equal(lode_exec_open(&o, &ex, err, sizeof err), LODE_OK);
  lode_wf_start s = {"wf-2", "w", NULL, 0, NULL, 0, 0, NULL, 0};
  lode_wf *wf;
  lode_wf_outcome done;
  assert_int_equal(lode_wf_begin(ex, &s, &wf, &done, err, sizeof err), LODE_OK);
  int64_t pos;
  const lode_step_row *rec;
  lode_wf_step_next(wf, "x", &pos, &rec, err, sizeof err);
  lode_step_row row = {.step_no = 1, .name = "x", .status = LODE_WF_SUCCESS, .attempts = 1};
  lode_wf_step_record(wf, &row, NULL, 0, err, sizeof err);
  lode_wf_free(wf);
  assert_int_equal(lode_wf_begin(ex, &s, &wf, &done, err, sizeof err), LODE_OK);
  assert_int_equal(lode_wf_step_next(wf, "y", &pos, &rec, err, sizeof err), LODE_ENONDET);
  assert_string_equal(err, "workflow wf-2 step 1: recorded 'x' but the pipeline now calls 'y'; "
                           "the workflow is not deterministic");
  lode_wf_free(wf);

  /* cancel: the next new step is refused */
  int changed;
  lode_sysdb_wf_set_status(lode_exec_db(ex), "wf-2", LODE_WF_CANCELLED,
                           1u << LODE_WF_PENDING, &changed, err, sizeof err);
  assert_true(changed);
  lode_exec_close(ex);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_open_migrates_once),
      cmocka_unit_test(test_steps_and_replay),
      cmocka_unit_test(test_nondeterminism_message),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
