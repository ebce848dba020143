/* The ring's native query format: see query.h and README.md.
 *
 * Everything here is a pure function over the bytes it is given: the
 * request comes from the network, so every length is checked before use,
 * nothing reads past len, and every value is range-checked (times must fit
 * in a uint64 of nanoseconds since 1970, that is until 2554). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "query.h"

#define NS_PER_S UINT64_C(1000000000)
#define MAX_SECONDS (UINT64_MAX / NS_PER_S) /* 18446744073 */
#define SHOW_MAX 64 /* bytes of a bad value quoted in a message */

static int qfail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int qfail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static int show(size_t n)
{
	return (int)(n < SHOW_MAX ? n : SHOW_MAX);
}

/* ------------------------------------------------------------------ */
/* Numbers                                                              */

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* The digits at s[*i..n) into *v, all of them consumed: how many there
 * were (at most 64 is said), or -ERANGE if their value overflows. */
static int scan_digits(const char *s, size_t n, size_t *i, uint64_t *v)
{
	size_t start = *i;
	bool overflow = false;

	*v = 0;
	for (; *i < n && is_digit(s[*i]); (*i)++) {
		unsigned d = (unsigned)(s[*i] - '0');

		if (*v > (UINT64_MAX - d) / 10)
			overflow = true;
		else
			*v = *v * 10 + d;
	}
	if (overflow)
		return -ERANGE;
	return (int)(*i - start > 64 ? 64 : *i - start);
}

/* ".ddd" (1 to 9 digits) at s[*i], if any, as nanoseconds in *frac. */
static int scan_fraction(const char *s, size_t n, size_t *i, uint64_t *frac)
{
	size_t start;

	*frac = 0;
	if (*i >= n || s[*i] != '.')
		return 0;
	start = ++(*i);
	for (; *i < n && is_digit(s[*i]); (*i)++) {
		if (*i - start == 9)
			return -ERANGE;
		*frac = *frac * 10 + (uint64_t)(s[*i] - '0');
	}
	if (*i == start)
		return -EINVAL;
	for (size_t k = *i - start; k < 9; k++)
		*frac *= 10;
	return 0;
}

int query_count(const char *s, size_t n, uint64_t *v, char *err, size_t errlen)
{
	size_t i = 0;
	int rc = scan_digits(s, n, &i, v);

	if (rc == 0 || i != n)
		return qfail(err, errlen, "'%.*s' is not a decimal number", show(n), s);
	if (rc < 0)
		return qfail(err, errlen, "'%.*s' is too large", show(n), s);
	if (*v == 0)
		return qfail(err, errlen, "must be at least 1");
	return 0;
}

/* ------------------------------------------------------------------ */
/* Durations                                                            */

static const struct {
	const char *name;
	uint64_t mult;
} duration_units[] = {
	{ "ns", 1 },
	{ "us", 1000 },
	{ "ms", 1000000 },
	{ "s", NS_PER_S },
	{ "min", 60 * NS_PER_S },
	{ "m", 60 * NS_PER_S },
	{ "h", 3600 * NS_PER_S },
};

static bool unit_is(const char *s, size_t n, const char *name)
{
	if (n != strlen(name))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((s[i] | 0x20) != name[i])
			return false;
	return true;
}

static int duration_unit(const char *s, size_t n, uint64_t *mult)
{
	if (n == 0) {
		*mult = NS_PER_S;
		return 0;
	}
	for (size_t k = 0; k < sizeof(duration_units) / sizeof(duration_units[0]); k++) {
		if (unit_is(s, n, duration_units[k].name)) {
			*mult = duration_units[k].mult;
			return 0;
		}
	}
	return -EINVAL;
}

/* whole + frac/1e9 units of mult ns each; -ERANGE if it overflows. frac
 * is below 1e9 and mult at most an hour, so neither product overflows. */
static int scale(uint64_t whole, uint64_t frac, uint64_t mult, uint64_t *out)
{
	uint64_t part = mult % NS_PER_S == 0 ? frac * (mult / NS_PER_S) : frac * mult / NS_PER_S;

	if (whole > (UINT64_MAX - part) / mult)
		return -ERANGE;
	*out = whole * mult + part;
	return 0;
}

