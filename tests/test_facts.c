// SPDX-License-Identifier: GPL-2.0-only
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
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

static void utf8_cut_is_never_split(void **state)
{
	char s[16];
	strcpy(s, "ab\xc3\xbc");            /* "abü": complete */
	utf8_trim_partial(s);
	assert_string_equal(s, "ab\xc3\xbc");
	strcpy(s, "ab\xc3");                /* ü cut after its lead byte */
	utf8_trim_partial(s);
	assert_string_equal(s, "ab");
	strcpy(s, "x\xf0\x9f\x99");         /* 4-byte emoji missing its last byte */
	utf8_trim_partial(s);
	assert_string_equal(s, "x");
	strcpy(s, "x\xf0\x9f\x99\x82");     /* complete emoji */
	utf8_trim_partial(s);
	assert_string_equal(s, "x\xf0\x9f\x99\x82");
	strcpy(s, "");
	utf8_trim_partial(s);
	assert_string_equal(s, "");
	strcpy(s, "\x80\x80");             /* stray continuation bytes: left alone */
	utf8_trim_partial(s);
	assert_string_equal(s, "\x80\x80");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(io_mode_round_trip),
		cmocka_unit_test(native_needs_o_direct),
		cmocka_unit_test(utf8_cut_is_never_split),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
