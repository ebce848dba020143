/* Parsing, validating, freeing and describing plugin options from their
 * typed table (struct pp_option in plugin.h). The one place values are
 * parsed: ini files, defaults and --describe all go through here. */
#ifndef PKTPIPE_CORE_OPTIONS_H
#define PKTPIPE_CORE_OPTIONS_H

#include <stdio.h>
#include <pktpipe/plugin.h>

/* Parse text as opt's type into config + opt->offset. Bounds and choices
 * are checked. On failure returns -EINVAL (or -ENOMEM) and writes a reason
 * without file/line (the caller adds them), such as
 * "rate: bad unit 'MB/h' (use B/s, KiB/s, MiB/s, GiB/s, Kbit/s, Mbit/s, Gbit/s)". */
int pp_option_parse(const struct pp_option *opt, const char *text, void *config, char *err,
		    size_t errlen);

/* Find a key in a table; NULL if unknown. */
const struct pp_option *pp_option_find(const struct pp_option *table, const char *name);

/* Free what parsing allocated for every option of a table (strings, lists)
 * and zero those fields. Safe on a zeroed or partly filled config. */
void pp_options_free(const struct pp_option *table, void *config);

/* Check a table itself (names unique and [a-z0-9_]+, defaults parse, ENUM
 * has choices, CUSTOM has parse): a broken plugin is refused at load time.
 * 0 or -EINVAL with the reason naming the key. */
int pp_options_check_table(const struct pp_option *table, char *err, size_t errlen);

/* Bytes an option's value takes in the config struct; 0 for CUSTOM, whose
 * size only its parser knows. */
size_t pp_option_storage(const struct pp_option *opt);

/* The type as shown to users: "size", "rate", "duration", "list of int", ... */
const char *pp_option_type_name(const struct pp_option *opt);

/* One key per block for --describe: name, type, default (or "required"),
 * bounds in the type's own units, choices, help. */
void pp_options_describe(const struct pp_option *table, FILE *out);

/* The same as a markdown table (README key tables, pktpipe.ini(5)). */
void pp_options_describe_markdown(const struct pp_option *table, FILE *out);

/* The same as commented-out ini lines at their defaults (conf/ files). */
void pp_options_describe_ini(const struct pp_option *table, FILE *out);

/* The same as roff .TP entries (pktpipe.ini(5)). */
void pp_options_describe_man(const struct pp_option *table, FILE *out);

/* Scalar parsers, exposed for other core parts and tests. All return 0 or
 * -EINVAL, and accept surrounding whitespace. */
int pp_parse_int(const char *text, int64_t *out);
int pp_parse_bool(const char *text, bool *out);
int pp_parse_size(const char *text, uint64_t *bytes);
int pp_parse_rate(const char *text, uint64_t *bytes_per_s);
int pp_parse_duration(const char *text, uint64_t *ns);

/* Format back to the friendliest exact unit: "4MiB", "5MiB/s", "200ms". */
void pp_format_size(uint64_t bytes, char *buf, size_t len);
void pp_format_rate(uint64_t bytes_per_s, char *buf, size_t len);
void pp_format_duration(uint64_t ns, char *buf, size_t len);

#endif
