/* A minimal unit-test harness: CHECK macros count results; check_finish() prints
 * "N passed, N failed" and returns the exit status. No test can pass without running a check. */
#pragma once

#include <stdio.h>
#include <string.h>

static int check_passed, check_failed;

#define CHECK(cond)                                                                   \
	do {                                                                          \
		if (cond) {                                                           \
			check_passed++;                                               \
		} else {                                                              \
			check_failed++;                                               \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
			        #cond);                                               \
		}                                                                     \
	} while (0)

#define CHECK_INT_EQ(a, b)                                                            \
	do {                                                                          \
		long long _a = (long long)(a), _b = (long long)(b);                   \
		if (_a == _b) {                                                       \
			check_passed++;                                               \
		} else {                                                              \
			check_failed++;                                               \
			fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n", \
			        __FILE__, __LINE__, #a, #b, _a, _b);                  \
		}                                                                     \
	} while (0)

#define CHECK_STR_EQ(a, b)                                                            \
	do {                                                                          \
		const char *_a = (a), *_b = (b);                                      \
		if (_a && _b && strcmp(_a, _b) == 0) {                                \
			check_passed++;                                               \
		} else {                                                              \
			check_failed++;                                               \
			fprintf(stderr, "%s:%d: CHECK failed: %s == %s (\"%s\" != \"%s\")\n", \
			        __FILE__, __LINE__, #a, #b, _a ? _a : "(null)",       \
			        _b ? _b : "(null)");                                  \
		}                                                                     \
	} while (0)

static inline int check_finish(void)
{
	printf("%d passed, %d failed\n", check_passed, check_failed);
	if (check_passed == 0)
		return 1; /* a test that checked nothing is a defect */
	return check_failed ? 1 : 0;
}
