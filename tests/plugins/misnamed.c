#include "minimal.h"
MINIMAL_PLUGIN(.name = "other");
