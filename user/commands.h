/* SPDX-License-Identifier: GPL-2.0-only */
/* Subcommands of the one aioguard binary. Each returns the process exit code. */
#ifndef AIOGUARD_COMMANDS_H
#define AIOGUARD_COMMANDS_H

int cmd_advise(int argc, char **argv);
int cmd_set_io(int argc, char **argv);
int cmd_watch(int argc, char **argv);
int cmd_run(int argc, char **argv);

#endif
