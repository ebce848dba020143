#include "minimal.h"
#pragma GCC diagnostic ignored "-Woverride-init"
MINIMAL_PLUGIN(.name = "badsize", .struct_size = 16);
