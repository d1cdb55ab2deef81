// SPDX-License-Identifier: GPL-2.0-only
#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "util.h"

struct audit_log {
	FILE *f;
	bool own;
};

struct audit_log *audit_log_open(const char *path, char *err, size_t errlen)
{
	struct audit_log *a = xcalloc(1, sizeof(*a));

	if (!strcmp(path, "-")) {
		a->f = stdout;
	} else {
		int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		a->f = fd >= 0 ? fdopen(fd, "a") : NULL;
		if (!a->f) {
			snprintf(err, errlen, "audit log %s: %s", path, strerror(errno));
			if (fd >= 0)
				close(fd);
			free(a);
			return NULL;
		}
		a->own = true;
	}
	openlog("aioguard", LOG_PID, LOG_DAEMON);
	return a;
}

void audit_log_write(struct audit_log *a, json_object *o, const char *summary)
{
	const char *line = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							      JSON_C_TO_STRING_NOSLASHESCAPE);
	/* A full or read-only disk must not swallow a decision: say it on
	 * stderr (and syslog below) with the line that could not be kept. */
	if (fprintf(a->f, "%s\n", line) < 0 || fflush(a->f) != 0) {
		log_err("audit log write failed (%s); the decision was: %s", strerror(errno), line);
		clearerr(a->f);
	}
	json_object_put(o);
	syslog(LOG_NOTICE, "%s", summary);
}

void audit_log_close(struct audit_log *a)
{
	if (!a)
		return;
	if (a->own)
		fclose(a->f);
	closelog();
	free(a);
}
