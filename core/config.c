#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* inih reads into a fixed buffer of INI_MAX_LINE bytes and would split a
 * longer line into two, silently truncating the value; our reader sees
 * whole lines first and refuses those. */
#define LINE_LIMIT (INI_MAX_LINE - 2)

struct reader {
	FILE *f;
	struct pp_conf *conf;
	char *buf;
	size_t cap;
	int line;
	int errors;
	struct pp_conf_section *current; /* where keys go; NULL after a bad header */
	bool seen_header;
};

static int diag_count;
bool pp_diag_silent;

void pp_diag(const char *file, int line, const char *fmt, ...)
{
	char msg[1024];
	int n;
	va_list ap;

	n = line > 0 ? snprintf(msg, sizeof(msg), "%s:%d: ", file, line)
		     : snprintf(msg, sizeof(msg), "%s: ", file);
	va_start(ap, fmt);
	n += vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(msg) - 2)
		n = (int)sizeof(msg) - 2;
	msg[n++] = '\n';
	diag_count++;
	if (!pp_diag_silent && write(STDERR_FILENO, msg, (size_t)n) < 0)
		return;
}

int pp_diag_count(void)
{
	return diag_count;
}

void pp_diag_reset(void)
{
	diag_count = 0;
}

static char *trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

static void bad_line(struct reader *r, const char *fmt, const char *arg)
{
	pp_diag(r->conf->path, r->line, fmt, arg);
	r->errors++;
}

static int add_section(struct reader *r, const char *name)
{
	struct pp_conf_section *s, **tail;

	for (tail = &r->conf->sections; *tail; tail = &(*tail)->next) {
		if (strcmp((*tail)->name, name) == 0) {
			pp_diag(r->conf->path, r->line, "duplicate section [%s] (first at line %d)",
				name, (*tail)->line);
			r->errors++;
			return 0;
		}
	}
	s = calloc(1, sizeof(*s));
	if (!s || !(s->name = strdup(name))) {
		free(s);
		return -ENOMEM;
	}
	s->line = r->line;
	*tail = s;
	r->current = s;
	return 0;
}

/* A section header: checked here so that a bad one has its own message.
 * Works on a copy: inih still has to read the line as it is. */
static void section_line(struct reader *r, const char *line)
{
	char text[INI_MAX_LINE];
	char *end;

	snprintf(text, sizeof(text), "%s", line);
	end = strchr(text, ']');

	r->seen_header = true;
	r->current = NULL;
	if (!end) {
		bad_line(r, "section header lacks its closing ']'%s", "");
		return;
	}
	if (*trim(end + 1) != '\0' && end[1] != ';' && end[1] != '#') {
		bad_line(r, "text after the section header '%s'", end + 1);
		return;
	}
	*end = '\0';
	if (*trim(text + 1) == '\0') {
		bad_line(r, "empty section name%s", "");
		return;
	}
	if (add_section(r, trim(text + 1)) < 0)
		r->errors++;
}

/* Decides what inih may see of one line; returns whether to pass it on. */
static bool vet_line(struct reader *r, char *text, size_t len)
{
	if (memchr(r->buf, '\0', len)) {
		bad_line(r, "binary data (NUL byte) in the file%s", "");
		return false;
	}
	if (strlen(text) > LINE_LIMIT) {
		pp_diag(r->conf->path, r->line, "line too long (%zu characters, the limit is %d)",
			strlen(text), LINE_LIMIT);
		r->errors++;
		return false;
	}
	if (*text == '\0' || *text == ';' || *text == '#')
		return true;
	if (*text == '[') {
		section_line(r, text);
		return r->current != NULL;
	}
	if (!strpbrk(text, "=:")) {
		bad_line(r, "expected 'key = value' or '[section]', found '%s'", text);
		return false;
	}
	return true;
}

/* Leading white space is dropped so that inih never takes an indented key
 * for the continuation of the previous value. */
