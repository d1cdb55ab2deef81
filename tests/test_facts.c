// SPDX-License-Identifier: GPL-2.0-only
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../policy/facts.h"

static void io_mode_round_trip(void **state)
{
	enum io_mode m;
	for (enum io_mode i = IO_MODE_NATIVE; i <= IO_MODE_IO_URING; i++) {
		assert_true(io_mode_parse(io_mode_name(i), &m));
		assert_int_equal(m, i);
	}
	assert_true(io_mode_parse(NULL, &m));
	assert_int_equal(m, IO_MODE_UNSET);
	assert_false(io_mode_parse("Native", &m));
	assert_false(io_mode_parse("", &m));
	assert_null(io_mode_name(IO_MODE_UNSET));
}

static void native_needs_o_direct(void **state)
{
	assert_true(cache_allows_native("none"));
	assert_true(cache_allows_native("directsync"));
	assert_false(cache_allows_native("writeback"));
	assert_false(cache_allows_native("writethrough"));
	assert_false(cache_allows_native("unsafe"));
	assert_false(cache_allows_native(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(io_mode_round_trip),
		cmocka_unit_test(native_needs_o_direct),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
