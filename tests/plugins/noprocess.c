#include "minimal.h"
#pragma GCC diagnostic ignored "-Woverride-init"
MINIMAL_PLUGIN(.name = "noprocess", .process = 0);
