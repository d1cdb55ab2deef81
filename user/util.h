/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef AIOGUARD_UTIL_H
#define AIOGUARD_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/* One clear line on stderr, prefixed "aioguard: " and, once a command
 * has called log_set_command, "COMMAND: ". */
void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_set_command(const char *name);
/* A usage error, one line: "aioguard: COMMAND: what (try 'aioguard
 * COMMAND --help')". Returns 2, the exit status of usage errors. */
int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* getopt_long's answer to a bad option ('?': unknown, ':': value missing;
 * the optstring starts with ':' and opterr is 0) as a usage error. */
int option_error(int ch, char *const *argv);
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
extern bool log_verbose;

/* Allocation that cannot fail silently: aborts with a message on OOM. */
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
char *xstrdup(const char *s);        /* NULL -> NULL */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

bool streq_null(const char *a, const char *b);   /* both NULL counts as equal */

#endif
