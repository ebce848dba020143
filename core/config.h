/* Reading an ini file into sections of key = value lines, each with its
 * line number, before anything is interpreted. Syntax errors (over-long
 * lines, a line that is neither a section nor a key, a '#' comment after a
 * value, duplicate sections or keys, NUL bytes) are reported as
 * FILE:LINE: message through pp_diag(). */
#ifndef PKTPIPE_CORE_CONFIG_H
#define PKTPIPE_CORE_CONFIG_H

#include <pktpipe/plugin.h>

struct pp_conf_kv {
	char *key, *value;
	int line;
	bool used; /* consumed by the graph builder */
	struct pp_conf_kv *next;
};

struct pp_conf_section {
	char *name;
	int line;
	struct pp_conf_kv *kvs;
	struct pp_conf_section *next;
};

struct pp_conf {
	char *path;
	struct pp_conf_section *sections;
};

/* 0 when the file was read without error; -EINVAL after diagnostics were
 * printed; -errno when the file cannot be read (also printed). */
int pp_conf_read(const char *path, struct pp_conf **out);
void pp_conf_free(struct pp_conf *conf);

const struct pp_conf_kv *pp_conf_get(const struct pp_conf_section *s, const char *key);

/* Print "FILE:LINE: message" (line 0: "FILE: message") and count it. */
void pp_diag(const char *file, int line, const char *fmt, ...) PP_PRINTF(3, 4);
int pp_diag_count(void);
/* Count but do not print (fuzzing). */
extern bool pp_diag_silent;
void pp_diag_reset(void);

#endif
