/* Option tables: every type, unit, bound and error message, re-parsing
 * without leaks (run under ASan), table checks and --describe output. */
#include <errno.h>
#include <stdlib.h>

#include "check.h"
#include "options.h"

struct point {
	int x, y;
};

struct cfg {
	char *name;
	char *path;
	char *endpoint;
	bool verbose;
	int64_t level;
	uint64_t snaplen;
	uint64_t rate;
	uint64_t timeout;
	int mode;
	struct pp_list groups;
	struct pp_list sizes;
	struct pp_list endpoints;
	struct pp_list modes;
	struct pp_list flags;
	struct point origin;
	char *comment;
	int64_t optional_int;
};

static const char *const modes[] = { "fast", "safe", "slow", NULL };

static int parse_point(const char *text, void *dst, char *err, size_t errlen)
{
	struct point *p = dst;
	char tail;

	if (sscanf(text, "%d:%d%c", &p->x, &p->y, &tail) != 2) {
		snprintf(err, errlen, "bad point '%s' (use x:y)", text);
		return -EINVAL;
	}
	return 0;
}

static int parse_silent(const char *text, void *dst, char *err, size_t errlen)
{
	(void)text;
	(void)dst;
	(void)err;
	(void)errlen;
	return -EINVAL;
}

#define OFF(f) offsetof(struct cfg, f)

static const struct pp_option table[] = {
	{ .name = "name", .type = PP_OPT_STRING, .default_value = "pp", .offset = OFF(name),
	  .help = "Name shown in logs." },
	{ .name = "path", .type = PP_OPT_PATH, .offset = OFF(path), .help = "Output file." },
	{ .name = "endpoint", .type = PP_OPT_ENDPOINT, .default_value = "tcp://*:5555",
	  .offset = OFF(endpoint), .help = "Where to bind." },
	{ .name = "verbose", .type = PP_OPT_BOOL, .default_value = "no", .offset = OFF(verbose),
	  .help = "Log more." },
	{ .name = "level", .type = PP_OPT_INT, .default_value = "6", .min = 0, .max = 255,
	  .offset = OFF(level), .help = "Compression level." },
	{ .name = "snaplen", .type = PP_OPT_SIZE, .default_value = "256KiB", .min = 4096,
	  .max = 131072 * 2, .offset = OFF(snaplen), .help = "Bytes kept per packet." },
	{ .name = "rate", .type = PP_OPT_RATE, .default_value = "0", .offset = OFF(rate),
	  .help = "Output limit, 0 for none." },
	{ .name = "timeout", .type = PP_OPT_DURATION, .default_value = "200ms",
	  .min = 1000000, .max = 60000000000, .offset = OFF(timeout), .help = "Flush interval." },
	{ .name = "mode", .type = PP_OPT_ENUM, .default_value = "safe", .choices = modes,
	  .offset = OFF(mode), .help = "How hard to try." },
	{ .name = "groups", .type = PP_OPT_LIST, .item_type = PP_OPT_INT, .min = 0,
	  .max = 65535, .max_items = 4, .offset = OFF(groups),
	  .help = "NFLOG groups to read, 0..65535." },
	{ .name = "sizes", .type = PP_OPT_LIST, .item_type = PP_OPT_SIZE, .default_value = "",
	  .offset = OFF(sizes), .help = "Buffer sizes." },
	{ .name = "endpoints", .type = PP_OPT_LIST, .item_type = PP_OPT_ENDPOINT,
	  .default_value = "", .offset = OFF(endpoints), .help = "Peers." },
	{ .name = "modes", .type = PP_OPT_LIST, .item_type = PP_OPT_ENUM, .choices = modes,
	  .default_value = "fast, slow", .offset = OFF(modes), .help = "Modes | tried." },
	{ .name = "flags", .type = PP_OPT_LIST, .item_type = PP_OPT_BOOL, .default_value = "",
	  .offset = OFF(flags) },
	{ .name = "origin", .type = PP_OPT_CUSTOM, .default_value = "0:0", .parse = parse_point,
	  .value_hint = "x:y", .offset = OFF(origin), .help = "Where to start." },
	{ .name = "comment", .type = PP_OPT_STRING, .default_value = "", .offset = OFF(comment) },
	{ .name = "optional_int", .type = PP_OPT_INT, .default_value = "",
	  .offset = OFF(optional_int) },
	PP_OPTION_END,
};

static const struct pp_option *opt(const char *name)
{
	const struct pp_option *o = pp_option_find(table, name);

	if (!o) {
		fprintf(stderr, "no option %s\n", name);
		abort();
	}
	return o;
}

/* Parses into c and returns the result; err keeps the reason. */
static char err[256];

static int set(struct cfg *c, const char *key, const char *text)
{
	err[0] = '\0';
	return pp_option_parse(opt(key), text, c, err, sizeof(err));
}

static void apply_defaults(struct cfg *c)
{
	for (const struct pp_option *o = table; o->name; o++) {
		if (o->default_value)
			CHECK_EQ_INT(pp_option_parse(o, o->default_value, c, err, sizeof(err)), 0);
	}
}

static uint64_t size_of(const char *text)
{
	uint64_t v = 12345;

	CHECK_EQ_INT(pp_parse_size(text, &v), 0);
	return v;
}

static uint64_t rate_of(const char *text)
{
	uint64_t v = 12345;

	CHECK_EQ_INT(pp_parse_rate(text, &v), 0);
	return v;
}

static uint64_t duration_of(const char *text)
{
	uint64_t v = 12345;

	CHECK_EQ_INT(pp_parse_duration(text, &v), 0);
	return v;
}

