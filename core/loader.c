#include "loader.h"
#include "graph.h"
#include "options.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <ltdl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ABI 1's descriptor ends with codecs; a smaller one predates ABI 1. */
#define PLUGIN_MIN_SIZE (offsetof(struct pp_plugin, codecs) + sizeof(void *))

static struct pp_loaded *loaded;
static char **dirs;
static size_t ndirs;
static char *dirs_text;

int pp_loader_init(void)
{
	return lt_dlinit() == 0 ? 0 : -ENOMEM;
}

void pp_loader_exit(void)
{
	while (loaded) {
		struct pp_loaded *l = loaded;

		loaded = l->next;
		free(l->path);
		free(l);
	}
	for (size_t i = 0; i < ndirs; i++)
		free(dirs[i]);
	free(dirs);
	free(dirs_text);
	dirs = NULL;
	dirs_text = NULL;
	ndirs = 0;
	lt_dlexit();
}

int pp_loader_add_dir(const char *dir)
{
	char **grown = realloc(dirs, (ndirs + 1) * sizeof(*dirs));

	if (!grown)
		return -ENOMEM;
	dirs = grown;
	dirs[ndirs] = strdup(dir);
	if (!dirs[ndirs])
		return -ENOMEM;
	ndirs++;
	free(dirs_text);
	dirs_text = NULL;
	return 0;
}

int pp_loader_add_path(const char *colon_list)
{
	char *copy = strdup(colon_list), *save = NULL;
	int rc = 0;

	if (!copy)
		return -ENOMEM;
	for (char *d = strtok_r(copy, ":", &save); d && rc == 0; d = strtok_r(NULL, ":", &save))
		rc = pp_loader_add_dir(d);
	free(copy);
	return rc;
}

const char *pp_loader_dirs(void)
{
	size_t len = 1;

	if (dirs_text)
		return dirs_text;
	for (size_t i = 0; i < ndirs; i++)
		len += strlen(dirs[i]) + 2;
	dirs_text = calloc(1, len);
	if (!dirs_text)
		return "(out of memory)";
	for (size_t i = 0; i < ndirs; i++) {
		if (i)
			strcat(dirs_text, ", ");
		strcat(dirs_text, dirs[i]);
	}
	if (!ndirs)
		return "(no plugin directory)";
	return dirs_text;
}

const struct pp_loaded *pp_loader_first(void)
{
	return loaded;
}

static bool valid_name(const char *name)
{
	if (!name || !*name)
		return false;
	for (const char *c = name; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-'))
			return false;
	return true;
}

static int check_callbacks(const struct pp_plugin *p, const char *path, char *err,
			   size_t errlen)
{
	bool node = p->roles & (PP_ROLE_SOURCE | PP_ROLE_FILTER | PP_ROLE_SINK | PP_ROLE_SERVICE);
	const char *missing = NULL;

	if (node && !p->open)
		missing = "open";
	else if (node && !p->close)
		missing = "close";
	else if ((p->roles & (PP_ROLE_FILTER | PP_ROLE_SINK)) && !p->process)
		missing = "process";
	else if ((p->roles & PP_ROLE_CODEC) && !p->codecs)
		missing = "codecs";
	if (missing) {
		snprintf(err, errlen, "%s: plugin '%s' lacks the required callback %s", path,
			 p->name, missing);
		return -EINVAL;
	}
	return 0;
}

static int check_options(const struct pp_plugin *p, const char *path, char *err, size_t errlen)
{
	char why[256];

	if (!p->options)
		return 0;
	for (const struct pp_option *o = p->options; o->name; o++) {
		if (pp_option_find(pp_core_options, o->name)) {
			snprintf(err, errlen, "%s: plugin '%s': option '%s' is a key every node has",
				 path, p->name, o->name);
			return -EINVAL;
		}
		/* Every value must land inside the config the host allocates. */
		if (o->offset + (pp_option_storage(o) ? pp_option_storage(o) : 1) > p->config_size) {
			snprintf(err, errlen,
				 "%s: plugin '%s': option '%s' lies outside its config_size %zu",
				 path, p->name, o->name, p->config_size);
			return -EINVAL;
		}
	}
	if (pp_options_check_table(p->options, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "%s: plugin '%s': %s", path, p->name, why);
		return -EINVAL;
	}
	return 0;
}

int pp_loader_check(const struct pp_plugin *p, const char *path, char *err, size_t errlen)
{
	if (p->abi_version != PP_ABI_VERSION) {
		snprintf(err, errlen, "%s: plugin ABI version %u, this host speaks version %d", path,
			 p->abi_version, PP_ABI_VERSION);
		return -EPROTO;
	}
	if (p->struct_size < PLUGIN_MIN_SIZE) {
		snprintf(err, errlen,
			 "%s: plugin descriptor is %u bytes, ABI version %d needs at least %zu",
			 path, p->struct_size, PP_ABI_VERSION, (size_t)PLUGIN_MIN_SIZE);
		return -EPROTO;
	}
	if (!valid_name(p->name) || !p->summary || !p->roles) {
		snprintf(err, errlen, "%s: plugin descriptor lacks a valid name ([a-z0-9-]+), "
			 "summary or roles", path);
		return -EINVAL;
	}
	if (check_callbacks(p, path, err, errlen) < 0)
		return -EINVAL;
	return check_options(p, path, err, errlen);
}

/* libltdl reports a library the plugin needs as "file not found", as if
 * the plugin itself were missing; dlopen names the real culprit. */
static void explain_open_failure(const char *path, char *err, size_t errlen)
{
	const char *lt_reason = lt_dlerror();
	void *h;

	dlerror();
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h) {
		dlclose(h);
		snprintf(err, errlen, "%s: cannot load: %s", path, lt_reason ? lt_reason : "?");
		return;
	}
	snprintf(err, errlen, "%s: cannot load: %s", path, dlerror());
}

