/* libFuzzer target: arbitrary bytes as an ini file, read and checked as a
 * graph exactly as `pktpipe --check` does. Nothing may crash, hang or leak;
 * every failure must be a counted diagnostic.
 * Plugins come from $FUZZ_PLUGIN_DIR (default build/tests/plugins), so
 * option parsing runs against real tables. Built by `make fuzz`. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "graph.h"
#include "loader.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fd = -1;
static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("FUZZ_PLUGIN_DIR");

	(void)argc;
	(void)argv;
	pp_diag_silent = true;
	pp_loader_init();
	pp_loader_add_dir(dir ? dir : "build/tests/plugins");
	fd = memfd_create("fuzz.ini", 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pp_conf *conf = NULL;
	struct pp_graph *g = NULL;
	int before = pp_diag_count();

	if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	if (pp_conf_read(path, &conf) == 0 && pp_graph_build(conf, &g) == 0)
		pp_graph_free(g);
	else if (pp_diag_count() == before)
		abort(); /* refused without saying why */
	pp_conf_free(conf);
	return 0;
}
