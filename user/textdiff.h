/* SPDX-License-Identifier: GPL-2.0-only */
/* Unified diff of two small texts (domain XML), as `diff -u` prints it. */
#ifndef AIOGUARD_TEXTDIFF_H
#define AIOGUARD_TEXTDIFF_H

/* A malloc'd unified diff (--- old_label, +++ new_label, @@ hunks with three
 * lines of context) of two texts; "" when they are equal. A last line
 * without '\n' is marked "\ No newline at end of file". */
char *textdiff_unified(const char *old_text, const char *new_text,
		       const char *old_label, const char *new_label);

#endif