TEST(int_values)
{
	int64_t v = 7;

	CHECK_EQ_INT(pp_parse_int("42", &v), 0);
	CHECK_EQ_INT(v, 42);
	CHECK_EQ_INT(pp_parse_int("  -17\t", &v), 0);
	CHECK_EQ_INT(v, -17);
	CHECK_EQ_INT(pp_parse_int("+5", &v), 0);
	CHECK_EQ_INT(v, 5);
	CHECK_EQ_INT(pp_parse_int("0x1F", &v), 0);
	CHECK_EQ_INT(v, 31);
	CHECK_EQ_INT(pp_parse_int("-0x10", &v), 0);
	CHECK_EQ_INT(v, -16);
	CHECK_EQ_INT(pp_parse_int("007", &v), 0);
	CHECK_EQ_INT(v, 7);
	CHECK_EQ_INT(pp_parse_int("9223372036854775807", &v), 0);
	CHECK(v == INT64_MAX);
	CHECK_EQ_INT(pp_parse_int("-9223372036854775808", &v), 0);
	CHECK(v == INT64_MIN);
	CHECK_EQ_INT(pp_parse_int("0x7fffffffffffffff", &v), 0);
	CHECK(v == INT64_MAX);
	v = 99;
	CHECK_EQ_INT(pp_parse_int("9223372036854775808", &v), -EINVAL);
	CHECK_EQ_INT(pp_parse_int("-9223372036854775809", &v), -EINVAL);
	CHECK_EQ_INT(pp_parse_int("0x8000000000000000", &v), -EINVAL);
	CHECK_EQ_INT(pp_parse_int("", &v), -EINVAL);
	CHECK_EQ_INT(pp_parse_int("-", &v), -EINVAL);
	CHECK_EQ_INT(pp_parse_int("0x", &v), -EINVAL);
	CHECK_EQ_INT(pp_parse_int("12a", &v), -EINVAL);
	CHECK_EQ_INT(pp_parse_int("1 2", &v), -EINVAL);
	CHECK_EQ_INT(pp_parse_int("1.5", &v), -EINVAL);
	CHECK_EQ_INT(pp_parse_int(NULL, &v), -EINVAL);
	CHECK_EQ_INT(v, 99);
}

TEST(bool_values)
{
	static const char *const yes[] = { "yes", "YES", "true", "True", "on", "1", " on " };
	static const char *const no[] = { "no", "No", "false", "FALSE", "off", "0" };
	bool b;

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		b = false;
		CHECK_EQ_INT(pp_parse_bool(yes[i], &b), 0);
		CHECK(b);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		b = true;
		CHECK_EQ_INT(pp_parse_bool(no[i], &b), 0);
		CHECK(!b);
	}
	CHECK_EQ_INT(pp_parse_bool("maybe", &b), -EINVAL);
	CHECK_EQ_INT(pp_parse_bool("", &b), -EINVAL);
	CHECK_EQ_INT(pp_parse_bool("yess", &b), -EINVAL);
	CHECK_EQ_INT(pp_parse_bool("2", &b), -EINVAL);
}

TEST(size_units)
{
	CHECK_EQ_INT(size_of("4096"), 4096);
	CHECK_EQ_INT(size_of("0"), 0);
	CHECK_EQ_INT(size_of("100B"), 100);
	CHECK_EQ_INT(size_of("64KiB"), 65536);
	CHECK_EQ_INT(size_of("4MiB"), 4194304);
	CHECK_EQ_INT(size_of("4mib"), 4194304);
	CHECK_EQ_INT(size_of("4 MiB"), 4194304);
	CHECK_EQ_INT(size_of("  4MiB  "), 4194304);
	CHECK_EQ_INT(size_of("2GiB"), 2147483648LL);
	CHECK_EQ_INT(size_of("1TiB"), 1099511627776LL);
	CHECK_EQ_INT(size_of("1KB"), 1000);
	CHECK_EQ_INT(size_of("1kb"), 1000);
	CHECK_EQ_INT(size_of("1MB"), 1000000);
	CHECK_EQ_INT(size_of("3GB"), 3000000000LL);
	CHECK_EQ_INT(size_of("2TB"), 2000000000000LL);
}

TEST(size_errors)
{
	uint64_t v = 77;
	struct cfg c = { 0 };

	CHECK_EQ_INT(pp_parse_size("4k", &v), -EINVAL);
	CHECK_EQ_INT(pp_parse_size("4K", &v), -EINVAL);
	CHECK_EQ_INT(pp_parse_size("-1MiB", &v), -EINVAL);
	CHECK_EQ_INT(pp_parse_size("MiB", &v), -EINVAL);
	CHECK_EQ_INT(pp_parse_size("", &v), -EINVAL);
	CHECK_EQ_INT(pp_parse_size(".5MiB", &v), -EINVAL);
	CHECK_EQ_INT(pp_parse_size("1.MiB", &v), -EINVAL);
	CHECK_EQ_INT(pp_parse_size("1MiB/s", &v), -EINVAL);
	CHECK_EQ_INT(pp_parse_size("0x10", &v), -EINVAL);
	CHECK_EQ_INT(v, 77);

	CHECK_EQ_INT(set(&c, "snaplen", "12XB"), -EINVAL);
	CHECK_EQ_STR(err, "bad size '12XB': unknown unit 'XB' (use B, KiB, MiB, GiB, TiB, KB, MB, "
			  "GB, TB)");
	CHECK_EQ_INT(set(&c, "snaplen", "-4KiB"), -EINVAL);
	CHECK_CONTAINS(err, "bad size '-4KiB'");
	CHECK_CONTAINS(err, "negative");
	CHECK_EQ_INT(set(&c, "snaplen", "lots"), -EINVAL);
	CHECK_CONTAINS(err, "expected a number");
	CHECK(!strchr(err, '\n'));
}

