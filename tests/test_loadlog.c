// SPDX-License-Identifier: GPL-2.0-only
/* user/loadlog.c on logs shaped as libbpf 1.1 prints them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "loadlog.h"

/* As seen on Debian's 6.1 under lockdown=confidentiality (shortened). */
static const char refused[] =
	"libbpf: prog 'tp_enter_io_submit': BPF program load failed: Invalid argument\n"
	"libbpf: prog 'fexit_io_submit': BPF program load failed: Invalid argument\n"
	"libbpf: prog 'fexit_io_submit': -- BEGIN PROG LOAD LOG --\n"
	"0: R1=ctx(off=0,imm=0) R10=fp0\n"
	"\n"
	"42: (b4) w2 = 64                      ; R2_w=64\n"
	"44: (85) call bpf_probe_read#4\n"
	"unknown func bpf_probe_read#4\n"
	"processed 44 insns (limit 1000000) max_states_per_insn 0\n"
	"-- END PROG LOAD LOG --\n"
	"libbpf: prog 'fexit_io_submit': failed to load: -22\n"
	"libbpf: failed to load object 'observer_bpf'\n";

static void names_the_last_refused_program(void **state)
{
	char name[64];

	loadlog_failed_program(refused, name, sizeof(name));
	assert_string_equal(name, "fexit_io_submit");
	loadlog_failed_program("libbpf: failed to load object 'x'\n", name, sizeof(name));
	assert_string_equal(name, "");
	loadlog_failed_program(NULL, name, sizeof(name));
	assert_string_equal(name, "");
	loadlog_failed_program("libbpf: prog 'unterminated", name, sizeof(name));
	assert_string_equal(name, "");
}

static void tail_is_the_verifiers_last_lines(void **state)
{
	const char *p;
	size_t n = loadlog_verifier_tail(refused, 2, &p);

	assert_int_equal(n, strlen("unknown func bpf_probe_read#4\n"
				   "processed 44 insns (limit 1000000) max_states_per_insn 0"));
	assert_memory_equal(p, "unknown func bpf_probe_read#4\nprocessed", 39);
}

static void tail_longer_than_the_log(void **state)
{
	const char *p;
	size_t n = loadlog_verifier_tail(refused, 50, &p);

	assert_memory_equal(p, "0: R1=ctx", 9);
	assert_int_equal(p[n - 1], '0');  /* "...per_insn 0", no END marker */
}

static void no_log_no_tail(void **state)
{
	const char *p;

	assert_int_equal(loadlog_verifier_tail("libbpf: nothing\n", 3, &p), 0);
	assert_null(p);
	assert_int_equal(loadlog_verifier_tail(NULL, 3, &p), 0);
	/* a BEGIN without END (log cut short) gives nothing, not garbage */
	assert_int_equal(loadlog_verifier_tail("x -- BEGIN PROG LOAD LOG --\n1\n2\n", 3, &p), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(names_the_last_refused_program),
		cmocka_unit_test(tail_is_the_verifiers_last_lines),
		cmocka_unit_test(tail_longer_than_the_log),
		cmocka_unit_test(no_log_no_tail),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
