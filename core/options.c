/* Plugin options: every value a plugin gets from an ini file, a default or
 * a test goes through pp_option_parse(), so units, bounds and error wording
 * are the same for every plugin. No floating point: "1.5GiB" must mean the
 * same bytes on every machine, so fractions are scaled with integers. */
#include "options.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* A view into the caller's text: values are trimmed without copying. */
struct span {
	const char *p;
	size_t n;
};

/* A scalar parsed but not yet stored, so a failure leaves the field as is. */
union value {
	char *str;
	bool b;
	int64_t i;
	uint64_t u;
	int e;
};

/* value = number * mult / div; div is 8 for bit rates. */
struct unit {
	const char *name;
	uint64_t mult;
	uint64_t div;
};

struct quantity {
	const char *what;
	const struct unit *units;
	uint64_t bare_mult;
	bool per_second;
	const char *hint;
};

#define KIB (UINT64_C(1) << 10)
#define MIB (UINT64_C(1) << 20)
#define GIB (UINT64_C(1) << 30)
#define TIB (UINT64_C(1) << 40)
#define NS_PER_S UINT64_C(1000000000)

#define SIZE_UNITS                                                                     \
	{ "B", 1, 1 }, { "KiB", KIB, 1 }, { "MiB", MIB, 1 }, { "GiB", GIB, 1 },       \
		{ "TiB", TIB, 1 }, { "KB", UINT64_C(1000), 1 },                        \
		{ "MB", UINT64_C(1000000), 1 }, { "GB", UINT64_C(1000000000), 1 },     \
		{ "TB", UINT64_C(1000000000000), 1 }

static const struct unit size_units[] = { SIZE_UNITS, { NULL, 0, 0 } };

static const struct unit rate_units[] = {
	SIZE_UNITS,
	{ "bit", 1, 8 },
	{ "Kbit", UINT64_C(1000), 8 },
	{ "Mbit", UINT64_C(1000000), 8 },
	{ "Gbit", UINT64_C(1000000000), 8 },
	{ NULL, 0, 0 },
};

static const struct unit duration_units[] = {
	{ "ns", 1, 1 },
	{ "us", UINT64_C(1000), 1 },
	{ "ms", UINT64_C(1000000), 1 },
	{ "s", NS_PER_S, 1 },
	{ "min", 60 * NS_PER_S, 1 },
	{ "m", 60 * NS_PER_S, 1 },
	{ "h", 3600 * NS_PER_S, 1 },
	{ NULL, 0, 0 },
};

static const struct quantity size_q = {
	"size", size_units, 1, false, "B, KiB, MiB, GiB, TiB, KB, MB, GB, TB",
};

static const struct quantity rate_q = {
	"rate", rate_units, 1, true,
	"B/s, KiB/s, MiB/s, GiB/s, TiB/s, KB/s, MB/s, GB/s, TB/s, bit/s, Kbit/s, Mbit/s, Gbit/s",
};

static const struct quantity duration_q = {
	"duration", duration_units, NS_PER_S, false, "ns, us, ms, s, min, h",
};

static const char *const transports[] = { "tcp", "ipc", "inproc", "pgm", "epgm", "udp", NULL };

#define TRANSPORT_HINT "tcp, ipc, inproc, pgm, epgm, udp"

static const char *const type_names[] = {
	[PP_OPT_STRING] = "string",
	[PP_OPT_PATH] = "path",
	[PP_OPT_ENDPOINT] = "endpoint",
	[PP_OPT_BOOL] = "bool",
	[PP_OPT_INT] = "int",
	[PP_OPT_SIZE] = "size",
	[PP_OPT_RATE] = "rate",
	[PP_OPT_DURATION] = "duration",
	[PP_OPT_ENUM] = "enum",
};

static const char *const list_names[] = {
	[PP_OPT_STRING] = "list of string",
	[PP_OPT_PATH] = "list of path",
	[PP_OPT_ENDPOINT] = "list of endpoint",
	[PP_OPT_BOOL] = "list of bool",
	[PP_OPT_INT] = "list of int",
	[PP_OPT_SIZE] = "list of size",
	[PP_OPT_RATE] = "list of rate",
	[PP_OPT_DURATION] = "list of duration",
	[PP_OPT_ENUM] = "list of enum",
};

/* A CUSTOM field's size is known only to its plugin; checking its default
 * needs room it is very unlikely to exceed. */
#define CUSTOM_SCRATCH 4096

#define ERR_MAX 256

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

static int fail(char *err, size_t errlen, const char *fmt, ...) PP_PRINTF(3, 4);

/* Sets the reason and returns -EINVAL, so callers can "return fail(...)". */
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* ASCII only: a C locale switch must not change what a config means. */
static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static struct span trim(struct span s)
{
	while (s.n && is_space(s.p[0])) {
		s.p++;
		s.n--;
	}
	while (s.n && is_space(s.p[s.n - 1]))
		s.n--;
	return s;
}

