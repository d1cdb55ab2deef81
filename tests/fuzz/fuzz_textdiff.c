// SPDX-License-Identifier: GPL-2.0-only
/* textdiff_unified() on two arbitrary texts: the input is split at its first
 * NUL byte (at its middle when it has none). Oracle: the diff, applied to
 * the old text as `patch` would, gives the new text, its hunk headers count
 * the lines they hold, and it is "" exactly when the texts are equal. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "textdiff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NO_NEWLINE "\\ No newline at end of file\n"

struct lines {
	const char **s;
	size_t *len;   /* including '\n' when there is one */
	size_t n;
};

static struct lines split(const char *t)
{
	struct lines l = {0};
	size_t cap = 0;

	while (*t) {
		const char *nl = strchr(t, '\n');
		size_t len = nl ? (size_t)(nl - t) + 1 : strlen(t);

		if (l.n == cap) {
			cap = cap ? 2 * cap : 64;
			l.s = realloc(l.s, cap * sizeof(*l.s));
			l.len = realloc(l.len, cap * sizeof(*l.len));
			if (!l.s || !l.len)
				abort();
		}
		l.s[l.n] = t;
		l.len[l.n++] = len;
		t += len;
	}
	return l;
}

struct out {
	char *s;
	size_t len;
	size_t lines;
};

static void put(struct out *o, const char *s, size_t n)
{
	memcpy(o->s + o->len, s, n);
	o->len += n;
	o->lines++;
}

/* "-a" / "-a,b" (and '+'): start line and count as diff -u means them. */
static const char *range(const char *p, char sign, size_t *start, size_t *count)
{
	char *end;

	if (*p++ != sign)
		abort();
	*start = strtoul(p, &end, 10);
	*count = 1;
	if (end == p)
		abort();
	p = end;
	if (*p == ',') {
		*count = strtoul(p + 1, &end, 10);
		if (end == p + 1)
			abort();
		p = end;
	}
	return p;
}

/* Apply diff to a; compare the result with b. */
static void check_patch(const char *diff, const char *a, const char *b,
			const char *la, const char *lb)
{
	struct lines old = split(a), d = split(diff);
	struct out res = {malloc(strlen(a) + strlen(diff) + 1), 0, 0};
	size_t i = 0, pos = 0;   /* diff line, old lines consumed */
	char hdr[512];

	if (!res.s)
		abort();
	snprintf(hdr, sizeof(hdr), "--- %s\n", la);
	if (d.n < 3 || d.len[0] != strlen(hdr) || memcmp(d.s[0], hdr, d.len[0]))
		abort();
	snprintf(hdr, sizeof(hdr), "+++ %s\n", lb);
	if (d.len[1] != strlen(hdr) || memcmp(d.s[1], hdr, d.len[1]))
		abort();
	i = 2;
	while (i < d.n) {
		size_t os, oc, ns, nc, first, seen_o = 0, seen_n = 0;
		const char *p = d.s[i];

		if (strncmp(p, "@@ ", 3))
			abort();
		p = range(p + 3, '-', &os, &oc);
		if (*p++ != ' ')
			abort();
		p = range(p, '+', &ns, &nc);
		if (strncmp(p, " @@\n", 4))
			abort();
		/* An empty range names the line before it. */
		first = oc ? os - 1 : os;
		if (oc && !os)
			abort();
		if (first < pos || first > old.n)
			abort();
		for (; pos < first; pos++)
			put(&res, old.s[pos], old.len[pos]);
		/* The new side must start where the result is. */
		if ((nc ? ns - 1 : ns) != res.lines || (nc && !ns))
			abort();
		for (i++; i < d.n && d.s[i][0] != '@'; i++) {
			char op = d.s[i][0];
			size_t len = d.len[i] - 1;   /* without the op char */
			bool nonl = i + 1 < d.n && d.len[i + 1] == strlen(NO_NEWLINE) &&
				    !memcmp(d.s[i + 1], NO_NEWLINE, d.len[i + 1]);

			if (d.s[i][d.len[i] - 1] != '\n')
				abort();   /* every diff line ends in '\n' */
			if (nonl)
				len--;     /* the text line had no '\n' */
			if (op == ' ' || op == '-') {
				if (pos >= old.n || old.len[pos] != len ||
				    memcmp(old.s[pos], d.s[i] + 1, len))
					abort();
				pos++;
				seen_o++;
			}
			if (op == ' ' || op == '+') {
				put(&res, d.s[i] + 1, len);
				seen_n++;
			}
			if (op != ' ' && op != '-' && op != '+')
				abort();
			if (nonl)
				i++;
		}
		if (seen_o != oc || seen_n != nc)
			abort();
	}
	for (; pos < old.n; pos++)
		put(&res, old.s[pos], old.len[pos]);
	if (res.len != strlen(b) || memcmp(res.s, b, res.len))
		abort();
	free(res.s);
	free(old.s);
	free(old.len);
	free(d.s);
	free(d.len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 2), *a, *b, *diff;
	const uint8_t *nul = memchr(data, '\0', size);
	size_t cut = nul ? (size_t)(nul - data) : size / 2;
	static const char la[] = "domain.xml (current)", lb[] = "domain.xml (new)";

	if (!buf)
		return 0;
	/* a = data[0, cut) NUL b = data[cut + (nul ? 1 : 0), size) NUL */
	memcpy(buf, data, cut);
	buf[cut] = '\0';
	a = buf;
	b = buf + cut + 1;
	memcpy(b, data + cut + (nul ? 1 : 0), size - cut - (nul ? 1 : 0));
	b[size - cut - (nul ? 1 : 0)] = '\0';

	diff = textdiff_unified(a, b, la, lb);
	if (!diff)
		abort();
	if (!strcmp(a, b)) {
		if (*diff)
			abort();
	} else {
		if (!*diff)
			abort();
		check_patch(diff, a, b, la, lb);
	}
	free(diff);
	free(buf);
	return 0;
}
