// SPDX-License-Identifier: GPL-2.0-only
/* Common prefix and suffix are cut first, so the LCS table only spans the
 * changed middle: for an XML edit that is a line or two. */
#include "textdiff.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define CONTEXT 3
/* Beyond this many table cells the middle is shown as all deletions, then
 * all insertions: still a correct diff, just not a minimal one. */
#define MAX_LCS_CELLS (16u << 20)

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

struct line {
	const char *s;
	size_t len;             /* including its '\n', if it has one */
};

struct text {
	struct line *v;
	size_t n;
};

enum op_kind { OP_KEEP = ' ', OP_DEL = '-', OP_ADD = '+' };

struct op {
	char kind;
	const struct line *line;
};

struct script {
	struct op *v;
	size_t n;
};

struct buf {
	char *s;
	size_t len, cap;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->s = xrealloc(b->s, b->cap);
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static struct text split_lines(const char *s)
{
	struct text t = {0};
	size_t cap = 0;

	while (*s) {
		const char *nl = strchr(s, '\n');
		size_t len = nl ? (size_t)(nl - s) + 1 : strlen(s);

		if (t.n == cap) {
			cap = cap ? 2 * cap : 64;
			t.v = xrealloc(t.v, cap * sizeof(*t.v));
		}
		t.v[t.n++] = (struct line){s, len};
		s += len;
	}
	return t;
}

static bool same(const struct line *a, const struct line *b)
{
	return a->len == b->len && !memcmp(a->s, b->s, a->len);
}

static void push(struct script *sc, char kind, const struct line *line)
{
	sc->v[sc->n++] = (struct op){kind, line};
}

/* a[0..n) against b[0..m): lcs[i][j] is the LCS length of the suffixes
 * a[i..) and b[j..); walking it forwards yields deletions before insertions. */
static void diff_middle(struct script *sc, const struct line *a, size_t n,
			const struct line *b, size_t m)
{
	size_t w = m + 1, i, j;
	uint32_t *lcs = NULL;

	if (n + 1 <= MAX_LCS_CELLS / w) {
		lcs = xcalloc((n + 1) * w, sizeof(*lcs));
		for (i = n; i-- > 0;)
			for (j = m; j-- > 0;)
				lcs[i * w + j] = same(&a[i], &b[j]) ?
					lcs[(i + 1) * w + j + 1] + 1 :
					MAX(lcs[(i + 1) * w + j], lcs[i * w + j + 1]);
	}
	for (i = 0, j = 0; i < n || j < m;) {
		if (lcs && i < n && j < m && same(&a[i], &b[j])) {
			push(sc, OP_KEEP, &a[i++]);
			j++;
		} else if (i < n && (j == m || !lcs || lcs[(i + 1) * w + j] >= lcs[i * w + j + 1])) {
			push(sc, OP_DEL, &a[i++]);
		} else {
			push(sc, OP_ADD, &b[j++]);
		}
	}
	free(lcs);
}

static struct script edit_script(const struct text *a, const struct text *b)
{
	struct script sc = {xcalloc(a->n + b->n, sizeof(struct op)), 0};
	size_t pre = 0, suf = 0, i;

	while (pre < a->n && pre < b->n && same(&a->v[pre], &b->v[pre]))
		pre++;
	while (suf < a->n - pre && suf < b->n - pre &&
	       same(&a->v[a->n - 1 - suf], &b->v[b->n - 1 - suf]))
		suf++;
	for (i = 0; i < pre; i++)
		push(&sc, OP_KEEP, &a->v[i]);
	/* v is NULL for an empty text: no arithmetic on a null pointer */
	diff_middle(&sc, a->n ? a->v + pre : NULL, a->n - pre - suf,
		    b->n ? b->v + pre : NULL, b->n - pre - suf);
	for (i = a->n - suf; i < a->n; i++)
		push(&sc, OP_KEEP, &a->v[i]);
	return sc;
}

static void emit_line(struct buf *b, const struct op *op)
{
	const struct line *l = op->line;

	buf_add(b, &op->kind, 1);
	buf_add(b, l->s, l->len);
	if (!l->len || l->s[l->len - 1] != '\n')
		buf_str(b, "\n\\ No newline at end of file\n");
}

/* Hunk range as diff -u writes it: ",1" is implied, and an empty range
 * names the line before it. */
static void emit_range(struct buf *b, char sign, size_t start, size_t count)
{
	char s[64];

	if (count == 1)
		snprintf(s, sizeof(s), "%c%zu", sign, start + 1);
	else
		snprintf(s, sizeof(s), "%c%zu,%zu", sign, count ? start + 1 : start, count);
	buf_str(b, s);
}

/* Changes closer than 2 * CONTEXT kept lines share one hunk. */
static void emit_hunks(struct buf *b, const struct script *sc)
{
	size_t k = 0, a = 0, n = 0;  /* ops done, old and new lines they cover */

	for (;;) {
		size_t first = k, start, last, end, i, na = 0, nn = 0;

		while (first < sc->n && sc->v[first].kind == OP_KEEP)
			first++;
		if (first == sc->n)
			break;
		start = first - MIN(first - k, CONTEXT);
		a += start - k;
		n += start - k;
		for (last = first, i = first + 1; i < sc->n; i++) {
			if (sc->v[i].kind == OP_KEEP)
				continue;
			if (i - last - 1 > 2 * CONTEXT)
				break;
			last = i;
		}
		end = MIN(last + 1 + CONTEXT, sc->n);
		for (i = start; i < end; i++) {
			na += sc->v[i].kind != OP_ADD;
			nn += sc->v[i].kind != OP_DEL;
		}
		buf_str(b, "@@ ");
		emit_range(b, '-', a, na);
		buf_str(b, " ");
		emit_range(b, '+', n, nn);
		buf_str(b, " @@\n");
		for (i = start; i < end; i++)
			emit_line(b, &sc->v[i]);
		a += na;
		n += nn;
		k = end;
	}
}

static bool has_changes(const struct script *sc)
{
	for (size_t i = 0; i < sc->n; i++)
		if (sc->v[i].kind != OP_KEEP)
			return true;
	return false;
}

char *textdiff_unified(const char *old_text, const char *new_text,
		       const char *old_label, const char *new_label)
{
	struct text a = split_lines(old_text), b = split_lines(new_text);
	struct script sc = edit_script(&a, &b);
	struct buf out = {0};

	buf_str(&out, "");  /* "", not NULL, when equal */
	if (has_changes(&sc)) {
		buf_str(&out, "--- ");
		buf_str(&out, old_label);
		buf_str(&out, "\n+++ ");
		buf_str(&out, new_label);
		buf_str(&out, "\n");
		emit_hunks(&out, &sc);
	}
	free(sc.v);
	free(a.v);
	free(b.v);
	return out.s;
}
