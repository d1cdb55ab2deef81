// SPDX-License-Identifier: GPL-2.0-only
/* Facts tables: one cmocka test per row, named after it, so a wrong row
 * does not hide the others. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "../policy/facts.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* io='…' as written in domain XML: parsed, and named back */
struct io_mode_row {
	const char *name;
	const char *text;      /* NULL: the XML has no io attribute */
	bool valid;
	enum io_mode mode;
};

static const struct io_mode_row io_mode_rows[] = {
	{"io_mode: native", "native", true, IO_MODE_NATIVE},
	{"io_mode: threads", "threads", true, IO_MODE_THREADS},
	{"io_mode: io_uring", "io_uring", true, IO_MODE_IO_URING},
	{"io_mode: no io attribute is unset", NULL, true, IO_MODE_UNSET},
	{"io_mode: case matters (Native)", "Native", false, IO_MODE_UNSET},
	{"io_mode: empty is not a mode", "", false, IO_MODE_UNSET},
};

static void io_mode_row(void **state)
{
	const struct io_mode_row *r = *state;
	enum io_mode m = (enum io_mode)-1;

	assert_int_equal(io_mode_parse(r->text, &m), r->valid);
	if (!r->valid)
		return;
	assert_int_equal(m, r->mode);
	if (r->text)
		assert_string_equal(io_mode_name(m), r->text);
	else
		assert_null(io_mode_name(m));
}

/* libvirt and QEMU need O_DIRECT for io='native' */
struct cache_row {
	const char *name;
	const char *cache;
	bool native_ok;
};

static const struct cache_row cache_rows[] = {
	{"cache: none allows native", "none", true},
	{"cache: directsync allows native", "directsync", true},
	{"cache: writeback does not", "writeback", false},
	{"cache: writethrough does not", "writethrough", false},
	{"cache: unsafe does not", "unsafe", false},
	{"cache: no cache attribute does not", NULL, false},
};

static void cache_row(void **state)
{
	const struct cache_row *r = *state;
	assert_int_equal(cache_allows_native(r->cache), r->native_ok);
}

/* a cut after a truncating snprintf never splits a UTF-8 sequence */
struct utf8_row {
	const char *name;
	const char *in, *out;
};

static const struct utf8_row utf8_rows[] = {
	{"utf8: complete two-byte sequence kept", "ab\xc3\xbc", "ab\xc3\xbc"},
	{"utf8: two-byte sequence cut after its lead byte", "ab\xc3", "ab"},
	{"utf8: four-byte sequence missing its last byte", "x\xf0\x9f\x99", "x"},
	{"utf8: complete four-byte sequence kept", "x\xf0\x9f\x99\x82", "x\xf0\x9f\x99\x82"},
	{"utf8: empty string", "", ""},
	{"utf8: stray continuation bytes left alone", "\x80\x80", "\x80\x80"},
};

static void utf8_row(void **state)
{
	const struct utf8_row *r = *state;
	char s[16];

	assert_true(strlen(r->in) < sizeof(s));
	strcpy(s, r->in);
	utf8_trim_partial(s);
	assert_string_equal(s, r->out);
}

static void unset_has_no_name(void **state)
{
	(void)state;
	assert_null(io_mode_name(IO_MODE_UNSET));
}

int main(void)
{
	struct CMUnitTest tests[N(io_mode_rows) + N(cache_rows) + N(utf8_rows) + 1];
	size_t n = 0;

	for (size_t i = 0; i < N(io_mode_rows); i++)
		tests[n++] = (struct CMUnitTest){io_mode_rows[i].name, io_mode_row, NULL, NULL,
						 (void *)&io_mode_rows[i]};
	for (size_t i = 0; i < N(cache_rows); i++)
		tests[n++] = (struct CMUnitTest){cache_rows[i].name, cache_row, NULL, NULL,
						 (void *)&cache_rows[i]};
	for (size_t i = 0; i < N(utf8_rows); i++)
		tests[n++] = (struct CMUnitTest){utf8_rows[i].name, utf8_row, NULL, NULL,
						 (void *)&utf8_rows[i]};
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(unset_has_no_name);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