static struct span span_of(const char *text)
{
	struct span s = { text, strlen(text) };

	return trim(s);
}

static bool span_eq(struct span s, const char *word)
{
	return strlen(word) == s.n && memcmp(s.p, word, s.n) == 0;
}

static bool span_eq_ci(struct span s, const char *word)
{
	if (strlen(word) != s.n)
		return false;
	for (size_t i = 0; i < s.n; i++) {
		if (lower(s.p[i]) != lower(word[i]))
			return false;
	}
	return true;
}

static bool strip_suffix_ci(struct span *s, const char *suffix)
{
	size_t n = strlen(suffix);
	struct span tail;

	if (s->n < n)
		return false;
	tail.p = s->p + s->n - n;
	tail.n = n;
	if (!span_eq_ci(tail, suffix))
		return false;
	s->n -= n;
	return true;
}

static char *span_dup(struct span s)
{
	char *p = malloc(s.n + 1);

	if (p) {
		memcpy(p, s.p, s.n);
		p[s.n] = '\0';
	}
	return p;
}

/* Joins choices into buf; a long list is cut, never overflows. */
static void join_choices(const char *const *choices, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; choices && choices[i]; i++) {
		int n = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", choices[i]);

		if (n < 0 || (size_t)n >= len - used)
			break;
		used += (size_t)n;
	}
}

/* ------------------------------------------------------------------ */
/* Scalars                                                             */

/* 0..15 for a hex digit, 16 for anything else. */
static unsigned digit_value(char c)
{
	c = lower(c);
	if (is_digit(c))
		return (unsigned)(c - '0');
	if (c >= 'a' && c <= 'f')
		return (unsigned)(c - 'a' + 10);
	return 16;
}

static int parse_int_span(struct span s, int64_t *out, char *err, size_t errlen)
{
	bool neg = s.n && s.p[0] == '-';
	size_t i = (s.n && (s.p[0] == '-' || s.p[0] == '+')) ? 1 : 0;
	uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	unsigned base = 10;
	uint64_t mag = 0;

	if (s.n - i > 2 && s.p[i] == '0' && lower(s.p[i + 1]) == 'x') {
		base = 16;
		i += 2;
	}
	if (i == s.n)
		return fail(err, errlen, "bad integer '%.*s'", (int)s.n, s.p);
	for (; i < s.n; i++) {
		unsigned d = digit_value(s.p[i]);

		if (d >= base)
			return fail(err, errlen, "bad integer '%.*s'", (int)s.n, s.p);
		if (mag > (limit - d) / base)
			return fail(err, errlen, "bad integer '%.*s': too large", (int)s.n, s.p);
		mag = mag * base + d;
	}
	/* -(INT64_MIN) does not exist; build the minimum from its successor. */
	if (neg && mag)
		*out = -(int64_t)(mag - 1) - 1;
	else
		*out = (int64_t)mag;
	return 0;
}

static int parse_bool_span(struct span s, bool *out, char *err, size_t errlen)
{
	static const char *const yes[] = { "yes", "true", "on", "1", NULL };
	static const char *const no[] = { "no", "false", "off", "0", NULL };

	for (size_t i = 0; yes[i]; i++) {
		if (span_eq_ci(s, yes[i]) || span_eq_ci(s, no[i])) {
			*out = span_eq_ci(s, yes[i]);
			return 0;
		}
	}
	return fail(err, errlen, "bad boolean '%.*s' (use yes/no, true/false, on/off, 1/0)",
		    (int)s.n, s.p);
}

/* digits[.digits] at the start of *s; *s is left at what follows. -ERANGE
 * when the whole part does not fit, -EINVAL when there is no number. */
static int scan_number(struct span *s, uint64_t *whole, struct span *frac)
{
	size_t i = 0, start;
	bool overflow = false;
	uint64_t w = 0;

	for (; i < s->n && is_digit(s->p[i]); i++) {
		unsigned d = (unsigned)(s->p[i] - '0');

		if (w > (UINT64_MAX - d) / 10)
			overflow = true;
		else
			w = w * 10 + d;
	}
	if (i == 0)
		return -EINVAL;
	frac->p = s->p + i;
	frac->n = 0;
	if (i < s->n && s->p[i] == '.') {
		start = ++i;
		while (i < s->n && is_digit(s->p[i]))
			i++;
		if (i == start)
			return -EINVAL;
		frac->p = s->p + start;
		frac->n = i - start;
	}
	s->p += i;
	s->n -= i;
	*whole = w;
	return overflow ? -ERANGE : 0;
}

/* whole.frac * mult rounded down. The fraction is folded in from its last
 * digit, floor((d * mult + floor(x)) / 10) == floor((d * mult + x) / 10),
 * so any number of digits is exact and never exceeds 10 * mult. */