static const struct pp_loaded *find_loaded(const char *name)
{
	for (const struct pp_loaded *l = loaded; l; l = l->next)
		if (strcmp(l->plugin->name, name) == 0)
			return l;
	return NULL;
}

static int expect_name(const struct pp_plugin *p, const char *path, char *err, size_t errlen)
{
	const char *base = strrchr(path, '/');
	size_t len;

	base = base ? base + 1 : path;
	len = strlen(base);
	if (len > 3 && strcmp(base + len - 3, ".so") == 0)
		len -= 3;
	if (strlen(p->name) != len || strncmp(p->name, base, len) != 0) {
		snprintf(err, errlen, "%s: declares plugin '%s', expected '%.*s'", path, p->name,
			 (int)len, base);
		return -EINVAL;
	}
	return 0;
}

static int register_plugin(const struct pp_plugin *p, const char *path,
			   const struct pp_loaded **out, char *err, size_t errlen)
{
	const struct pp_loaded *twin = find_loaded(p->name);
	struct pp_loaded *l, **tail;

	if (twin) {
		snprintf(err, errlen, "%s: duplicate plugin name '%s', already loaded from %s", path,
			 p->name, twin->path);
		return -EEXIST;
	}
	l = calloc(1, sizeof(*l));
	if (!l || !(l->path = strdup(path))) {
		free(l);
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	l->plugin = p;
	for (tail = &loaded; *tail; tail = &(*tail)->next)
		;
	*tail = l;
	*out = l;
	return 0;
}

static int open_module(const char *path, lt_dlhandle *h, char *err, size_t errlen)
{
	lt_dladvise advise;

	/* Local: one plugin's symbols never satisfy another's. Not resident:
	 * lt_dlexit() must be able to release every handle. */
	if (lt_dladvise_init(&advise) || lt_dladvise_local(&advise)) {
		snprintf(err, errlen, "%s: libltdl: %s", path, lt_dlerror());
		return -ENOMEM;
	}
	*h = lt_dlopenadvise(path, advise);
	lt_dladvise_destroy(&advise);
	if (!*h) {
		explain_open_failure(path, err, errlen);
		return -ENOEXEC;
	}
	return 0;
}

int pp_loader_load_file(const char *path, const struct pp_loaded **out, char *err,
			size_t errlen)
{
	const struct pp_plugin *p;
	lt_dlhandle h;
	int rc;

	rc = open_module(path, &h, err, errlen);
	if (rc < 0)
		return rc;
	p = lt_dlsym(h, PP_PLUGIN_SYMBOL);
	if (!p) {
		snprintf(err, errlen, "%s: not a pktpipe plugin (no symbol %s)", path,
			 PP_PLUGIN_SYMBOL);
		rc = -ENOEXEC;
	} else if ((rc = pp_loader_check(p, path, err, errlen)) == 0 &&
		   (rc = expect_name(p, path, err, errlen)) == 0) {
		rc = register_plugin(p, path, out, err, errlen);
	}
	if (rc < 0)
		lt_dlclose(h);
	return rc;
}

int pp_loader_load(const char *name, const struct pp_loaded **out, char *err, size_t errlen)
{
	const struct pp_loaded *l = find_loaded(name);
	char path[4096];
	struct stat st;

	if (l) {
		*out = l;
		return 0;
	}
	if (!valid_name(name)) {
		snprintf(err, errlen, "bad plugin name '%s' (use [a-z0-9-]+)", name);
		return -EINVAL;
	}
	for (size_t i = 0; i < ndirs; i++) {
		snprintf(path, sizeof(path), "%s/%s.so", dirs[i], name);
		if (stat(path, &st) == 0)
			return pp_loader_load_file(path, out, err, errlen);
	}
	snprintf(err, errlen, "plugin '%s' not found (looked for %s.so in %s)", name, name,
		 pp_loader_dirs());
	return -ENOENT;
}

static void load_dir(const char *dir, void (*warn)(void *, const char *), void *arg)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	char path[4096], err[1024];

	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		const struct pp_loaded *l;

		if (len < 4 || strcmp(de->d_name + len - 3, ".so") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		/* A name found again in a later directory is refused as a
		 * duplicate: pp_loader_load() would never pick it. */
		if (pp_loader_load_file(path, &l, err, sizeof(err)) < 0)
			warn(arg, err);
	}
	closedir(d);
}

void pp_loader_load_all(void (*warn)(void *arg, const char *msg), void *arg)
{
	for (size_t i = 0; i < ndirs; i++)
		load_dir(dirs[i], warn, arg);
}