TEST(fractions)
{
	CHECK_EQ_INT(size_of("1.5GiB"), 1610612736LL);
	CHECK_EQ_INT(size_of("0.5MiB"), 524288);
	CHECK_EQ_INT(size_of("0.1KB"), 100);
	CHECK_EQ_INT(size_of("0.001KiB"), 1); /* 1.024 rounded down */
	CHECK_EQ_INT(size_of("1.5"), 1);
	CHECK_EQ_INT(size_of("2.75KiB"), 2816);
	/* Exact however many digits: floating point would round these. */
	CHECK_EQ_INT(size_of("0.99999999999999999999999999KiB"), 1023);
	CHECK_EQ_INT(size_of("1.00000000000000000000000001KiB"), 1024);
	CHECK_EQ_INT(duration_of("0.3s"), 300000000);
	CHECK_EQ_INT(duration_of("0.7"), 700000000);
	CHECK_EQ_INT(duration_of("1.5ns"), 1);
	CHECK_EQ_INT(duration_of("0.1ms"), 100000);
	CHECK_EQ_INT(rate_of("1.5Mbit/s"), 187500);
	CHECK_EQ_INT(rate_of("0.5KiB/s"), 512);
}

TEST(overflow)
{
	uint64_t v = 5;
	struct cfg c = { 0 };

	CHECK(size_of("18446744073709551615") == UINT64_MAX);
	CHECK(size_of("18446744073709551615.999") == UINT64_MAX);
	CHECK_EQ_INT(pp_parse_size("18446744073709551616", &v), -EINVAL);
	CHECK_EQ_INT(pp_parse_size("99999999999999999999999MiB", &v), -EINVAL);
	CHECK(size_of("17179869183GiB") == UINT64_C(17179869183) << 30);
	CHECK_EQ_INT(pp_parse_size("17179869184GiB", &v), -EINVAL);
	CHECK_EQ_INT(pp_parse_size("16777216TiB", &v), -EINVAL);
	CHECK(size_of("16777215.99TiB") > UINT64_C(16777215) << 40);
	CHECK(duration_of("5124095h") == UINT64_C(5124095) * 3600 * 1000000000);
	CHECK_EQ_INT(pp_parse_duration("5124096h", &v), -EINVAL);
	CHECK_EQ_INT(pp_parse_rate("30000000000Gbit/s", &v), -EINVAL);
	CHECK_EQ_INT(v, 5);
	CHECK_EQ_INT(set(&c, "rate", "99999999999TB/s"), -EINVAL);
	CHECK_EQ_STR(err, "bad rate '99999999999TB/s': too large");
	CHECK_EQ_INT(set(&c, "level", "99999999999999999999"), -EINVAL);
	CHECK_CONTAINS(err, "too large");
}

TEST(rate_units)
{
	CHECK_EQ_INT(rate_of("0"), 0);
	CHECK_EQ_INT(rate_of("100"), 100);
	CHECK_EQ_INT(rate_of("100/s"), 100);
	CHECK_EQ_INT(rate_of("100B/s"), 100);
	CHECK_EQ_INT(rate_of("5MiB/s"), 5242880);
	CHECK_EQ_INT(rate_of("5 MiB/s"), 5242880);
	CHECK_EQ_INT(rate_of("800KiB/s"), 819200);
	CHECK_EQ_INT(rate_of("800KiB/sec"), 819200);
	CHECK_EQ_INT(rate_of("1MB/s"), 1000000);
	CHECK_EQ_INT(rate_of("1GiB/s"), 1073741824);
	CHECK_EQ_INT(rate_of("100Mbit/s"), 12500000);
	CHECK_EQ_INT(rate_of("1Gbit/s"), 125000000);
	CHECK_EQ_INT(rate_of("8Kbit/s"), 1000);
	CHECK_EQ_INT(rate_of("16bit/s"), 2);
	CHECK_EQ_INT(rate_of("12bit/s"), 1); /* whole bytes, rounded down */
}

TEST(rate_errors)
{
	uint64_t v = 3;
	struct cfg c = { 0 };

	CHECK_EQ_INT(pp_parse_rate("5MiB", &v), -EINVAL);
	CHECK_EQ_INT(pp_parse_rate("5MiB/h", &v), -EINVAL);
	CHECK_EQ_INT(pp_parse_rate("-5MiB/s", &v), -EINVAL);
	CHECK_EQ_INT(pp_parse_rate("fast", &v), -EINVAL);
	CHECK_EQ_INT(pp_parse_rate("5Tbit/s", &v), -EINVAL);
	CHECK_EQ_INT(v, 3);
	CHECK_EQ_INT(set(&c, "rate", "1MB/h"), -EINVAL);
	CHECK_CONTAINS(err, "bad rate '1MB/h': unknown unit 'MB/h' (use B/s, KiB/s, MiB/s");
	CHECK_CONTAINS(err, "Mbit/s, Gbit/s)");
}