static int scale(uint64_t whole, struct span frac, uint64_t mult, uint64_t *out)
{
	uint64_t part = 0;

	for (size_t i = frac.n; i-- > 0;)
		part = ((uint64_t)(frac.p[i] - '0') * mult + part) / 10;
	if (whole > (UINT64_MAX - part) / mult)
		return -ERANGE;
	*out = whole * mult + part;
	return 0;
}

/* A rate's unit must say "per second" ("5MiB" alone is a size, most likely
 * a mistake); only a bare number is taken as bytes/s without it. */
static bool find_unit(const struct quantity *q, struct span name, struct unit *out)
{
	bool per_second = strip_suffix_ci(&name, "/s") || strip_suffix_ci(&name, "/sec");

	if (per_second != q->per_second && (name.n || !q->per_second))
		return false;
	if (name.n == 0) {
		out->mult = q->bare_mult;
		out->div = 1;
		return true;
	}
	for (const struct unit *u = q->units; u->name; u++) {
		if (span_eq_ci(name, u->name)) {
			*out = *u;
			return true;
		}
	}
	return false;
}

static int parse_quantity(const struct quantity *q, struct span s, uint64_t *out, char *err,
			  size_t errlen)
{
	struct span rest = s, frac;
	struct unit unit;
	uint64_t whole, v;
	int rc;

	if (s.n && s.p[0] == '-')
		return fail(err, errlen, "bad %s '%.*s': must not be negative", q->what, (int)s.n,
			    s.p);
	rc = scan_number(&rest, &whole, &frac);
	if (rc == -EINVAL)
		return fail(err, errlen, "bad %s '%.*s': expected a number", q->what, (int)s.n,
			    s.p);
	rest = trim(rest);
	if (!find_unit(q, rest, &unit))
		return fail(err, errlen, "bad %s '%.*s': unknown unit '%.*s' (use %s)", q->what,
			    (int)s.n, s.p, (int)rest.n, rest.p, q->hint);
	if (rc == -ERANGE || scale(whole, frac, unit.mult, &v) < 0)
		return fail(err, errlen, "bad %s '%.*s': too large", q->what, (int)s.n, s.p);
	*out = v / unit.div;
	return 0;
}

static int check_endpoint(struct span s, char *err, size_t errlen)
{
	const char *sep = memmem(s.p, s.n, "://", 3);
	struct span transport;

	if (!sep)
		return fail(err, errlen,
			    "bad endpoint '%.*s': expected transport://address (transport one of "
			    TRANSPORT_HINT ")", (int)s.n, s.p);
	transport.p = s.p;
	transport.n = (size_t)(sep - s.p);
	for (size_t i = 0; transports[i]; i++) {
		if (!span_eq(transport, transports[i]))
			continue;
		if (sep + 3 == s.p + s.n)
			return fail(err, errlen, "bad endpoint '%.*s': empty address", (int)s.n,
				    s.p);
		return 0;
	}
	return fail(err, errlen, "bad endpoint '%.*s': unknown transport '%.*s' (use "
		    TRANSPORT_HINT ")", (int)s.n, s.p, (int)transport.n, transport.p);
}

static int parse_enum(const struct pp_option *opt, struct span s, int *out, char *err,
		      size_t errlen)
{
	char names[ERR_MAX];

	for (int i = 0; opt->choices && opt->choices[i]; i++) {
		if (span_eq(s, opt->choices[i])) {
			*out = i;
			return 0;
		}
	}
	join_choices(opt->choices, names, sizeof(names));
	return fail(err, errlen, "bad value '%.*s' (use one of %s)", (int)s.n, s.p, names);
}

/* ------------------------------------------------------------------ */
/* Bounds                                                              */

static bool bounded(const struct pp_option *opt)
{
	return opt->min != 0 || opt->max != 0;
}

static void format_bound(enum pp_opt_type type, int64_t v, char *buf, size_t len)
{
	if (v < 0 || type == PP_OPT_INT)
		snprintf(buf, len, "%" PRId64, v);
	else if (type == PP_OPT_SIZE)
		pp_format_size((uint64_t)v, buf, len);
	else if (type == PP_OPT_RATE)
		pp_format_rate((uint64_t)v, buf, len);
	else
		pp_format_duration((uint64_t)v, buf, len);
}

static int check_int_bounds(const struct pp_option *opt, struct span s, int64_t v, char *err,
			    size_t errlen)
{
	if (!bounded(opt) || (v >= opt->min && v <= opt->max))
		return 0;
	return fail(err, errlen, "'%.*s' out of range %" PRId64 "..%" PRId64, (int)s.n, s.p,
		    opt->min, opt->max);
}

static int check_quantity_bounds(const struct pp_option *opt, enum pp_opt_type type,
				 struct span s, uint64_t v, char *err, size_t errlen)
{
	uint64_t min = opt->min > 0 ? (uint64_t)opt->min : 0;
	uint64_t max = opt->max > 0 ? (uint64_t)opt->max : 0;
	char lo[32], hi[32];

