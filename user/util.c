// SPDX-License-Identifier: GPL-2.0-only
#include "util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool log_verbose;
static const char *log_command;

void log_set_command(const char *name)
{
	log_command = name;
}

/* One line per message, whatever libvirt's messages or names hold. */
static void vlog(const char *fmt, va_list ap)
{
	char *msg;

	if (vasprintf(&msg, fmt, ap) < 0) {
		fputs("aioguard: (message lost: out of memory)\n", stderr);
		return;
	}
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	if (log_command)
		fprintf(stderr, "aioguard: %s: %s\n", log_command, msg);
	else
		fprintf(stderr, "aioguard: %s\n", msg);
	free(msg);
}

int usage_error(const char *fmt, ...)
{
	char *msg;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		return 2;
	log_err("%s (try 'aioguard%s%s --help')", msg, log_command ? " " : "",
		log_command ? log_command : "");
	free(msg);
	return 2;
}

int option_error(int ch, char *const *argv)
{
	char name[64];
	const char *arg = argv[optind - 1];
	/* a long option is its own word; a short one may sit in a cluster */
	if (!strncmp(arg, "--", 2))
		snprintf(name, sizeof(name), "%.*s", (int)strcspn(arg, "="), arg);
	else if (optopt > 0 && optopt < 128)
		snprintf(name, sizeof(name), "-%c", optopt);
	else
		snprintf(name, sizeof(name), "%s", arg);
	if (ch == ':')
		return usage_error("option %s needs a value", name);
	return usage_error("unknown option %s", name);
}

void log_err(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(fmt, ap);
	va_end(ap);
}

void log_info(const char *fmt, ...)
{
	if (!log_verbose)
		return;
	va_list ap;
	va_start(ap, fmt);
	vlog(fmt, ap);
	va_end(ap);
}

static void *oom(void)
{
	fputs("aioguard: out of memory\n", stderr);
	abort();
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	return p ? p : oom();
}

void *xrealloc(void *p, size_t size)
{
	void *q = realloc(p, size ? size : 1);
	return q ? q : oom();
}

char *xstrdup(const char *s)
{
	if (!s)
		return NULL;
	char *p = strdup(s);
	return p ? p : oom();
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	int r = vasprintf(&s, fmt, ap);
	va_end(ap);
	return r < 0 ? oom() : s;
}

bool streq_null(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}