TEST(duration_units)
{
	uint64_t v = 9;

	CHECK_EQ_INT(duration_of("200ms"), 200000000);
	CHECK_EQ_INT(duration_of("2s"), 2000000000);
	CHECK_EQ_INT(duration_of("1.5"), 1500000000);
	CHECK_EQ_INT(duration_of("1.5s"), 1500000000);
	CHECK_EQ_INT(duration_of("100us"), 100000);
	CHECK_EQ_INT(duration_of("250ns"), 250);
	CHECK_EQ_INT(duration_of("5min"), 300000000000LL);
	CHECK_EQ_INT(duration_of("5m"), 300000000000LL);
	CHECK_EQ_INT(duration_of("2h"), 7200000000000LL);
	CHECK_EQ_INT(duration_of("0"), 0);
	CHECK_EQ_INT(duration_of(" 10 ms "), 10000000);
	CHECK_EQ_INT(pp_parse_duration("2d", &v), -EINVAL);
	CHECK_EQ_INT(pp_parse_duration("-1s", &v), -EINVAL);
	CHECK_EQ_INT(pp_parse_duration("s", &v), -EINVAL);
	CHECK_EQ_INT(v, 9);
}

TEST(strings_and_paths)
{
	struct cfg c = { 0 };

	CHECK_EQ_INT(set(&c, "name", "  edge-1 "), 0);
	CHECK_EQ_STR(c.name, "edge-1");
	CHECK_EQ_INT(set(&c, "name", "with spaces inside"), 0);
	CHECK_EQ_STR(c.name, "with spaces inside");
	CHECK_EQ_INT(set(&c, "name", ""), -EINVAL);
	CHECK_CONTAINS(err, "empty value");
	CHECK_EQ_STR(c.name, "with spaces inside"); /* a failure keeps the old value */
	CHECK_EQ_INT(set(&c, "path", "/var/log/pp.pcap"), 0);
	CHECK_EQ_STR(c.path, "/var/log/pp.pcap");
	CHECK_EQ_INT(set(&c, "path", "   "), -EINVAL);
	CHECK_EQ_INT(set(&c, "comment", "hello"), 0);
	CHECK_EQ_STR(c.comment, "hello");
	CHECK_EQ_INT(set(&c, "comment", ""), 0); /* default "": no value */
	CHECK(c.comment == NULL);
	pp_options_free(table, &c);
	CHECK(c.name == NULL && c.path == NULL);
}

TEST(endpoints)
{
	static const char *const good[] = { "tcp://*:5555", "ipc:///run/pp.sock", "inproc://x",
					    "pgm://eth0;239.1.1.1:5555", "epgm://e;239.0.0.1:1",
					    "udp://10.0.0.1:9" };
	struct cfg c = { 0 };

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		CHECK_EQ_INT(set(&c, "endpoint", good[i]), 0);
		CHECK_EQ_STR(c.endpoint, good[i]);
	}
	CHECK_EQ_INT(set(&c, "endpoint", "http://x"), -EINVAL);
	CHECK_EQ_STR(err, "bad endpoint 'http://x': unknown transport 'http' (use tcp, ipc, inproc, "
			  "pgm, epgm, udp)");
	CHECK_EQ_INT(set(&c, "endpoint", "localhost:5555"), -EINVAL);
	CHECK_CONTAINS(err, "expected transport://address");
	CHECK_CONTAINS(err, "tcp, ipc, inproc, pgm, epgm, udp");
	CHECK_EQ_INT(set(&c, "endpoint", "tcp://"), -EINVAL);
	CHECK_CONTAINS(err, "empty address");
	CHECK_EQ_INT(set(&c, "endpoint", "TCP://x"), -EINVAL);
	CHECK_EQ_STR(c.endpoint, "udp://10.0.0.1:9");
	pp_options_free(table, &c);
}

TEST(typed_fields)
{
	struct cfg c = { 0 };

	CHECK_EQ_INT(set(&c, "verbose", "on"), 0);
	CHECK(c.verbose);
	CHECK_EQ_INT(set(&c, "verbose", "maybe"), -EINVAL);
	CHECK_EQ_STR(err, "bad boolean 'maybe' (use yes/no, true/false, on/off, 1/0)");
	CHECK_EQ_INT(set(&c, "level", "0x10"), 0);
	CHECK_EQ_INT(c.level, 16);
	CHECK_EQ_INT(set(&c, "snaplen", "64KiB"), 0);
	CHECK_EQ_INT(c.snaplen, 65536);
	CHECK_EQ_INT(set(&c, "rate", "5MiB/s"), 0);
	CHECK_EQ_INT(c.rate, 5242880);
	CHECK_EQ_INT(set(&c, "timeout", "1.5s"), 0);
	CHECK_EQ_INT(c.timeout, 1500000000);
	CHECK_EQ_INT(set(&c, "mode", "slow"), 0);
	CHECK_EQ_INT(c.mode, 2);
	CHECK_EQ_INT(set(&c, "origin", " 3:4 "), 0);
	CHECK_EQ_INT(c.origin.x, 3);
	CHECK_EQ_INT(c.origin.y, 4);
}

TEST(bounds)
{
	struct cfg c = { 0 };

	CHECK_EQ_INT(set(&c, "level", "255"), 0);
	CHECK_EQ_INT(set(&c, "level", "300"), -EINVAL);
	CHECK_EQ_STR(err, "'300' out of range 0..255");
	CHECK_EQ_INT(set(&c, "level", "-1"), -EINVAL);
	CHECK_EQ_INT(c.level, 255);
	CHECK_EQ_INT(set(&c, "snaplen", "4KiB"), 0);
	CHECK_EQ_INT(set(&c, "snaplen", "256KiB"), 0);
	CHECK_EQ_INT(set(&c, "snaplen", "1MiB"), -EINVAL);
	CHECK_EQ_STR(err, "'1MiB' out of range: must be between 4KiB and 256KiB");
	CHECK_EQ_INT(set(&c, "snaplen", "4095"), -EINVAL);
	CHECK_CONTAINS(err, "between 4KiB and 256KiB");
	CHECK_EQ_INT(c.snaplen, 262144);
	CHECK_EQ_INT(set(&c, "timeout", "500us"), -EINVAL);
	CHECK_CONTAINS(err, "must be between 1ms and 1min");
	CHECK_EQ_INT(set(&c, "timeout", "1min"), 0);
	CHECK_EQ_INT(set(&c, "rate", "0"), 0); /* unbounded */
	CHECK_EQ_INT(c.rate, 0);
}