static char *read_line(char *str, int num, void *stream)
{
	struct reader *r = stream;
	ssize_t len = getline(&r->buf, &r->cap, r->f);
	char *text;

	if (len < 0)
		return NULL;
	r->line++;
	while (len > 0 && (r->buf[len - 1] == '\n' || r->buf[len - 1] == '\r'))
		r->buf[--len] = '\0';
	text = r->buf;
	while (*text == ' ' || *text == '\t')
		text++;
	if (!vet_line(r, text, (size_t)len))
		text = ";";
	snprintf(str, (size_t)num, "%s\n", text);
	return str;
}

static int add_kv(struct reader *r, const char *key, const char *value)
{
	struct pp_conf_kv *kv, **tail;

	for (tail = &r->current->kvs; *tail; tail = &(*tail)->next) {
		if (strcmp((*tail)->key, key) == 0) {
			pp_diag(r->conf->path, r->line, "duplicate key '%s' (first at line %d)", key,
				(*tail)->line);
			r->errors++;
			return 1;
		}
	}
	kv = calloc(1, sizeof(*kv));
	if (!kv)
		return 0;
	kv->key = strdup(key);
	kv->value = strdup(value);
	kv->line = r->line;
	*tail = kv;
	return kv->key && kv->value;
}

/* inih's handler: returns nonzero to go on. */
static int on_key(void *user, const char *section, const char *key, const char *value)
{
	struct reader *r = user;
	const char *hash = strchr(value, '#');

	(void)section;
	if (!r->current) {
		if (!r->seen_header)
			bad_line(r, "key '%s' outside any [section]", key);
		return 1;
	}
	if (!*key) {
		bad_line(r, "missing key before '='%s", "");
		return 1;
	}
	/* Only ';' starts an inline comment: a '#' after white space almost
	 * always meant one, and would end up inside the value. */
	if (hash && hash > value && isspace((unsigned char)hash[-1])) {
		bad_line(r, "'#' inside a value; inline comments start with ' ;' (value: '%s')",
			 value);
		return 1;
	}
	return add_kv(r, key, value);
}

static int parse_file(struct pp_conf *conf)
{
	struct reader r = { .conf = conf };
	int rc;

	r.f = fopen(conf->path, "r");
	if (!r.f) {
		rc = -errno;
		pp_diag(conf->path, 0, "cannot open: %s", strerror(errno));
		return rc;
	}
	rc = ini_parse_stream(read_line, &r, on_key, &r);
	fclose(r.f);
	free(r.buf);
	if (rc < 0) {
		pp_diag(conf->path, 0, "out of memory while reading");
		return -ENOMEM;
	}
	if (rc > 0 && r.errors == 0)
		pp_diag(conf->path, rc, "cannot parse this line");
	if (rc > 0 || r.errors)
		return -EINVAL;
	return 0;
}

int pp_conf_read(const char *path, struct pp_conf **out)
{
	struct pp_conf *conf = calloc(1, sizeof(*conf));
	int rc;

	if (!conf || !(conf->path = strdup(path))) {
		free(conf);
		return -ENOMEM;
	}
	rc = parse_file(conf);
	if (rc == 0 && !conf->sections) {
		pp_diag(path, 0, "no [section]: a graph needs at least one node");
		rc = -EINVAL;
	}
	*out = conf;
	return rc;
}

void pp_conf_free(struct pp_conf *conf)
{
	if (!conf)
		return;
	while (conf->sections) {
		struct pp_conf_section *s = conf->sections;

		conf->sections = s->next;
		while (s->kvs) {
			struct pp_conf_kv *kv = s->kvs;

			s->kvs = kv->next;
			free(kv->key);
			free(kv->value);
			free(kv);
		}
		free(s->name);
		free(s);
	}
	free(conf->path);
	free(conf);
}

const struct pp_conf_kv *pp_conf_get(const struct pp_conf_section *s, const char *key)
{
	for (const struct pp_conf_kv *kv = s->kvs; kv; kv = kv->next)
		if (strcmp(kv->key, key) == 0)
			return kv;
	return NULL;
}
