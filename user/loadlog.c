// SPDX-License-Identifier: GPL-2.0-only
#include "loadlog.h"

#include <stdio.h>
#include <string.h>

#define BEGIN_MARK "-- BEGIN PROG LOAD LOG --"
#define END_MARK "-- END PROG LOAD LOG --"
#define FAILED "': BPF program load failed"

void loadlog_failed_program(const char *log, char *name, size_t size)
{
	const char *p = log, *hit = NULL, *end = NULL;

	if (size)
		*name = '\0';
	while (log && (p = strstr(p, "prog '"))) {
		const char *q = strchr(p + 6, '\'');
		if (q && strncmp(q, FAILED, strlen(FAILED)) == 0) {
			hit = p + 6;
			end = q;
		}
		p += 6;
	}
	if (hit && size)
		snprintf(name, size, "%.*s", (int)(end - hit), hit);
}

size_t loadlog_verifier_tail(const char *log, int n, const char **start)
{
	const char *begin = NULL, *end, *p = log;

	*start = NULL;
	while (log && (p = strstr(p, BEGIN_MARK)))
		begin = p = p + strlen(BEGIN_MARK);
	if (!begin || !(end = strstr(begin, END_MARK)))
		return 0;
	/* libbpf prefixes its own END line ("libbpf: prog 'x': -- END…"): the
	 * verifier's text stops where that line starts. */
	while (end > begin && end[-1] != '\n')
		end--;
	while (end > begin && end[-1] == '\n')
		end--;
	p = end;
	for (int lines = 0; p > begin;) {   /* back over n non-empty lines */
		if (p[-1] == '\n' && p < end && *p != '\n' && ++lines == n)
			break;
		p--;
	}
	while (p < end && *p == '\n')
		p++;
	*start = p;
	return end - p;
}
