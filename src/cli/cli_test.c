/* cli_test.c - `lode test`: busted specs inside the host. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ftw.h>

#include "cli/cli.h"
#include "lua/lode_host.h"

/* busted is a Lua program: we run its runner in a lode Lua state, so specs
 * `require("lode")` exactly as pipelines do. The helper module
 * lode.test_helper gives every spec file a fresh temporary state database. */
/* The per-spec databases live in a temporary folder removed at exit (busted
 * ends the process with os.exit, so this runs from atexit). */
static char made_dir[64];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static void remove_made_dir(void) {
  if (made_dir[0]) nftw(made_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int lode_cmd_test(lode_cli *c, int argc, char **argv) {
  /* busted parses its own options: everything goes through, but for a
   * first --help, which is lode's */
  if (argc > 0 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"))) {
    lode_cmd_help("test");
    return LODE_EXIT_OK;
  }
  c->argc = argc;
  c->argv = argv;
  int have_path = 0;
  struct stat st;
  for (int i = 0; i < c->argc; i++)
    if (c->argv[i][0] != '-' && stat(c->argv[i], &st) == 0) have_path = 1;

  /* where the per-spec databases go: $LODE_TEST_TMPDIR if set (to inspect
   * them afterwards), else a new temporary folder */
  const char *given = getenv("LODE_TEST_TMPDIR");
  char tmpl[] = "/tmp/lode-test-XXXXXX";
  if (!given || !*given) {
    char *dir = mkdtemp(tmpl);
    if (!dir) {
      perror("lode test: mkdtemp");
      return LODE_EXIT_FAILED;
    }
    setenv("LODE_TEST_TMPDIR", dir, 1);
    snprintf(made_dir, sizeof made_dir, "%s", dir);
    atexit(remove_made_dir);
  }

  char cwd[4096];
  if (!getcwd(cwd, sizeof cwd)) snprintf(cwd, sizeof cwd, ".");
  lua_State *L = lode_lua_new(cwd);
  if (!L) {
    fprintf(stderr, "lode test: out of memory\n");
    return LODE_EXIT_FAILED;
  }
  /* arg = { [0] = "lode test", ...user args..., [default path] } */
  lua_createtable(L, c->argc + 3, 1);
  lua_pushliteral(L, "lode test");
  lua_rawseti(L, -2, 0);
  int n = 0;
  lua_pushliteral(L, "--helper=lode.test_helper");
  lua_rawseti(L, -2, ++n);
  for (int i = 0; i < c->argc; i++) {
    lua_pushstring(L, c->argv[i]);
    lua_rawseti(L, -2, ++n);
  }
  if (!have_path) {
    lua_pushliteral(L, "tests/lua");
    lua_rawseti(L, -2, ++n);
  }
  lua_setglobal(L, "arg");

  int rc = LODE_EXIT_OK;
  const char *boot =
      "local ok, runner = pcall(require, 'busted.runner')\n"
      "if not ok then error('lode test needs busted (Debian package lua-busted): ' .. "
      "tostring(runner), 0) end\n"
      "runner({ standalone = false })\n";
  char err[4096];
  if (lode_host_run_chunk(L, boot, "=lode test", err, sizeof err) != 0) {
    fprintf(stderr, "lode test: %s\n", err);
    rc = LODE_EXIT_FAILED;
  }
  lua_close(L);
  return rc;
}
