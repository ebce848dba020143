#include "minimal.h"
/* An option whose storage lies outside config_size. */
static const struct pp_option opts[] = {
	{ .name = "x", .type = PP_OPT_INT, .default_value = "1", .offset = 64, .help = "x" },
	PP_OPTION_END,
};
MINIMAL_PLUGIN(.name = "badopts", .options = opts, .config_size = 8);
