// SPDX-License-Identifier: GPL-2.0-only
#include "agent_config.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "util.h"

#define CONFIG_MAX_BYTES (1 << 20)

void config_defaults(struct agent_config *c)
{
	*c = (struct agent_config){
		.interval_s = 10,      /* windows of 10 s: see adapt.c's defaults */
		.threshold_us = 1000,  /* 1 ms: a guest notices; a healthy submit takes µs */
		.bpf_slots = 1024,     /* ~400 busy disks (2.5 keys each): docs/BENCHMARKS.md */
		.apply = APPLY_LIVE,   /* the guest keeps running; falls back where it cannot */
		.live_fallback = APPLY_NEXT_BOOT,
	};
	adapt_config_defaults(&c->adapt);
	snprintf(c->state_dir, sizeof(c->state_dir), "%s", AIOGUARD_STATE_DIR);
	snprintf(c->listen, sizeof(c->listen), "127.0.0.1:9477");
}

static int parse_u32(const char *v, uint32_t min, uint32_t max, uint32_t *out)
{
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (errno || end == v || *end || v[0] == '-' || n < min || n > max)
		return -1;
	*out = (uint32_t)n;
	return 0;
}

static int parse_bool(const char *v, bool *out)
{
	if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "on"))
		*out = true;
	else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "off"))
		*out = false;
	else
		return -1;
	return 0;
}

