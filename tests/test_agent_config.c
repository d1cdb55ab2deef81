// SPDX-License-Identifier: GPL-2.0-only
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "agent_config.h"

static void defaults_are_dry_run_on_loopback(void **state)
{
	struct agent_config c;
	config_defaults(&c);
	assert_false(c.enforce);
	assert_int_equal(c.apply, APPLY_LIVE);
	assert_int_equal(c.live_fallback, APPLY_NEXT_BOOT);
	assert_false(c.adapt.switch_back);
	assert_false(c.metrics_detail);
	assert_string_equal(c.web_config, "");
	assert_string_equal(c.listen, "127.0.0.1:9477");
	assert_int_equal(c.threshold_us, 1000);
	assert_int_equal(c.adapt.target, ADAPT_TARGET_THREADS);
	assert_null(adapt_config_check(&c.adapt));
}

static void parses_every_kind_of_line(void **state)
{
	struct agent_config c;
	char err[256] = "";
	config_defaults(&c);
	const char *text =
		"# aioguard\n"
		"\n"
		"mode = enforce\n"
		"apply=save-restore\n"
		"  interval = 5  \r\n"
		"bad-windows = 2\n"
		"history-windows = 4\n"
		"switch-back = yes\n"
		"target = auto\n"
		"include = web-*\n"
		"include = db-*\n"
		"exclude = web-canary\n"
		"audit-log = /var/log/aioguard.jsonl\n";
	assert_int_equal(config_parse_text(&c, text, err, sizeof(err)), 0);
	assert_true(c.enforce);
	assert_int_equal(c.apply, APPLY_SAVE_RESTORE);
	assert_int_equal(c.interval_s, 5);
	assert_int_equal(c.adapt.bad_windows, 2);
	assert_int_equal(c.adapt.history_windows, 4);
	assert_true(c.adapt.switch_back);
	assert_int_equal(c.adapt.target, ADAPT_TARGET_AUTO);
	assert_string_equal(c.audit_log, "/var/log/aioguard.jsonl");
	assert_true(config_domain_in_scope(&c, "web-1"));
	assert_true(config_domain_in_scope(&c, "db-7"));
	assert_false(config_domain_in_scope(&c, "web-canary"));
	assert_false(config_domain_in_scope(&c, "mail"));
}

static void errors_name_the_line_and_change_nothing(void **state)
{
	static const struct { const char *text, *msg; } bad[] = {
		{"interval = 5\nbogus = 1\n", "line 2: unknown setting 'bogus'"},
		{"\n\ninterval = 0\n", "line 3: interval: '0' is not a whole number from 1 to 3600"},
		{"interval = -5\n", "line 1: interval"},
		{"interval = 5x\n", "line 1: interval"},
		{"interval = 99999999999999999999\n", "line 1: interval"},
		{"just words\n", "line 1: expected 'key = value'"},
		{" = 3\n", "line 1: expected 'key = value'"},
		{"mode = yolo\n", "line 1: mode: bad value 'yolo'"},
		{"target = native\n", "line 1: target: 'native' is not threads, io_uring or auto"},
		{"target = io-uring\n", "line 1: target: 'io-uring' is not threads, io_uring or auto"},
		{"target =\n", "line 1: target: '' is not threads, io_uring or auto"},
		{"bad-windows = 9\n", "history-windows must be between bad-windows and 64"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct agent_config c, before;
		char err[256] = "";
		config_defaults(&c);
		before = c;
		assert_int_equal(config_parse_text(&c, bad[i].text, err, sizeof(err)), -1);
		assert_non_null(strstr(err, bad[i].msg));
		assert_memory_equal(&c, &before, sizeof(c));
	}
}

static void too_many_globs_and_long_values(void **state)
{
	struct agent_config c;
	char err[256], line[512];
	config_defaults(&c);
	for (int i = 0; i < CONFIG_MAX_GLOBS; i++)
		assert_int_equal(config_set(&c, "include", "x*", err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "include", "y*", err, sizeof(err)), -1);
	memset(line, 'a', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	assert_int_equal(config_set(&c, "state-dir", line, err, sizeof(err)), -1);
}

static void file_errors(void **state)
{
	struct agent_config c;
	char err[256];
	config_defaults(&c);
	assert_int_equal(config_load_file(&c, "/nonexistent/aioguard.conf", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "No such file"));
	assert_int_equal(config_load_file(&c, "/", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a regular file"));
	/* the configuration installed as /etc/aioguard/aioguard.conf must parse */
	char path[512];
	const char *src = getenv("AIOGUARD_SRCDIR");
	snprintf(path, sizeof(path), "%s/contrib/aioguard.conf", src ? src : "..");
	assert_int_equal(config_load_file(&c, path, err, sizeof(err)), 0);
}

/* Every advertised key is accepted by config_set, and unknown ones are not. */
static void every_key_is_settable(void **state)
{
	static const struct { const char *key, *value; } values[] = {
		{"mode", "enforce"}, {"apply", "save-restore"}, {"switch-back", "yes"},
		{"live-fallback", "save-restore"},
		{"target", "io_uring"},
		{"connect", "test:///default"}, {"state-dir", "/tmp/x"}, {"audit-log", "-"},
		{"listen", "127.0.0.1:1"}, {"include", "a*"}, {"exclude", "b*"}, {"threshold-us", "700"},
		{"metrics-detail", "yes"}, {"web-config", "/etc/aioguard/web-config.yml"},
		{"bpf-slots", "4096"},
	};
	struct agent_config c;
	char err[256];
	config_defaults(&c);
	for (size_t i = 0; config_keys[i]; i++) {
		const char *v = "7";
		for (size_t j = 0; j < sizeof(values) / sizeof(values[0]); j++)
			if (!strcmp(values[j].key, config_keys[i]))
				v = values[j].value;
		if (config_set(&c, config_keys[i], v, err, sizeof(err)) != 0)
			fail_msg("%s = %s: %s", config_keys[i], v, err);
	}
	assert_int_equal(config_set(&c, "no-such-key", "1", err, sizeof(err)), -1);
	assert_true(c.metrics_detail);
	assert_int_equal(c.bpf_slots, 4096);
	assert_int_equal(config_set(&c, "bpf-slots", "15", err, sizeof(err)), -1);
	assert_int_equal(config_set(&c, "bpf-slots", "65537", err, sizeof(err)), -1);
	assert_string_equal(c.web_config, "/etc/aioguard/web-config.yml");
	assert_int_equal(config_set(&c, "metrics-detail", "some", err, sizeof(err)), -1);
	/* live cannot stand in for itself where live is not possible */
	assert_int_equal(config_set(&c, "live-fallback", "live", err, sizeof(err)), -1);
	assert_int_equal(config_set(&c, "apply", "live", err, sizeof(err)), 0);
	assert_int_equal(c.apply, APPLY_LIVE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(defaults_are_dry_run_on_loopback),
		cmocka_unit_test(parses_every_kind_of_line),
		cmocka_unit_test(errors_name_the_line_and_change_nothing),
		cmocka_unit_test(too_many_globs_and_long_values),
		cmocka_unit_test(file_errors),
		cmocka_unit_test(every_key_is_settable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
