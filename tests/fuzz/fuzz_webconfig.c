// SPDX-License-Identifier: GPL-2.0-only
/* web_config_parse() (the --web-config YAML, through libyaml) on arbitrary
 * text. Relative paths resolve in a directory that does not exist, so only
 * absolute ones reach a file. Invariants: on failure *wc is untouched and
 * err is one line naming the file; on success every user has a bcrypt hash
 * and TLS material comes as a whole (certificate and key, or neither). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "webconfig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct web_config wc = {.nusers = 12345};
	char err[512] = "";

	if (web_config_parse(&wc, (const char *)data, size, "fuzz.yml", "/nonexistent-aioguard",
			     err, sizeof(err)) < 0) {
		if (wc.nusers != 12345 || wc.users || wc.cert_pem)
			abort();   /* touched on failure */
		if (strncmp(err, "fuzz.yml", 8) || strchr(err, '\n') || !memchr(err, '\0', sizeof(err)))
			abort();   /* not one line naming the file */
		return 0;
	}
	if (!wc.cert_pem != !wc.key_pem || (wc.client_ca_pem && !wc.cert_pem))
		abort();
	for (size_t i = 0; i < wc.nusers; i++)
		if (strlen(wc.users[i].hash) != 60 || strncmp(wc.users[i].hash, "$2", 2))
			abort();
	web_config_free(&wc);
	return 0;
}