static int set_string(char *dst, size_t size, const char *v)
{
	if (strlen(v) >= size)
		return -1;
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

static int add_glob(char (*globs)[128], unsigned *n, const char *v)
{
	if (*n >= CONFIG_MAX_GLOBS || set_string(globs[*n], sizeof(globs[0]), v) < 0)
		return -1;
	(*n)++;
	return 0;
}

struct u32_knob {
	const char *key;
	size_t offset;
	uint32_t min, max;
};

#define KNOB(k, field, lo, hi) {k, offsetof(struct agent_config, field), lo, hi}
static const struct u32_knob u32_knobs[] = {
	KNOB("interval", interval_s, 1, 3600),
	KNOB("threshold-us", threshold_us, 10, 60000000),
	KNOB("stalls-per-window", adapt.stalls_per_window, 0, 1000000),
	KNOB("stalled-ms-per-s", adapt.stalled_ms_per_s, 0, 1000),
	KNOB("bad-windows", adapt.bad_windows, 1, ADAPT_MAX_WINDOWS),
	KNOB("history-windows", adapt.history_windows, 1, ADAPT_MAX_WINDOWS),
	KNOB("cooldown", adapt.cooldown_s, 0, 7 * 86400),
	KNOB("max-changes-per-hour", adapt.max_changes_per_hour, 0, 10000),
	KNOB("switch-back-quiet", adapt.switch_back_quiet_s, 0, 30 * 86400),
	KNOB("bpf-slots", bpf_slots, 16, 65536),
};

const char *const config_keys[] = {
	"interval", "threshold-us", "stalls-per-window", "stalled-ms-per-s", "bad-windows",
	"history-windows", "cooldown", "max-changes-per-hour", "switch-back-quiet", "bpf-slots",
	"mode", "apply", "live-fallback", "target", "switch-back", "connect", "state-dir", "audit-log",
	"listen", "web-config", "metrics-detail", "include", "exclude", NULL,
};

static int set_mode(struct agent_config *c, const char *v)
{
	if (!strcmp(v, "dry-run"))
		c->enforce = false;
	else if (!strcmp(v, "enforce"))
		c->enforce = true;
	else
		return -1;
	return 0;
}

static int set_apply(struct agent_config *c, const char *v)
{
	return apply_strategy_parse(v, &c->apply) ? 0 : -1;
}

/* Only what needs no live support can stand in for it. */
static int set_live_fallback(struct agent_config *c, const char *v)
{
	enum apply_strategy s;

	if (!apply_strategy_parse(v, &s) || s == APPLY_LIVE)
		return -1;
	c->live_fallback = s;
	return 0;
}

static int set_other(struct agent_config *c, const char *key, const char *v)
{
	if (!strcmp(key, "mode"))
		return set_mode(c, v);
	if (!strcmp(key, "apply"))
		return set_apply(c, v);
	if (!strcmp(key, "live-fallback"))
		return set_live_fallback(c, v);
	if (!strcmp(key, "target"))
		return adapt_target_parse(v, &c->adapt.target) ? 0 : -2;
	if (!strcmp(key, "switch-back"))
		return parse_bool(v, &c->adapt.switch_back);
	if (!strcmp(key, "connect"))
		return set_string(c->uri, sizeof(c->uri), v);
	if (!strcmp(key, "state-dir"))
		return set_string(c->state_dir, sizeof(c->state_dir), v);
	if (!strcmp(key, "audit-log"))
		return set_string(c->audit_log, sizeof(c->audit_log), v);
	if (!strcmp(key, "listen"))
		return set_string(c->listen, sizeof(c->listen), v);
	if (!strcmp(key, "metrics-detail"))
		return parse_bool(v, &c->metrics_detail);
	if (!strcmp(key, "web-config"))
		return set_string(c->web_config, sizeof(c->web_config), v);
	if (!strcmp(key, "include"))
		return add_glob(c->include, &c->ninclude, v);
	if (!strcmp(key, "exclude"))
		return add_glob(c->exclude, &c->nexclude, v);
	return 1;   /* unknown key */
}

int config_set(struct agent_config *c, const char *key, const char *value, char *err, size_t errlen)
{
	for (size_t i = 0; i < sizeof(u32_knobs) / sizeof(u32_knobs[0]); i++) {
		const struct u32_knob *k = &u32_knobs[i];
		if (strcmp(key, k->key))
			continue;
		if (parse_u32(value, k->min, k->max, (uint32_t *)((char *)c + k->offset)) == 0)
			return 0;
		snprintf(err, errlen, "%s: '%s' is not a whole number from %u to %u", key, value,
			 k->min, k->max);
		return -1;
	}
	int r = set_other(c, key, value);
	if (r == 0)
		return 0;
	if (r > 0)
		snprintf(err, errlen, "unknown setting '%s'", key);
	else if (r == -2)
		snprintf(err, errlen, "%s: '%s' is not threads, io_uring or auto (the mode a "
			 "stalling native disk is switched to)", key, value);
	else
		snprintf(err, errlen, "%s: bad value '%s'", key, value);
	return -1;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	char *e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* One line into key and value; 0 blank/comment, 1 setting, -1 malformed. */
static int split_line(char *line, char **key, char **value)
{
	char *s = trim(line);
	if (!*s || *s == '#')
		return 0;
	char *eq = strchr(s, '=');
	if (!eq)
		return -1;
	*eq = '\0';
	*key = trim(s);
	*value = trim(eq + 1);
	return **key ? 1 : -1;
}

int config_parse_text(struct agent_config *c, const char *text, char *err, size_t errlen)
{
	struct agent_config next = *c;
	char *copy = xstrdup(text), *line = copy, *key, *value, msg[200];
	unsigned lineno = 0;
	int rc = 0;

	while (line && rc == 0) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		lineno++;
		int kind = split_line(line, &key, &value);
		if (kind < 0) {
			snprintf(err, errlen, "line %u: expected 'key = value'", lineno);
			rc = -1;
		} else if (kind > 0 && config_set(&next, key, value, msg, sizeof(msg)) < 0) {
			snprintf(err, errlen, "line %u: %s", lineno, msg);
			rc = -1;
		}
		line = nl ? nl + 1 : NULL;
	}
	const char *bad = rc ? NULL : adapt_config_check(&next.adapt);
	if (bad) {
		snprintf(err, errlen, "%s", bad);
		rc = -1;
	}
	if (rc == 0)
		*c = next;
	free(copy);
	return rc;
}

int config_load_file(struct agent_config *c, const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf = NULL;
	int rc = -1;

	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > CONFIG_MAX_BYTES) {
		snprintf(err, errlen, "%s: not a regular file of at most 1 MiB", path);
		goto out;
	}
	buf = xcalloc(1, (size_t)st.st_size + 1);
	if (read(fd, buf, (size_t)st.st_size) != st.st_size) {
		snprintf(err, errlen, "%s: short read", path);
		goto out;
	}
	if (memchr(buf, '\0', (size_t)st.st_size)) {
		snprintf(err, errlen, "%s: contains a NUL byte", path);
		goto out;
	}
	char msg[240];
	rc = config_parse_text(c, buf, msg, sizeof(msg));
	if (rc < 0)
		snprintf(err, errlen, "%s: %s", path, msg);
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}

static bool matches_any(char (*globs)[128], unsigned n, const char *name)
{
	for (unsigned i = 0; i < n; i++)
		if (fnmatch(globs[i], name, 0) == 0)
			return true;
	return false;
}

bool config_domain_in_scope(const struct agent_config *c, const char *domain)
{
	char (*inc)[128] = (char (*)[128])c->include, (*exc)[128] = (char (*)[128])c->exclude;
	if (c->ninclude && !matches_any(inc, c->ninclude, domain))
		return false;
	return !matches_any(exc, c->nexclude, domain);
}
