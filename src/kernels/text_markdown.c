#include "kernels/text.h"