int query_duration(const char *s, size_t n, uint64_t *ns, char *err, size_t errlen)
{
	uint64_t whole, frac, mult = NS_PER_S;
	size_t i = 0;
	int rc = scan_digits(s, n, &i, &whole);
	bool overflow = rc < 0;

	if (rc == 0)
		return qfail(err, errlen, "bad duration '%.*s': expected a number, then ns, us, "
				 "ms, s, min or h", show(n), s);
	rc = scan_fraction(s, n, &i, &frac);
	if (rc == -EINVAL)
		return qfail(err, errlen, "bad duration '%.*s': digits must follow '.'", show(n), s);
	if (rc == 0 && duration_unit(s + i, n - i, &mult) < 0)
		return qfail(err, errlen, "bad duration '%.*s': unknown unit '%.*s' (use ns, us, "
				 "ms, s, min or h; none means seconds)", show(n), s, show(n - i), s + i);
	if (rc < 0 || overflow || scale(whole, frac, mult, ns) < 0)
		return qfail(err, errlen, "bad duration '%.*s': too large, or more than 9 "
				 "decimals", show(n), s);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Times                                                                */

static bool seconds_fit(uint64_t secs, uint64_t frac)
{
	return secs < MAX_SECONDS || (secs == MAX_SECONDS && frac <= UINT64_MAX % NS_PER_S);
}

/* Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar
 * (H. Hinnant's days_from_civil), for years 0 to 9999. */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int days_in_month(int64_t y, int64_t m)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : days[m - 1];
}

/* width digits at s[at] (which the caller checked is in range). */
static bool fixed(const char *s, size_t at, int width, int64_t *v)
{
	*v = 0;
	for (int k = 0; k < width; k++) {
		if (!is_digit(s[at + (size_t)k]))
			return false;
		*v = *v * 10 + (s[at + (size_t)k] - '0');
	}
	return true;
}

/* "Z", or "+hh:mm" / "-hh:mm": seconds east of UTC. */
static bool rfc3339_offset(const char *s, size_t n, int64_t *offset)
{
	int64_t hh, mm;

	*offset = 0;
	if (n == 1 && (s[0] == 'Z' || s[0] == 'z'))
		return true;
	if (n != 6 || (s[0] != '+' && s[0] != '-') || s[3] != ':' || !fixed(s, 1, 2, &hh) ||
	    !fixed(s, 4, 2, &mm) || hh > 23 || mm > 59)
		return false;
	*offset = (s[0] == '-' ? -1 : 1) * (hh * 3600 + mm * 60);
	return true;
}

/* YYYY-MM-DD[Tt ]hh:mm:ss[.fraction](Z|+hh:mm|-hh:mm) into seconds. A
 * leap second (:60) counts as the next second, as POSIX time does. */
static bool rfc3339_fields(const char *s, size_t n, int64_t *secs, size_t *frac_at)
{
	int64_t y, mo, d, h, mi, se;

	if (n < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
	    s[13] != ':' || s[16] != ':')
		return false;
	if (!fixed(s, 0, 4, &y) || !fixed(s, 5, 2, &mo) || !fixed(s, 8, 2, &d) ||
	    !fixed(s, 11, 2, &h) || !fixed(s, 14, 2, &mi) || !fixed(s, 17, 2, &se))
		return false;
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || se > 60)
		return false;
	*secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
	*frac_at = 19;
	return true;
}

static int rfc3339(const char *s, size_t n, uint64_t *ns, char *err, size_t errlen)
{
	int64_t secs, offset;
	uint64_t frac;
	size_t i;

	if (!rfc3339_fields(s, n, &secs, &i))
		return qfail(err, errlen, "bad time '%.*s': expected RFC 3339 "
				 "(2024-05-01T12:00:00.5Z, 2024-05-01T14:00:00+02:00) or epoch "
				 "seconds (1714564800.5)", show(n), s);
	if (scan_fraction(s, n, &i, &frac) < 0 || !rfc3339_offset(s + i, n - i, &offset))
		return qfail(err, errlen, "bad time '%.*s': expected .fraction (at most 9 digits), "
				 "then Z or +hh:mm or -hh:mm", show(n), s);
	secs -= offset;
	if (secs < 0 || !seconds_fit((uint64_t)secs, frac))
		return qfail(err, errlen, "bad time '%.*s': outside 1970 to 2554", show(n), s);
	*ns = (uint64_t)secs * NS_PER_S + frac;
	return 0;
}

