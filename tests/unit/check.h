/* A minimal test harness: CHECK() records a failure with file and line and
 * goes on; each TEST() is one test; check_main() runs the table and prints
 * the closing "N passed, N failed" line. Exit status 1 if any failed. */
#ifndef PKTPIPE_TEST_CHECK_H
#define PKTPIPE_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures_in_test;

#define CHECK(cond)                                                                     \
	do {                                                                            \
		if (!(cond)) {                                                          \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
			check_failures_in_test++;                                       \
		}                                                                       \
	} while (0)

#define CHECK_EQ_INT(a, b)                                                              \
	do {                                                                            \
		long long check_a_ = (long long)(a), check_b_ = (long long)(b);         \
		if (check_a_ != check_b_) {                                             \
			fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__, \
				__LINE__, #a, #b, check_a_, check_b_);                  \
			check_failures_in_test++;                                       \
		}                                                                       \
	} while (0)

#define CHECK_EQ_STR(a, b)                                                              \
	do {                                                                            \
		const char *check_a_ = (a), *check_b_ = (b);                            \
		if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0) {        \
			fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n",   \
				__FILE__, __LINE__, #a, #b, check_a_ ? check_a_ : "(null)", \
				check_b_ ? check_b_ : "(null)");                        \
			check_failures_in_test++;                                       \
		}                                                                       \
	} while (0)

/* Substring match, for error messages. */
#define CHECK_CONTAINS(hay, needle)                                                     \
	do {                                                                            \
		const char *check_h_ = (hay), *check_n_ = (needle);                     \
		if (!check_h_ || !strstr(check_h_, check_n_)) {                         \
			fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, \
				__LINE__, check_h_ ? check_h_ : "(null)", check_n_);    \
			check_failures_in_test++;                                       \
		}                                                                       \
	} while (0)

struct check_test {
	const char *name;
	void (*fn)(void);
};

#define TEST(name) static void name(void)
#define TEST_ENTRY(name) { #name, name }

static inline int check_main(const char *suite, const struct check_test *tests, size_t n)
{
	int passed = 0, failed = 0;
	for (size_t i = 0; i < n; i++) {
		check_failures_in_test = 0;
		tests[i].fn();
		if (check_failures_in_test) {
			failed++;
			fprintf(stderr, "not ok - %s\n", tests[i].name);
		} else {
			passed++;
		}
	}
	printf("%s: %d passed, %d failed\n", suite, passed, failed);
	return failed ? 1 : 0;
}

#define CHECK_MAIN(suite, ...)                                                          \
	int main(void)                                                                  \
	{                                                                               \
		static const struct check_test tests_[] = { __VA_ARGS__ };              \
		return check_main(suite, tests_, sizeof(tests_) / sizeof(tests_[0]));   \
	}

#endif
