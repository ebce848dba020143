/* Shared body of the deliberately broken test plugins: each .c file sets
 * one field wrong in MINIMAL_PLUGIN(...) and the loader must refuse it. */
#ifndef PKTPIPE_TEST_MINIMAL_H
#define PKTPIPE_TEST_MINIMAL_H

#include <errno.h>
#include <pktpipe/plugin.h>

static int minimal_open(struct pp_node *n, const struct pp_host *h, const void *c, void **s)
{
	(void)n, (void)h, (void)c;
	*s = NULL;
	return 0;
}

static int minimal_process(void *s, struct pp_batch *b)
{
	(void)s, (void)b;
	return 0;
}

static void minimal_close(void *s)
{
	(void)s;
}

/* Designated initialisers given later override the defaults before them. */
#define MINIMAL_PLUGIN(...)                                                      \
	PP_EXPORT const struct pp_plugin pp_plugin = {                           \
		.abi_version = PP_ABI_VERSION,                                   \
		.struct_size = sizeof(struct pp_plugin),                         \
		.summary = "deliberately broken test plugin",                    \
		.roles = PP_ROLE_SINK,                                           \
		.open = minimal_open,                                            \
		.process = minimal_process,                                      \
		.close = minimal_close,                                          \
		__VA_ARGS__                                                      \
	}

#endif