static int epoch(const char *s, size_t n, uint64_t *ns, char *err, size_t errlen)
{
	uint64_t secs, frac = 0;
	size_t i = 0;
	int rc = scan_digits(s, n, &i, &secs);
	bool overflow = rc < 0;

	if (rc != 0)
		rc = scan_fraction(s, n, &i, &frac);
	if (rc == -ERANGE || (rc == 0 && i == n && (overflow || !seconds_fit(secs, frac))))
		return qfail(err, errlen, "bad time '%.*s': too large (after 2554), or more than 9 "
				 "decimals", show(n), s);
	if (rc < 0 || i != n || i == 0)
		return qfail(err, errlen, "bad time '%.*s': expected epoch seconds (1714564800.5) "
				 "or RFC 3339 (2024-05-01T12:00:00Z)", show(n), s);
	*ns = secs * NS_PER_S + frac;
	return 0;
}

int query_time(const char *s, size_t n, uint64_t *ns, char *err, size_t errlen)
{
	if (n > 4 && s[4] == '-')
		return rfc3339(s, n, ns, err, errlen);
	return epoch(s, n, ns, err, errlen);
}

/* ------------------------------------------------------------------ */
/* Requests                                                             */

static const struct {
	const char *name;
	unsigned bit;
} query_keys[] = {
	{ "filter", QUERY_FILTER },
	{ "after", QUERY_AFTER },
	{ "before", QUERY_BEFORE },
	{ "last", QUERY_LAST },
	{ "limit_packets", QUERY_LIMIT_PACKETS },
	{ "limit_bytes", QUERY_LIMIT_BYTES },
	{ "format", QUERY_FORMAT },
};

#define KEYS_HINT "filter, after, before, last, limit_packets, limit_bytes, format"

static unsigned key_bit(const char *s, size_t n)
{
	for (size_t k = 0; k < sizeof(query_keys) / sizeof(query_keys[0]); k++)
		if (strlen(query_keys[k].name) == n && memcmp(query_keys[k].name, s, n) == 0)
			return query_keys[k].bit;
	return 0;
}

static int parse_format(const char *s, size_t n, int *format, char *err, size_t errlen)
{
	if (n == 4 && memcmp(s, "pcap", 4) == 0)
		*format = QUERY_PCAP;
	else if (n == 6 && memcmp(s, "pcapng", 6) == 0)
		*format = QUERY_PCAPNG;
	else
		return qfail(err, errlen, "'%.*s' is not a format (pcap or pcapng)", show(n), s);
	return 0;
}

static int parse_filter(const char *s, size_t n, struct query *q, char *err, size_t errlen)
{
	if (n > QUERY_FILTER_MAX)
		return qfail(err, errlen, "longer than %d bytes", QUERY_FILTER_MAX);
	memcpy(q->filter, s, n);
	q->filter[n] = '\0';
	return 0;
}

static int parse_value(unsigned bit, const char *s, size_t n, struct query *q, char *err,
		       size_t errlen)
{
	switch (bit) {
	case QUERY_FILTER:
		return parse_filter(s, n, q, err, errlen);
	case QUERY_AFTER:
		return query_time(s, n, &q->after_ns, err, errlen);
	case QUERY_BEFORE:
		return query_time(s, n, &q->before_ns, err, errlen);
	case QUERY_LAST:
		return query_duration(s, n, &q->last_ns, err, errlen);
	case QUERY_LIMIT_PACKETS:
		return query_count(s, n, &q->limit_packets, err, errlen);
	case QUERY_LIMIT_BYTES:
		return query_count(s, n, &q->limit_bytes, err, errlen);
	default:
		return parse_format(s, n, &q->format, err, errlen);
	}
}

/* Printable ASCII; a tab only inside a value. */
static int check_bytes(const char *s, size_t n, unsigned line, char *err, size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < 0x20 && c != '\t') || c >= 0x7f)
			return qfail(err, errlen, "line %u: byte 0x%02x is not allowed (printable "
					 "ASCII only)", line, c);
	}
	return 0;
}

