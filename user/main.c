// SPDX-License-Identifier: GPL-2.0-only
/* aioguard: measure QEMU's disk-submission stalls with eBPF and choose each
 * disk's AIO mode (native / threads / io_uring) from facts, not folklore. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "config.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{"advise", cmd_advise, "recommend an AIO mode for every disk of every domain"},
	{"set-io", cmd_set_io, "change one disk's <driver io=…> safely (backup, validate, rollback)"},
	{"watch", cmd_watch, "live per-disk submission latency, stalls, allocation and off-CPU time (eBPF)"},
	{"run", cmd_run, "the agent: observe, decide, switch stalling sparse disks to threads (dry-run by default)"},
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: aioguard COMMAND [OPTIONS]\n"
		"\n"
		"Watches how QEMU submits guest disk I/O and keeps each disk on the AIO\n"
		"mode that does not stall it: io='native' for allocated images and block\n"
		"devices, io='threads' for sparse or growing images.\n"
		"\n"
		"Commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
	fprintf(out,
		"\n"
		"Run 'aioguard COMMAND --help' for a command's options.\n"
		"  -h, --help     this text\n"
		"  -V, --version  print the version\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "aioguard: no command given (try 'aioguard --help')\n");
		return 2;
	}
	const char *name = argv[1];
	if (!strcmp(name, "-h") || !strcmp(name, "--help") || !strcmp(name, "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(name, "-V") || !strcmp(name, "--version")) {
		printf("aioguard %s\n", AIOGUARD_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(name, commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "aioguard: unknown command '%s' (try 'aioguard --help')\n", name);
	return 2;
}