	if (!bounded(opt) || (v >= min && v <= max))
		return 0;
	format_bound(type, opt->min, lo, sizeof(lo));
	format_bound(type, opt->max, hi, sizeof(hi));
	return fail(err, errlen, "'%.*s' out of range: must be between %s and %s", (int)s.n, s.p,
		    lo, hi);
}

/* ------------------------------------------------------------------ */
/* Values                                                              */

static const struct quantity *quantity_of(enum pp_opt_type type)
{
	return type == PP_OPT_SIZE ? &size_q : type == PP_OPT_RATE ? &rate_q : &duration_q;
}

static int dup_value(struct span s, union value *v, char *err, size_t errlen)
{
	v->str = span_dup(s);
	if (!v->str) {
		fail(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

/* Parses s as type (opt gives bounds and choices) without storing it. */
static int parse_scalar(const struct pp_option *opt, enum pp_opt_type type, struct span s,
			union value *v, char *err, size_t errlen)
{
	int rc;

	if (s.n == 0)
		return fail(err, errlen, "empty value");
	switch (type) {
	case PP_OPT_ENDPOINT:
		rc = check_endpoint(s, err, errlen);
		return rc ? rc : dup_value(s, v, err, errlen);
	case PP_OPT_STRING:
	case PP_OPT_PATH:
		return dup_value(s, v, err, errlen);
	case PP_OPT_BOOL:
		return parse_bool_span(s, &v->b, err, errlen);
	case PP_OPT_INT:
		rc = parse_int_span(s, &v->i, err, errlen);
		return rc ? rc : check_int_bounds(opt, s, v->i, err, errlen);
	case PP_OPT_SIZE:
	case PP_OPT_RATE:
	case PP_OPT_DURATION:
		rc = parse_quantity(quantity_of(type), s, &v->u, err, errlen);
		return rc ? rc : check_quantity_bounds(opt, type, s, v->u, err, errlen);
	case PP_OPT_ENUM:
		return parse_enum(opt, s, &v->e, err, errlen);
	default:
		return fail(err, errlen, "option type %d cannot hold a single value", (int)type);
	}
}

static void store_scalar(enum pp_opt_type type, void *field, const union value *v)
{
	switch (type) {
	case PP_OPT_STRING:
	case PP_OPT_PATH:
	case PP_OPT_ENDPOINT:
		*(char **)field = v->str;
		break;
	case PP_OPT_BOOL:
		*(bool *)field = v->b;
		break;
	case PP_OPT_INT:
		*(int64_t *)field = v->i;
		break;
	case PP_OPT_SIZE:
	case PP_OPT_RATE:
	case PP_OPT_DURATION:
		*(uint64_t *)field = v->u;
		break;
	case PP_OPT_ENUM:
		*(int *)field = v->e;
		break;
	default:
		break;
	}
}

static bool is_string_type(enum pp_opt_type type)
{
	return type == PP_OPT_STRING || type == PP_OPT_PATH || type == PP_OPT_ENDPOINT;
}

static bool is_quantity_type(enum pp_opt_type type)
{
	return type == PP_OPT_SIZE || type == PP_OPT_RATE || type == PP_OPT_DURATION;
}

static void list_free(struct pp_list *l)
{
	for (size_t i = 0; l->str && i < l->count; i++)
		free(l->str[i]);
	free(l->str);
	free(l->num);
	l->count = 0;
	l->str = NULL;
	l->num = NULL;
}

static void free_field(const struct pp_option *opt, void *field)
{
	if (is_string_type(opt->type)) {
		free(*(char **)field);
		*(char **)field = NULL;
	} else if (opt->type == PP_OPT_LIST) {
		list_free(field);
	}
}

/* ------------------------------------------------------------------ */
/* Lists                                                               */

static int64_t item_number(enum pp_opt_type type, const union value *v)
{
	switch (type) {
	case PP_OPT_BOOL:
		return v->b;
	case PP_OPT_ENUM:
		return v->e;
	case PP_OPT_INT:
		return v->i;
	default:
		return (int64_t)v->u;
	}
}

/* Item i of l from s; str[] keeps the text, num[] the value if numeric. */
static int parse_item(const struct pp_option *opt, struct span s, size_t i, struct pp_list *l,
		      char *err, size_t errlen)
{
	enum pp_opt_type type = opt->item_type;
	union value v = { 0 };
	int rc;

	rc = parse_scalar(opt, type, s, &v, err, errlen);
	if (rc)
		return rc;
	if (is_string_type(type)) {
		l->str[i] = v.str;
		return 0;
	}
	if (is_quantity_type(type) && v.u > (uint64_t)INT64_MAX)
		return fail(err, errlen, "'%.*s' too large for a list item", (int)s.n, s.p);
	l->num[i] = item_number(type, &v);
	l->str[i] = span_dup(s);
	if (!l->str[i]) {
		fail(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

static size_t count_items(struct span s)
{
	size_t n = 1;

	for (size_t i = 0; i < s.n; i++)
		n += s.p[i] == ',';
	return n;
}

static int list_alloc(const struct pp_option *opt, size_t n, struct pp_list *l, char *err,
		      size_t errlen)
{
	l->count = n;
	l->str = calloc(n, sizeof(*l->str));
	if (l->str && !is_string_type(opt->item_type))
		l->num = calloc(n, sizeof(*l->num));
	if (!l->str || (!is_string_type(opt->item_type) && !l->num)) {
		list_free(l);
		fail(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

/* Cuts the next comma-separated item off *rest, trimmed. */
static struct span next_item(struct span *rest)
{
	const char *comma = memchr(rest->p, ',', rest->n);
	struct span item = { rest->p, comma ? (size_t)(comma - rest->p) : rest->n };

	if (comma) {
		rest->n -= item.n + 1;
		rest->p = comma + 1;
	} else {
		rest->p += rest->n;
		rest->n = 0;
	}
	return trim(item);
}

static int parse_list(const struct pp_option *opt, struct span s, struct pp_list *l,
		      char *err, size_t errlen)
{
	struct span rest = s, item;
	char why[ERR_MAX];
	size_t n;
	int rc;

	if (s.n == 0)
		return 0;
	n = count_items(s);
	if (opt->max_items && n > opt->max_items)
		return fail(err, errlen, "bad list '%.*s': %zu items, at most %" PRIu32 " allowed",
			    (int)s.n, s.p, n, opt->max_items);
	rc = list_alloc(opt, n, l, err, errlen);
	for (size_t i = 0; !rc && i < n; i++) {
		item = next_item(&rest);
		if (item.n == 0) {
			rc = fail(err, errlen, "bad list '%.*s': item %zu is empty", (int)s.n, s.p,
				  i + 1);
		} else {
			rc = parse_item(opt, item, i, l, why, sizeof(why));
			if (rc)
				fail(err, errlen, "item %zu: %s", i + 1, why);
		}
	}
	if (rc)
		list_free(l);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Parsing into a config                                               */

/* "" for a key whose default is "" means "no value": the field goes back
 * to what a zeroed config holds. A CUSTOM field's layout is the plugin's,
 * so it is left alone. */
static void clear_field(const struct pp_option *opt, void *field)
{
	union value zero;

	memset(&zero, 0, sizeof(zero));
	free_field(opt, field);
	if (opt->type != PP_OPT_LIST && opt->type != PP_OPT_CUSTOM)
		store_scalar(opt->type, field, &zero);
}

/* The plugin's parser gets a NUL-terminated, trimmed copy and always a
 * buffer for its reason, even when our caller passed none. */
static int parse_custom(const struct pp_option *opt, struct span s, void *field, char *err,
			size_t errlen)
{
	char local[ERR_MAX], *text = span_dup(s);
	int rc;

	if (!text) {
		fail(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (!err || !errlen) {
		err = local;
		errlen = sizeof(local);
	}
	err[0] = '\0';
	rc = opt->parse(text, field, err, errlen);
	/* A plugin's parser may forget the reason; the user still needs one. */
	if (rc && !err[0])
		fail(err, errlen, "bad value '%s'", text);
	free(text);
	if (rc > 0)
		rc = -EINVAL;
	return rc;
}

int pp_option_parse(const struct pp_option *opt, const char *text, void *config, char *err,
		    size_t errlen)
{
	void *field = (char *)config + opt->offset;
	struct pp_list list = { 0 };
	union value v = { 0 };
	struct span s;
	int rc;

	if (!text)
		return fail(err, errlen, "no value");
	s = span_of(text);
	if (s.n == 0 && opt->default_value && !opt->default_value[0]) {
		clear_field(opt, field);
		return 0;
	}
	if (opt->type == PP_OPT_CUSTOM) {
		if (!opt->parse)
			return fail(err, errlen, "custom option without a parser");
		return parse_custom(opt, s, field, err, errlen);
	}
	if (opt->type == PP_OPT_LIST) {
		rc = parse_list(opt, s, &list, err, errlen);
		if (rc)
			return rc;
		list_free(field);
		*(struct pp_list *)field = list;
		return 0;
	}
	rc = parse_scalar(opt, opt->type, s, &v, err, errlen);
	if (rc)
		return rc;
	free_field(opt, field);
	store_scalar(opt->type, field, &v);
	return 0;
}

const struct pp_option *pp_option_find(const struct pp_option *table, const char *name)
{
	for (const struct pp_option *opt = table; opt && opt->name; opt++) {
		if (strcmp(opt->name, name) == 0)
			return opt;
	}
	return NULL;
}

void pp_options_free(const struct pp_option *table, void *config)
{
	for (const struct pp_option *opt = table; opt && opt->name; opt++)
		free_field(opt, (char *)config + opt->offset);
}

/* ------------------------------------------------------------------ */
/* Checking a table                                                    */

static bool valid_key(const char *name)
{
	if (!name[0])
		return false;
	for (const char *p = name; *p; p++) {
		if (!((*p >= 'a' && *p <= 'z') || is_digit(*p) || *p == '_'))
			return false;
	}
	return true;
}

static bool valid_type(enum pp_opt_type type)
{
	return (unsigned)type <= PP_OPT_CUSTOM;
}

static enum pp_opt_type value_type(const struct pp_option *opt)
{
	return opt->type == PP_OPT_LIST ? opt->item_type : opt->type;
}

static bool has_bounds(const struct pp_option *opt)
{
	enum pp_opt_type t = value_type(opt);

	return bounded(opt) && (t == PP_OPT_INT || is_quantity_type(t));
}

static int check_types(const struct pp_option *opt, char *err, size_t errlen)
{
	enum pp_opt_type t = value_type(opt);

	if (!valid_type(opt->type))
		return fail(err, errlen, "option '%s': unknown type %d", opt->name, (int)opt->type);
	if (opt->type == PP_OPT_LIST && (!valid_type(t) || t == PP_OPT_LIST || t == PP_OPT_CUSTOM))
		return fail(err, errlen, "option '%s': list items must be of a scalar type",
			    opt->name);
	if (t == PP_OPT_ENUM && (!opt->choices || !opt->choices[0]))
		return fail(err, errlen, "option '%s': enum without choices", opt->name);
	if (t == PP_OPT_CUSTOM && !opt->parse)
		return fail(err, errlen, "option '%s': custom type without a parse function",
			    opt->name);
	if (has_bounds(opt) && opt->min > opt->max)
		return fail(err, errlen, "option '%s': min %" PRId64 " > max %" PRId64, opt->name,
			    opt->min, opt->max);
	if (has_bounds(opt) && is_quantity_type(t) && opt->min < 0)
		return fail(err, errlen, "option '%s': negative bound for a %s", opt->name,
			    type_names[t]);
	return 0;
}

static int check_option(const struct pp_option *table, const struct pp_option *opt, char *err,
			size_t errlen)
{
	if (!valid_key(opt->name))
		return fail(err, errlen, "option '%s': name must match [a-z0-9_]+", opt->name);
	for (const struct pp_option *o = table; o < opt; o++) {
		if (strcmp(o->name, opt->name) == 0)
			return fail(err, errlen, "option '%s': duplicate name", opt->name);
	}
	return check_types(opt, err, errlen);
}

size_t pp_option_storage(const struct pp_option *opt)
{
	switch (opt->type) {
	case PP_OPT_STRING:
	case PP_OPT_PATH:
	case PP_OPT_ENDPOINT:
		return sizeof(char *);
	case PP_OPT_BOOL:
		return sizeof(bool);
	case PP_OPT_INT:
		return sizeof(int64_t);
	case PP_OPT_SIZE:
	case PP_OPT_RATE:
	case PP_OPT_DURATION:
		return sizeof(uint64_t);
	case PP_OPT_ENUM:
		return sizeof(int);
	case PP_OPT_LIST:
		return sizeof(struct pp_list);
	default:
		return 0; /* CUSTOM: only its parser knows */
	}
}

static size_t field_size(const struct pp_option *opt)
{
	size_t n = pp_option_storage(opt);

	return n ? n : CUSTOM_SCRATCH;
}

/* Each default is parsed into a fresh zeroed buffer and freed at once, so
 * options sharing storage in a broken table cannot confuse the check. */
static int check_default(const struct pp_option *opt, void *scratch, size_t size, char *err,
			 size_t errlen)
{
	char why[ERR_MAX];
	int rc;

	if (!opt->default_value)
		return 0;
	memset(scratch, 0, size);
	rc = pp_option_parse(opt, opt->default_value, scratch, why, sizeof(why));
	free_field(opt, (char *)scratch + opt->offset);
	if (rc)
		fail(err, errlen, "option '%s': bad default: %s", opt->name, why);
	return rc == -ENOMEM ? rc : rc ? -EINVAL : 0;
}

int pp_options_check_table(const struct pp_option *table, char *err, size_t errlen)
{
	const struct pp_option *opt;
	size_t size = 1;
	void *scratch;
	int rc = 0;

	for (opt = table; opt && opt->name; opt++) {
		rc = check_option(table, opt, err, errlen);
		if (rc)
			return rc;
		if (opt->offset + field_size(opt) > size)
			size = opt->offset + field_size(opt);
	}
	scratch = malloc(size);
	if (!scratch) {
		fail(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (opt = table; !rc && opt && opt->name; opt++)
		rc = check_default(opt, scratch, size, err, errlen);
	free(scratch);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Describing a table                                                  */

const char *pp_option_type_name(const struct pp_option *opt)
{
	if (opt->type == PP_OPT_CUSTOM)
		return opt->value_hint ? opt->value_hint : "value";
	if (opt->type == PP_OPT_LIST)
		return (unsigned)opt->item_type <= PP_OPT_ENUM ? list_names[opt->item_type] : "list";
	if ((unsigned)opt->type <= PP_OPT_ENUM)
		return type_names[opt->type];
	return "unknown";
}

static void print_choices(const char *const *choices, FILE *out)
{
	for (size_t i = 0; choices && choices[i]; i++)
		fprintf(out, "%s%s", i ? ", " : "", choices[i]);
}

static void describe_one(const struct pp_option *opt, FILE *out)
{
	enum pp_opt_type t = value_type(opt);
	char lo[32], hi[32];

	fprintf(out, "%s (%s, ", opt->name, pp_option_type_name(opt));
	if (!opt->default_value)
		fprintf(out, "required)\n");
	else
		fprintf(out, "default: %s)\n", opt->default_value[0] ? opt->default_value : "none");
	if (opt->help)
		fprintf(out, "    %s\n", opt->help);
	if (has_bounds(opt)) {
		format_bound(t, opt->min, lo, sizeof(lo));
		format_bound(t, opt->max, hi, sizeof(hi));
		fprintf(out, "    bounds: %s .. %s\n", lo, hi);
	}
	if (t == PP_OPT_ENUM) {
		fprintf(out, "    choices: ");
		print_choices(opt->choices, out);
		fprintf(out, "\n");
	}
	if (opt->type == PP_OPT_LIST && opt->max_items)
		fprintf(out, "    at most %" PRIu32 " items\n", opt->max_items);
}

void pp_options_describe(const struct pp_option *table, FILE *out)
{
	for (const struct pp_option *opt = table; opt && opt->name; opt++) {
		if (opt != table)
			fprintf(out, "\n");
		describe_one(opt, out);
	}
}

/* A '|' inside a cell would end it. */
static void md_text(const char *s, FILE *out)
{
	for (; *s; s++) {
		if (*s == '|')
			fputc('\\', out);
		fputc(*s == '\n' ? ' ' : *s, out);
	}
}

static void md_help(const struct pp_option *opt, FILE *out)
{
	enum pp_opt_type t = value_type(opt);
	char lo[32], hi[32];

	md_text(opt->help ? opt->help : "", out);
	/* The help is a phrase: end it before the sentences that follow. */
	if (opt->help && *opt->help && (has_bounds(opt) || t == PP_OPT_ENUM) &&
	    opt->help[strlen(opt->help) - 1] != '.')
		fputc('.', out);
	if (has_bounds(opt)) {
		format_bound(t, opt->min, lo, sizeof(lo));
		format_bound(t, opt->max, hi, sizeof(hi));
		fprintf(out, "%sBounds: %s .. %s.", opt->help ? " " : "", lo, hi);
	}
	if (t == PP_OPT_ENUM) {
		fprintf(out, "%sChoices: ", opt->help || has_bounds(opt) ? " " : "");
		for (size_t i = 0; opt->choices && opt->choices[i]; i++) {
			fprintf(out, "%s`", i ? ", " : "");
			md_text(opt->choices[i], out);
			fputc('`', out);
		}
		fputc('.', out);
	}
	if (opt->type == PP_OPT_LIST && opt->max_items)
		fprintf(out, " At most %" PRIu32 " items.", opt->max_items);
}

void pp_options_describe_markdown(const struct pp_option *table, FILE *out)
{
	fprintf(out, "| key | type | default | help |\n");
	fprintf(out, "| --- | --- | --- | --- |\n");
	for (const struct pp_option *opt = table; opt && opt->name; opt++) {
		fprintf(out, "| `%s` | ", opt->name);
		md_text(pp_option_type_name(opt), out);
		if (!opt->default_value) {
			fprintf(out, " | required | ");
		} else if (!opt->default_value[0]) {
			fprintf(out, " | none | ");
		} else {
			fprintf(out, " | `");
			md_text(opt->default_value, out);
			fprintf(out, "` | ");
		}
		md_help(opt, out);
		fprintf(out, " |\n");
	}
}

/* ------------------------------------------------------------------ */
/* Public scalar parsers and formatters                                */

int pp_parse_int(const char *text, int64_t *out)
{
	return text ? parse_int_span(span_of(text), out, NULL, 0) : -EINVAL;
}

int pp_parse_bool(const char *text, bool *out)
{
	return text ? parse_bool_span(span_of(text), out, NULL, 0) : -EINVAL;
}

int pp_parse_size(const char *text, uint64_t *bytes)
{
	return text ? parse_quantity(&size_q, span_of(text), bytes, NULL, 0) : -EINVAL;
}

int pp_parse_rate(const char *text, uint64_t *bytes_per_s)
{
	return text ? parse_quantity(&rate_q, span_of(text), bytes_per_s, NULL, 0) : -EINVAL;
}

int pp_parse_duration(const char *text, uint64_t *ns)
{
	return text ? parse_quantity(&duration_q, span_of(text), ns, NULL, 0) : -EINVAL;
}

/* units: largest first, ending with the unit of 1. */
static void format_exact(uint64_t v, const struct unit *units, const char *suffix, char *buf,
			 size_t len)
{
	const struct unit *u = units;

	while (u->mult > 1 && (v == 0 || v % u->mult))
		u++;
	snprintf(buf, len, "%" PRIu64 "%s%s", v / u->mult, u->name, suffix);
}

static const struct unit size_format_units[] = {
	{ "TiB", TIB, 1 }, { "GiB", GIB, 1 }, { "MiB", MIB, 1 }, { "KiB", KIB, 1 }, { "B", 1, 1 },
};

/* 0 shows as "0s": zero time reads more naturally in seconds. */
static const struct unit duration_format_units[] = {
	{ "h", 3600 * NS_PER_S, 1 },  { "min", 60 * NS_PER_S, 1 }, { "s", NS_PER_S, 1 },
	{ "ms", UINT64_C(1000000), 1 }, { "us", UINT64_C(1000), 1 }, { "ns", 1, 1 },
};

void pp_format_size(uint64_t bytes, char *buf, size_t len)
{
	format_exact(bytes, size_format_units, "", buf, len);
}

void pp_format_rate(uint64_t bytes_per_s, char *buf, size_t len)
{
	format_exact(bytes_per_s, size_format_units, "/s", buf, len);
}

void pp_format_duration(uint64_t ns, char *buf, size_t len)
{
	if (ns == 0)
		snprintf(buf, len, "0s");
	else
		format_exact(ns, duration_format_units, "", buf, len);
}

/* Commented-out ini lines, as conf/ examples carry them: the help with
 * type and bounds, then the key at its default. */
/* Comment text folded at word boundaries: ini lines have a length limit. */
static void ini_comment(const char *text, FILE *out)
{
	const size_t width = 76;

	while (*text) {
		size_t len = strlen(text), cut = len;

		if (len > width) {
			cut = width;
			while (cut > 0 && text[cut] != ' ')
				cut--;
			if (cut == 0)
				cut = width;
		}
		fprintf(out, "; %.*s\n", (int)cut, text);
		text += cut;
		while (*text == ' ')
			text++;
	}
}

static void ini_one(const struct pp_option *opt, FILE *out)
{
	enum pp_opt_type t = value_type(opt);
	char lo[32], hi[32], text[2048];
	size_t n;

	n = (size_t)snprintf(text, sizeof(text), "%s (%s%s): %s", opt->name,
			     pp_option_type_name(opt), opt->default_value ? "" : ", required",
			     opt->help ? opt->help : "");
	if (has_bounds(opt) && n < sizeof(text)) {
		format_bound(t, opt->min, lo, sizeof(lo));
		format_bound(t, opt->max, hi, sizeof(hi));
		n += (size_t)snprintf(text + n, sizeof(text) - n, " [%s .. %s]", lo, hi);
	}
	for (size_t i = 0; t == PP_OPT_ENUM && opt->choices && opt->choices[i] && n < sizeof(text); i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%s%s%s", i ? ", " : " [",
				      opt->choices[i], opt->choices[i + 1] ? "" : "]");
	ini_comment(text, out);
	fprintf(out, ";%s = %s\n", opt->name, opt->default_value ? opt->default_value : "");
}

void pp_options_describe_ini(const struct pp_option *table, FILE *out)
{
	for (const struct pp_option *opt = table; opt && opt->name; opt++)
		ini_one(opt, out);
}

/* roff escapes: a leading '.' or '\'' would be a request, '\\' an escape. */
static void man_text(const char *s, FILE *out)
{
	if (*s == '.' || *s == '\'')
		fputs("\\&", out);
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\e", out);
		else if (*s == '-')
			fputs("\\-", out);
		else
			fputc(*s, out);
	}
}

/* One .TP entry per key, for pktpipe.ini(5). */
void pp_options_describe_man(const struct pp_option *table, FILE *out)
{
	for (const struct pp_option *opt = table; opt && opt->name; opt++) {
		fputs(".TP\n.B ", out);
		man_text(opt->name, out);
		fputs(" \\fR(", out);
		man_text(pp_option_type_name(opt), out);
		if (!opt->default_value)
			fputs(", required)\n", out);
		else if (!opt->default_value[0])
			fputs(", default: none)\n", out);
		else {
			fputs(", default: ", out);
			man_text(opt->default_value, out);
			fputs(")\n", out);
		}
		man_text(opt->help ? opt->help : "", out);
		fputc('\n', out);
		if (has_bounds(opt) || value_type(opt) == PP_OPT_ENUM) {
			char lo[32], hi[32];

			fputs(".br\n", out);
			if (has_bounds(opt)) {
				format_bound(value_type(opt), opt->min, lo, sizeof(lo));
				format_bound(value_type(opt), opt->max, hi, sizeof(hi));
				fprintf(out, "Bounds: %s .. %s.\n", lo, hi);
			} else {
				fputs("Choices: ", out);
				print_choices(opt->choices, out);
				fputs(".\n", out);
			}
		}
	}
}