static int parse_line(const char *s, size_t n, unsigned line, struct query *q, char *err,
		      size_t errlen)
{
	const char *eq = memchr(s, '=', n);
	size_t klen = eq ? (size_t)(eq - s) : 0;
	unsigned bit = eq ? key_bit(s, klen) : 0;
	char why[256];

	if (n == 0)
		return qfail(err, errlen, "line %u: empty line", line);
	if (check_bytes(s, n, line, err, errlen) < 0)
		return -EINVAL;
	if (!eq)
		return qfail(err, errlen, "line %u: expected key=value", line);
	if (!bit)
		return qfail(err, errlen, "line %u: unknown key '%.*s' (keys: " KEYS_HINT ")", line,
			     show(klen), s);
	if (q->set & bit)
		return qfail(err, errlen, "line %u: %.*s given twice", line, (int)klen, s);
	if (klen + 1 == n)
		return qfail(err, errlen, "line %u: %.*s: empty value", line, (int)klen, s);
	if (parse_value(bit, eq + 1, n - klen - 1, q, why, sizeof(why)) < 0)
		return qfail(err, errlen, "line %u: %.*s: %s", line, (int)klen, s, why);
	q->set |= bit;
	return 0;
}

static void query_reset(struct query *q)
{
	q->set = 0;
	q->filter[0] = '\0';
	q->after_ns = q->before_ns = q->last_ns = 0;
	q->limit_packets = q->limit_bytes = 0;
	q->format = QUERY_PCAP;
}

/* The first line, after the prefix: the version. */
static int parse_version(const char *s, size_t n, char *err, size_t errlen)
{
	if (n == strlen(QUERY_VERSION) && memcmp(s, QUERY_VERSION, n) == 0)
		return 0;
	if (check_bytes(s, n, 1, err, errlen) < 0)
		return -EINVAL;
	return qfail(err, errlen, "line 1: unsupported query version '%.*s' (this ring speaks "
			 QUERY_VERSION ")", show(n), s);
}

int query_parse(const void *req, size_t len, struct query *q, char *err, size_t errlen)
{
	const char *s = req, *end = s + len, *nl;
	size_t plen = strlen(QUERY_PREFIX);
	unsigned line = 1;

	if (err && errlen)
		err[0] = '\0';
	if (len < plen || memcmp(s, QUERY_PREFIX, plen) != 0)
		return 0;
	query_reset(q);
	s += plen;
	nl = memchr(s, '\n', (size_t)(end - s));
	if (parse_version(s, nl ? (size_t)(nl - s) : (size_t)(end - s), err, errlen) < 0)
		return -EINVAL;
	for (s = nl ? nl + 1 : end; s < end; s = nl ? nl + 1 : end) {
		nl = memchr(s, '\n', (size_t)(end - s));
		if (parse_line(s, nl ? (size_t)(nl - s) : (size_t)(end - s), ++line, q, err,
			       errlen) < 0)
			return -EINVAL;
	}
	if ((q->set & QUERY_AFTER) && (q->set & QUERY_BEFORE) && q->after_ns >= q->before_ns)
		return qfail(err, errlen, "after must be earlier than before");
	return 1;
}

/* ------------------------------------------------------------------ */
/* Writing                                                              */

struct writer {
	char *buf;
	size_t size, len;
	bool full;
};

static void put(struct writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct writer *w, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (w->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(w->buf + w->len, w->size - w->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= w->size - w->len)
		w->full = true;
	else
		w->len += (size_t)n;
}

static void put_time(struct writer *w, const char *key, uint64_t ns)
{
	put(w, "%s=%" PRIu64 ".%09" PRIu64 "\n", key, ns / NS_PER_S, ns % NS_PER_S);
}

size_t query_write(const struct query *q, char *buf, size_t size)
{
	struct writer w = { .buf = buf, .size = size };

	if (!size)
		return 0;
	put(&w, "%s%s\n", QUERY_PREFIX, QUERY_VERSION);
	if (q->set & QUERY_FILTER)
		put(&w, "filter=%s\n", q->filter);
	if (q->set & QUERY_AFTER)
		put_time(&w, "after", q->after_ns);
	if (q->set & QUERY_BEFORE)
		put_time(&w, "before", q->before_ns);
	if (q->set & QUERY_LAST)
		put(&w, "last=%" PRIu64 "ns\n", q->last_ns);
	if (q->set & QUERY_LIMIT_PACKETS)
		put(&w, "limit_packets=%" PRIu64 "\n", q->limit_packets);
	if (q->set & QUERY_LIMIT_BYTES)
		put(&w, "limit_bytes=%" PRIu64 "\n", q->limit_bytes);
	if (q->set & QUERY_FORMAT)
		put(&w, "format=%s\n", q->format == QUERY_PCAPNG ? "pcapng" : "pcap");
	return w.full ? 0 : w.len;
}