TEST(enums)
{
	struct cfg c = { 0 };

	CHECK_EQ_INT(set(&c, "mode", "fast"), 0);
	CHECK_EQ_INT(c.mode, 0);
	CHECK_EQ_INT(set(&c, "mode", " safe "), 0);
	CHECK_EQ_INT(c.mode, 1);
	CHECK_EQ_INT(set(&c, "mode", "FAST"), -EINVAL);
	CHECK_EQ_STR(err, "bad value 'FAST' (use one of fast, safe, slow)");
	CHECK_EQ_INT(c.mode, 1);
	CHECK_EQ_INT(set(&c, "mode", ""), -EINVAL);
}

TEST(lists)
{
	struct cfg c = { 0 };

	CHECK_EQ_INT(set(&c, "groups", " 1, 2 ,0x10,65535 "), 0);
	CHECK_EQ_INT(c.groups.count, 4);
	CHECK_EQ_STR(c.groups.str[0], "1");
	CHECK_EQ_STR(c.groups.str[1], "2");
	CHECK_EQ_STR(c.groups.str[2], "0x10");
	CHECK_EQ_INT(c.groups.num[2], 16);
	CHECK_EQ_INT(c.groups.num[3], 65535);
	CHECK_EQ_INT(set(&c, "groups", "7"), 0);
	CHECK_EQ_INT(c.groups.count, 1);
	CHECK_EQ_INT(c.groups.num[0], 7);
	CHECK_EQ_INT(set(&c, "groups", ""), 0);
	CHECK_EQ_INT(c.groups.count, 0);
	CHECK(c.groups.str == NULL && c.groups.num == NULL);

	CHECK_EQ_INT(set(&c, "sizes", "4KiB, 1.5MiB,100"), 0);
	CHECK_EQ_INT(c.sizes.count, 3);
	CHECK_EQ_INT(c.sizes.num[0], 4096);
	CHECK_EQ_INT(c.sizes.num[1], 1572864);
	CHECK_EQ_STR(c.sizes.str[1], "1.5MiB");
	CHECK_EQ_INT(set(&c, "endpoints", "tcp://a:1, ipc:///tmp/s"), 0);
	CHECK_EQ_INT(c.endpoints.count, 2);
	CHECK_EQ_STR(c.endpoints.str[1], "ipc:///tmp/s");
	CHECK(c.endpoints.num == NULL);
	CHECK_EQ_INT(set(&c, "modes", "slow,fast"), 0);
	CHECK_EQ_INT(c.modes.num[0], 2);
	CHECK_EQ_INT(c.modes.num[1], 0);
	CHECK_EQ_INT(set(&c, "flags", "yes, off, 1"), 0);
	CHECK_EQ_INT(c.flags.num[0], 1);
	CHECK_EQ_INT(c.flags.num[1], 0);
	CHECK_EQ_INT(c.flags.num[2], 1);
	pp_options_free(table, &c);
	CHECK(c.sizes.count == 0 && c.sizes.str == NULL);
}

TEST(list_errors)
{
	struct cfg c = { 0 };

	CHECK_EQ_INT(set(&c, "groups", "1,2"), 0);
	CHECK_EQ_INT(set(&c, "groups", "1,,2"), -EINVAL);
	CHECK_EQ_STR(err, "bad list '1,,2': item 2 is empty");
	CHECK_EQ_INT(set(&c, "groups", "1,2,"), -EINVAL);
	CHECK_CONTAINS(err, "item 3 is empty");
	CHECK_EQ_INT(set(&c, "groups", "1,2,3,4,5"), -EINVAL);
	CHECK_CONTAINS(err, "5 items, at most 4");
	CHECK_EQ_INT(set(&c, "groups", "1, 70000"), -EINVAL);
	CHECK_EQ_STR(err, "item 2: '70000' out of range 0..65535");
	CHECK_EQ_INT(set(&c, "groups", "1, x"), -EINVAL);
	CHECK_CONTAINS(err, "item 2: bad integer 'x'");
	CHECK_EQ_INT(set(&c, "sizes", "1KiB, 9XB"), -EINVAL);
	CHECK_CONTAINS(err, "item 2: bad size '9XB': unknown unit 'XB'");
	CHECK_EQ_INT(set(&c, "sizes", "16EiB"), -EINVAL);
	CHECK_EQ_INT(set(&c, "sizes", "18446744073709551615"), -EINVAL);
	CHECK_CONTAINS(err, "too large for a list item");
	CHECK_EQ_INT(set(&c, "modes", "fast, turbo"), -EINVAL);
	CHECK_CONTAINS(err, "item 2: bad value 'turbo' (use one of fast, safe, slow)");
	CHECK_EQ_INT(set(&c, "endpoints", "tcp://a:1, b"), -EINVAL);
	CHECK_CONTAINS(err, "item 2: bad endpoint 'b'");
	/* Failures leave the previous list untouched. */
	CHECK_EQ_INT(c.groups.count, 2);
	CHECK_EQ_INT(c.groups.num[1], 2);
	pp_options_free(table, &c);
}

