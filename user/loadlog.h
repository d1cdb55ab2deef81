/* SPDX-License-Identifier: GPL-2.0-only */
/* What libbpf said while a load failed, read back for a short report: the
 * program the kernel refused and the verifier's last lines. Pure string
 * work on libbpf's messages, so it is unit-tested on canned logs. */
#ifndef AIOGUARD_LOADLOG_H
#define AIOGUARD_LOADLOG_H

#include <stddef.h>

/* The program libbpf last said it failed to load ("prog 'NAME': BPF
 * program load failed"), into name[size]; "" when none was named. */
void loadlog_failed_program(const char *log, char *name, size_t size);

/* The last n non-empty lines of the last verifier log in `log` (between
 * libbpf's BEGIN and END PROG LOAD LOG markers): *start and the length, 0
 * when there is none. Lines are '\n'-separated; empty ones may be inside. */
size_t loadlog_verifier_tail(const char *log, int n, const char **start);

#endif
