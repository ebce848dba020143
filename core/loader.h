/* Finding, loading and checking plugins. The only file that touches
 * libltdl. Loaded plugins stay loaded until pp_loader_exit(), which must
 * come after every node is closed and every config freed. */
#ifndef PKTPIPE_CORE_LOADER_H
#define PKTPIPE_CORE_LOADER_H

#include <pktpipe/plugin.h>

struct pp_loaded {
	const struct pp_plugin *plugin;
	char *path;
	struct pp_loaded *next;
};

int pp_loader_init(void);
void pp_loader_exit(void);

/* Directories searched in order, first match wins. */
int pp_loader_add_dir(const char *dir);
/* "a:b:c" as in PKTPIPE_PLUGIN_PATH. */
int pp_loader_add_path(const char *colon_list);
/* The searched directories, joined by ", " (for error messages). */
const char *pp_loader_dirs(void);

/* Load plugin NAME from NAME.so in the search path (once; later calls give
 * the same). On failure -errno and err holds one line: not found (naming
 * the directories), the real dlopen reason, or the ABI check that failed. */
int pp_loader_load(const char *name, const struct pp_loaded **out, char *err, size_t errlen);
/* Load one file; its descriptor name must match its file name. */
int pp_loader_load_file(const char *path, const struct pp_loaded **out, char *err,
			size_t errlen);
/* Load every *.so of every directory; calls warn for each one refused. */
void pp_loader_load_all(void (*warn)(void *arg, const char *msg), void *arg);

/* The loaded plugins, in load order. */
const struct pp_loaded *pp_loader_first(void);

/* Check a descriptor as the loader does (tests use this directly). */
int pp_loader_check(const struct pp_plugin *p, const char *path, char *err, size_t errlen);

#endif
