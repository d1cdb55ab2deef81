// SPDX-License-Identifier: GPL-2.0-only
/* config_parse_text() on arbitrary text. Invariants: on failure *c is left
 * as it was and err holds one line; on success the result is a config the
 * agent accepts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_str(const char *s, size_t cap)
{
	if (!memchr(s, '\0', cap))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct agent_config c, before;
	char *text = malloc(size + 1), err[256];
	int rc;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	/* Start from the defaults, or (first byte odd) from a config that a
	 * previous file already filled, as a SIGHUP reload does. */
	config_defaults(&c);
	if (size && (data[0] & 1)) {
		for (unsigned i = 0; i < CONFIG_MAX_GLOBS - 1; i++)
			config_set(&c, "include", "prod-*", err, sizeof(err));
		config_set(&c, "connect", "qemu:///system", err, sizeof(err));
	}
	before = c;
	memset(err, 'X', sizeof(err));

	rc = config_parse_text(&c, text, err, sizeof(err));
	if (rc < 0) {
		if (memcmp(&c, &before, sizeof(c)))
			abort();
		if (!memchr(err, '\0', sizeof(err)) || !err[0] || strchr(err, '\n'))
			abort();
	} else {
		if (rc != 0 || adapt_config_check(&c.adapt) != NULL)
			abort();
		if (c.ninclude > CONFIG_MAX_GLOBS || c.nexclude > CONFIG_MAX_GLOBS ||
		    c.interval_s < 1 || c.interval_s > 3600 ||
		    c.threshold_us < 10 || c.threshold_us > 60000000)
			abort();
		check_str(c.uri, sizeof(c.uri));
		check_str(c.state_dir, sizeof(c.state_dir));
		check_str(c.audit_log, sizeof(c.audit_log));
		check_str(c.listen, sizeof(c.listen));
		for (unsigned i = 0; i < c.ninclude; i++)
			check_str(c.include[i], sizeof(c.include[i]));
		for (unsigned i = 0; i < c.nexclude; i++)
			check_str(c.exclude[i], sizeof(c.exclude[i]));
		/* The globs are used as fnmatch() patterns: exercise them. */
		config_domain_in_scope(&c, "prod-db-1");
	}
	free(text);
	return 0;
}
