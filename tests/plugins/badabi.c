#include "minimal.h"
#pragma GCC diagnostic ignored "-Woverride-init"
MINIMAL_PLUGIN(.name = "badabi", .abi_version = 99);
