/* cli_trace.c - placeholder until the tracing area lands. */
#include <stdio.h>

#include "cli.h"

int lode_cmd_trace(lode_cli *c) {
  (void)c;
  fprintf(stderr, "lode trace: not built yet\n");
  return LODE_EXIT_USAGE;
}

int lode_cmd_export(lode_cli *c) {
  (void)c;
  fprintf(stderr, "lode export: not built yet\n");
  return LODE_EXIT_USAGE;
}