TEST(custom)
{
	static const struct pp_option silent[] = {
		{ .name = "p", .type = PP_OPT_CUSTOM, .parse = parse_silent, .offset = 0 },
		PP_OPTION_END,
	};
	struct cfg c = { 0 };
	struct point p;

	CHECK_EQ_INT(set(&c, "origin", "10:-2"), 0);
	CHECK_EQ_INT(c.origin.x, 10);
	CHECK_EQ_INT(c.origin.y, -2);
	CHECK_EQ_INT(set(&c, "origin", "10"), -EINVAL);
	CHECK_EQ_STR(err, "bad point '10' (use x:y)");
	err[0] = '\0';
	CHECK_EQ_INT(pp_option_parse(&silent[0], " zz ", &p, err, sizeof(err)), -EINVAL);
	CHECK_EQ_STR(err, "bad value 'zz'");
	CHECK_EQ_INT(pp_option_parse(&silent[0], "zz", &p, NULL, 0), -EINVAL);
	CHECK_EQ_INT(pp_option_parse(opt("origin"), "1", &c, NULL, 0), -EINVAL);
	CHECK_EQ_INT(pp_option_parse(opt("level"), "x", &c, NULL, 0), -EINVAL);
	CHECK_EQ_INT(pp_option_parse(opt("groups"), "1,,2", &c, NULL, 0), -EINVAL);
}

TEST(defaults_and_reparse)
{
	struct cfg c = { 0 };

	apply_defaults(&c);
	CHECK_EQ_STR(c.name, "pp");
	CHECK_EQ_STR(c.endpoint, "tcp://*:5555");
	CHECK(!c.verbose);
	CHECK_EQ_INT(c.level, 6);
	CHECK_EQ_INT(c.snaplen, 262144);
	CHECK_EQ_INT(c.rate, 0);
	CHECK_EQ_INT(c.timeout, 200000000);
	CHECK_EQ_INT(c.mode, 1);
	CHECK_EQ_INT(c.sizes.count, 0);
	CHECK_EQ_INT(c.modes.count, 2);
	CHECK(c.comment == NULL);
	CHECK_EQ_INT(c.optional_int, 0);
	/* The ini value replaces the default; ASan reports a leak if not freed. */
	CHECK_EQ_INT(set(&c, "name", "edge"), 0);
	CHECK_EQ_INT(set(&c, "endpoint", "ipc:///x"), 0);
	CHECK_EQ_INT(set(&c, "modes", "safe"), 0);
	CHECK_EQ_INT(set(&c, "sizes", "1,2,3"), 0);
	CHECK_EQ_INT(set(&c, "comment", "c"), 0);
	apply_defaults(&c);
	apply_defaults(&c);
	CHECK_EQ_STR(c.name, "pp");
	CHECK_EQ_INT(c.modes.count, 2);
	CHECK_EQ_INT(c.sizes.count, 0);
	CHECK(c.comment == NULL);
	/* "" on a numeric key: no value if the default is "", else an error. */
	CHECK_EQ_INT(set(&c, "optional_int", "5"), 0);
	CHECK_EQ_INT(set(&c, "optional_int", ""), 0);
	CHECK_EQ_INT(c.optional_int, 0);
	CHECK_EQ_INT(set(&c, "level", " "), -EINVAL);
	CHECK_CONTAINS(err, "empty value");
	CHECK_EQ_INT(set(&c, "level", NULL), -EINVAL);
	pp_options_free(table, &c);
	CHECK(c.name == NULL && c.endpoint == NULL && c.modes.str == NULL);
	pp_options_free(table, &c); /* twice is harmless */
}

TEST(find)
{
	CHECK(pp_option_find(table, "snaplen") == &table[5]);
	CHECK(pp_option_find(table, "nope") == NULL);
	CHECK(pp_option_find(table, "") == NULL);
	CHECK(pp_option_find(NULL, "x") == NULL);
}

TEST(check_table_ok)
{
	char e[256] = "";

	CHECK_EQ_INT(pp_options_check_table(table, e, sizeof(e)), 0);
	CHECK_EQ_STR(e, "");
	CHECK_EQ_INT(pp_options_check_table(NULL, e, sizeof(e)), 0);
}

static void expect_bad_table(const struct pp_option *t, const char *why)
{
	char e[256] = "";

	CHECK_EQ_INT(pp_options_check_table(t, e, sizeof(e)), -EINVAL);
	CHECK_CONTAINS(e, why);
}

TEST(check_table_names)
{
	const struct pp_option dup[] = {
		{ .name = "a", .type = PP_OPT_INT, .offset = 0 },
		{ .name = "b", .type = PP_OPT_INT, .offset = 8 },
		{ .name = "a", .type = PP_OPT_BOOL, .offset = 16 },
		PP_OPTION_END,
	};
	const struct pp_option upper[] = { { .name = "Snap", .type = PP_OPT_INT }, PP_OPTION_END };
	const struct pp_option dash[] = { { .name = "a-b", .type = PP_OPT_INT }, PP_OPTION_END };
	const struct pp_option empty[] = { { .name = "", .type = PP_OPT_INT }, PP_OPTION_END };

	expect_bad_table(dup, "option 'a': duplicate name");
	expect_bad_table(upper, "option 'Snap': name must match [a-z0-9_]+");
	expect_bad_table(dash, "option 'a-b'");
	expect_bad_table(empty, "option '':");
}

