/* SPDX-License-Identifier: GPL-2.0-only */
/* The audit trail: every decision, dry-run too, as one JSON line in the
 * audit log, and a short line to syslog. */
#ifndef AIOGUARD_AUDIT_H
#define AIOGUARD_AUDIT_H

#include <stddef.h>
#include <json-c/json.h>

struct audit_log;

/* path "-" = stdout. The file is opened O_APPEND|O_NOFOLLOW, created 0600.
 * NULL with err set on failure. */
struct audit_log *audit_log_open(const char *path, char *err, size_t errlen);
/* Append o as one line (drops the reference) and send summary to syslog. */
void audit_log_write(struct audit_log *a, json_object *o, const char *summary);
void audit_log_close(struct audit_log *a);

#endif
