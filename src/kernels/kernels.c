/* kernels.c - the kernel library's identity. The kernels themselves live in
 * one file per area (text, embed, store, fs); see cmake/<area>.cmake. */
#include "kernels/kernels.h"

const char *lode_kernels_version(void) { return "1"; }