TEST(check_table_defaults)
{
	const struct pp_option bad_default[] = {
		{ .name = "ok", .type = PP_OPT_STRING, .default_value = "fine" },
		{ .name = "snap", .type = PP_OPT_SIZE, .default_value = "12XB", .offset = 8 },
		PP_OPTION_END,
	};
	const struct pp_option out_of_bounds[] = {
		{ .name = "lvl", .type = PP_OPT_INT, .default_value = "10", .min = 1, .max = 9 },
		PP_OPTION_END,
	};
	const struct pp_option bad_list_default[] = {
		{ .name = "g", .type = PP_OPT_LIST, .item_type = PP_OPT_INT, .max_items = 1,
		  .default_value = "1,2" },
		PP_OPTION_END,
	};
	const struct pp_option bad_custom_default[] = {
		{ .name = "p", .type = PP_OPT_CUSTOM, .parse = parse_point, .default_value = "x" },
		PP_OPTION_END,
	};

	expect_bad_table(bad_default, "option 'snap': bad default: bad size '12XB'");
	expect_bad_table(out_of_bounds, "option 'lvl': bad default: '10' out of range 1..9");
	expect_bad_table(bad_list_default, "option 'g': bad default: bad list '1,2'");
	expect_bad_table(bad_custom_default, "option 'p': bad default: bad point 'x'");
}

TEST(check_table_types)
{
	static const char *const none[] = { NULL };
	const struct pp_option no_choices[] = { { .name = "m", .type = PP_OPT_ENUM }, PP_OPTION_END };
	const struct pp_option empty_choices[] = {
		{ .name = "m", .type = PP_OPT_ENUM, .choices = none }, PP_OPTION_END,
	};
	const struct pp_option list_enum[] = {
		{ .name = "m", .type = PP_OPT_LIST, .item_type = PP_OPT_ENUM }, PP_OPTION_END,
	};
	const struct pp_option list_list[] = {
		{ .name = "l", .type = PP_OPT_LIST, .item_type = PP_OPT_LIST }, PP_OPTION_END,
	};
	const struct pp_option list_custom[] = {
		{ .name = "l", .type = PP_OPT_LIST, .item_type = PP_OPT_CUSTOM }, PP_OPTION_END,
	};
	const struct pp_option no_parse[] = { { .name = "c", .type = PP_OPT_CUSTOM }, PP_OPTION_END };
	const struct pp_option bad_type[] = {
		{ .name = "x", .type = (enum pp_opt_type)42 }, PP_OPTION_END,
	};

	expect_bad_table(no_choices, "option 'm': enum without choices");
	expect_bad_table(empty_choices, "option 'm': enum without choices");
	expect_bad_table(list_enum, "option 'm': enum without choices");
	expect_bad_table(list_list, "option 'l': list items must be of a scalar type");
	expect_bad_table(list_custom, "option 'l': list items must be of a scalar type");
	expect_bad_table(no_parse, "option 'c': custom type without a parse function");
	expect_bad_table(bad_type, "option 'x': unknown type 42");
}

TEST(check_table_bounds)
{
	const struct pp_option swapped[] = {
		{ .name = "s", .type = PP_OPT_SIZE, .min = 10, .max = 5 }, PP_OPTION_END,
	};
	const struct pp_option negative[] = {
		{ .name = "d", .type = PP_OPT_DURATION, .min = -1, .max = 5 }, PP_OPTION_END,
	};
	const struct pp_option negative_int[] = {
		{ .name = "i", .type = PP_OPT_INT, .min = -10, .max = -5, .default_value = "-7" },
		PP_OPTION_END,
	};
	char e[256] = "";

	expect_bad_table(swapped, "option 's': min 10 > max 5");
	expect_bad_table(negative, "option 'd': negative bound");
	CHECK_EQ_INT(pp_options_check_table(negative_int, e, sizeof(e)), 0);
}

TEST(type_names)
{
	static const struct pp_option custom_plain[] = {
		{ .name = "c", .type = PP_OPT_CUSTOM, .parse = parse_point }, PP_OPTION_END,
	};

	CHECK_EQ_STR(pp_option_type_name(opt("name")), "string");
	CHECK_EQ_STR(pp_option_type_name(opt("path")), "path");
	CHECK_EQ_STR(pp_option_type_name(opt("endpoint")), "endpoint");
	CHECK_EQ_STR(pp_option_type_name(opt("verbose")), "bool");
	CHECK_EQ_STR(pp_option_type_name(opt("level")), "int");
	CHECK_EQ_STR(pp_option_type_name(opt("snaplen")), "size");
	CHECK_EQ_STR(pp_option_type_name(opt("rate")), "rate");
	CHECK_EQ_STR(pp_option_type_name(opt("timeout")), "duration");
	CHECK_EQ_STR(pp_option_type_name(opt("mode")), "enum");
	CHECK_EQ_STR(pp_option_type_name(opt("groups")), "list of int");
	CHECK_EQ_STR(pp_option_type_name(opt("endpoints")), "list of endpoint");
	CHECK_EQ_STR(pp_option_type_name(opt("modes")), "list of enum");
	CHECK_EQ_STR(pp_option_type_name(opt("origin")), "x:y");
	CHECK_EQ_STR(pp_option_type_name(&custom_plain[0]), "value");
}

/* The output of fn for table, as a string the caller frees. */
static char *capture(void (*fn)(const struct pp_option *, FILE *), const struct pp_option *t)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		abort();
	fn(t, f);
	fclose(f);
	return buf;
}

