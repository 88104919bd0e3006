#ifndef LODE_KERNELS_H
#define LODE_KERNELS_H
/* Version of the kernel ABI, bumped when a kernel's output for the same input
 * changes (e.g. the hash embedder), so stores can tell stale vectors. */
const char *lode_kernels_version(void);
#endif
