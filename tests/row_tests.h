/* SPDX-License-Identifier: GPL-2.0-only */
/* Table tests as one cmocka test per row, named by the row: a wrong row is
 * reported by name and does not hide the rows after it. Include after
 * <cmocka.h>. A row is a struct whose first member is `const char *name`;
 * the test function gets the row as *state. */
#ifndef AIOGUARD_ROW_TESTS_H
#define AIOGUARD_ROW_TESTS_H

#include <stddef.h>
#include <stdlib.h>

static inline int run_row_tests(const char *group, CMUnitTestFunction fn, const void *rows,
				size_t row_size, size_t n)
{
	struct CMUnitTest *t = calloc(n, sizeof(*t));
	int failed;

	if (!t)
		return 1;
	for (size_t i = 0; i < n; i++) {
		const void *row = (const char *)rows + i * row_size;

		t[i] = (struct CMUnitTest){.name = *(const char *const *)row, .test_func = fn,
					   .initial_state = (void *)row};
	}
	failed = _cmocka_run_group_tests(group, t, n, NULL, NULL);
	free(t);
	return failed;
}

/* sizeof(char[1 - 2 * !ok]) fails to compile unless ok: name must come first. */
#define RUN_ROW_TESTS(group, fn, rows)							\
	run_row_tests(group, fn, rows,							\
		      sizeof(rows[0]) + 0 * sizeof(char[1 - 2 * (offsetof(__typeof__(rows[0]), name) != 0)]), \
		      sizeof(rows) / sizeof(rows[0]))

#endif
