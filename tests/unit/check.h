/*
 * A minimal harness for the unit tests: CHECK records a failure with its
 * line and goes on; check_done prints the count and gives the exit code.
 */
#ifndef CHECK_H
#define CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures, check_count;

#define CHECK(cond) do {						\
	check_count++;							\
	if (!(cond)) {							\
		check_failures++;					\
		fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__,	\
		    __LINE__, #cond);					\
	}								\
} while (0)

#define CHECK_STR(a, b) do {						\
	const char *check_a = (a), *check_b = (b);			\
	check_count++;							\
	if (check_a == NULL || check_b == NULL ||			\
	    strcmp(check_a, check_b) != 0) {				\
		check_failures++;					\
		fprintf(stderr, "%s:%d: \"%s\" != \"%s\"\n", __FILE__,	\
		    __LINE__, check_a ? check_a : "(null)",		\
		    check_b ? check_b : "(null)");			\
	}								\
} while (0)

static inline int
check_done(const char *name)
{
	printf("%s: %d checks, %d failed\n", name, check_count,
	    check_failures);
	return check_failures == 0 ? 0 : 1;
}

#endif