TEST(describe)
{
	char *s = capture(pp_options_describe, table);

	CHECK_CONTAINS(s, "name (string, default: pp)\n    Name shown in logs.\n");
	CHECK_CONTAINS(s, "path (path, required)\n    Output file.\n");
	CHECK_CONTAINS(s, "groups (list of int, required)\n"
			  "    NFLOG groups to read, 0..65535.\n"
			  "    bounds: 0 .. 65535\n"
			  "    at most 4 items\n");
	CHECK_CONTAINS(s, "snaplen (size, default: 256KiB)\n");
	CHECK_CONTAINS(s, "    bounds: 4KiB .. 256KiB\n");
	CHECK_CONTAINS(s, "    bounds: 1ms .. 1min\n");
	CHECK_CONTAINS(s, "    choices: fast, safe, slow\n");
	CHECK_CONTAINS(s, "comment (string, default: none)\n");
	CHECK_CONTAINS(s, "origin (x:y, default: 0:0)\n");
	CHECK_CONTAINS(s, "level (int, default: 6)\n    Compression level.\n    bounds: 0 .. 255\n");
	CHECK_CONTAINS(s, "\n\nverbose (bool, default: no)\n");
	CHECK(strstr(s, "rate (rate, default: 0)\n    Output limit, 0 for none.\n\n") != NULL);
	CHECK(s[strlen(s) - 1] == '\n' && s[strlen(s) - 2] != '\n');
	free(s);
}

TEST(describe_markdown)
{
	char *s = capture(pp_options_describe_markdown, table);

	CHECK(strncmp(s, "| key | type | default | help |\n| --- | --- | --- | --- |\n", 56) == 0);
	CHECK_CONTAINS(s, "| `snaplen` | size | `256KiB` | Bytes kept per packet. Bounds: 4KiB .. "
			  "256KiB. |\n");
	CHECK_CONTAINS(s, "| `path` | path | required | Output file. |\n");
	CHECK_CONTAINS(s, "| `comment` | string | none |  |\n");
	CHECK_CONTAINS(s, "| `mode` | enum | `safe` | How hard to try. Choices: `fast`, `safe`, "
			  "`slow`. |\n");
	CHECK_CONTAINS(s, "| `modes` | list of enum | `fast, slow` | Modes \\| tried. Choices:");
	CHECK_CONTAINS(s, "| `groups` | list of int | required | NFLOG groups to read, 0..65535. "
			  "Bounds: 0 .. 65535. At most 4 items. |\n");
	free(s);
}

TEST(format)
{
	static const struct {
		uint64_t v;
		const char *size, *duration;
	} cases[] = {
		{ 0, "0B", "0s" },
		{ 1, "1B", "1ns" },
		{ 1000, "1000B", "1us" },
		{ 1024, "1KiB", "1024ns" },
		{ 1536, "1536B", "1536ns" },
		{ 262144, "256KiB", "262144ns" },
		{ 4194304, "4MiB", "4194304ns" },
		{ 200000000, "200000000B", "200ms" },
		{ 1500000000, "1500000000B", "1500ms" },
		{ 2000000000, "1953125KiB", "2s" },
		{ UINT64_C(1) << 30, "1GiB", "1073741824ns" },
		{ UINT64_C(3) << 40, "3TiB", "3298534883328ns" },
		{ UINT64_C(1) << 50, "1024TiB", "1125899906842624ns" },
		{ UINT64_C(300000000000), "292968750KiB", "5min" },
		{ UINT64_C(7200000000000), "7031250000KiB", "2h" },
		{ UINT64_MAX, "18446744073709551615B", "18446744073709551615ns" },
	};
	char buf[64];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		pp_format_size(cases[i].v, buf, sizeof(buf));
		CHECK_EQ_STR(buf, cases[i].size);
		CHECK(size_of(buf) == cases[i].v);
		pp_format_duration(cases[i].v, buf, sizeof(buf));
		CHECK_EQ_STR(buf, cases[i].duration);
		CHECK(duration_of(buf) == cases[i].v);
		pp_format_rate(cases[i].v, buf, sizeof(buf));
		CHECK(rate_of(buf) == cases[i].v);
	}
	pp_format_rate(5242880, buf, sizeof(buf));
	CHECK_EQ_STR(buf, "5MiB/s");
	pp_format_rate(0, buf, sizeof(buf));
	CHECK_EQ_STR(buf, "0B/s");
	pp_format_size(4194304, buf, 3);
	CHECK_EQ_STR(buf, "4M");
}

TEST(round_trip_rates)
{
	static const char *const texts[] = { "100Mbit/s", "1Gbit/s", "1MB/s", "800KiB/s" };
	char buf[64];
	uint64_t v;

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		v = rate_of(texts[i]);
		pp_format_rate(v, buf, sizeof(buf));
		CHECK(rate_of(buf) == v);
	}
	pp_format_rate(rate_of("800KiB/s"), buf, sizeof(buf));
	CHECK_EQ_STR(buf, "800KiB/s");
}

CHECK_MAIN("options", TEST_ENTRY(int_values), TEST_ENTRY(bool_values), TEST_ENTRY(size_units),
	   TEST_ENTRY(size_errors), TEST_ENTRY(fractions), TEST_ENTRY(overflow),
	   TEST_ENTRY(rate_units), TEST_ENTRY(rate_errors), TEST_ENTRY(duration_units),
	   TEST_ENTRY(strings_and_paths), TEST_ENTRY(endpoints), TEST_ENTRY(typed_fields),
	   TEST_ENTRY(bounds), TEST_ENTRY(enums), TEST_ENTRY(lists), TEST_ENTRY(list_errors),
	   TEST_ENTRY(custom), TEST_ENTRY(defaults_and_reparse), TEST_ENTRY(find),
	   TEST_ENTRY(check_table_ok), TEST_ENTRY(check_table_names),
	   TEST_ENTRY(check_table_defaults), TEST_ENTRY(check_table_types),
	   TEST_ENTRY(check_table_bounds), TEST_ENTRY(type_names),
	   TEST_ENTRY(describe), TEST_ENTRY(describe_markdown), TEST_ENTRY(format),
	   TEST_ENTRY(round_trip_rates))
