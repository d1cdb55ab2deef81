/* SPDX-License-Identifier: GPL-2.0-only */
/* The agent's settings: defaults, then the config file, then flags. */
#ifndef AIOGUARD_AGENT_CONFIG_H
#define AIOGUARD_AGENT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../policy/adapt.h"
#include "apply_strategy.h"

#define CONFIG_MAX_GLOBS 32

struct agent_config {
	struct adapt_config adapt;
	bool enforce;                  /* false = dry-run (the default) */
	enum apply_strategy apply;     /* how an enforced change reaches QEMU
	                                  (default live) */
	enum apply_strategy live_fallback;   /* where live cannot: next-boot
	                                        (default) or save-restore */
	uint32_t interval_s;
	uint32_t threshold_us;         /* stall threshold handed to the BPF side */
	uint32_t bpf_slots;            /* kernel counting slots, (disk, syscall)
	                                  keys at once; read at start only */
	char uri[256];                 /* "" = libvirt default */
	char state_dir[256];
	char audit_log[256];           /* "" = <state_dir>/audit.jsonl; "-" = stdout */
	char listen[64];               /* metrics address, "" = off */
	bool metrics_detail;           /* every syscall's series and log2 buckets */
	char web_config[256];          /* TLS and basic auth for it (webconfig.h); "" = none */
	char include[CONFIG_MAX_GLOBS][128];   /* domain globs; none = all */
	char exclude[CONFIG_MAX_GLOBS][128];
	unsigned ninclude, nexclude;
};

void config_defaults(struct agent_config *c);

/* Every setting's name, NULL-terminated: config file keys and long flags of
 * 'aioguard run' are the same words. */
extern const char *const config_keys[];

/* Apply one "key = value" setting (the same names as the long flags, e.g.
 * "stalls-per-window"). 0, or -1 with a message in err. */
int config_set(struct agent_config *c, const char *key, const char *value,
	       char *err, size_t errlen);

/* Parse a whole config file's text: "key = value" lines, '#' comments,
 * blank lines. Pure (no I/O) so it can be fuzzed. 0, or -1 with
 * "line N: …" in err; on error *c is left as it was. */
int config_parse_text(struct agent_config *c, const char *text, char *err, size_t errlen);

/* Read and parse a file; -1 with the reason in err. */
int config_load_file(struct agent_config *c, const char *path, char *err, size_t errlen);

/* Is this domain in scope (include globs, then exclude globs)? */
bool config_domain_in_scope(const struct agent_config *c, const char *domain);

#endif
