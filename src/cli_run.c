#include <stdio.h>
#include "cli.h"
int lode_cmd_run(lode_cli *c) { (void)c; fprintf(stderr, "not yet\n"); return 2; }
