// SPDX-License-Identifier: GPL-2.0-only
#include "session.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "inventory.h"
#include "util.h"

#define FD_RESCAN_S 1.0

struct session_name {
	uint64_t dev, ino;
	char *source;
};

struct session_scan {
	pid_t pid;
	double at;          /* CLOCK_MONOTONIC seconds of the last fd scan */
};

struct session_gone {
	uint64_t dev, ino;
	double at;          /* CLOCK_MONOTONIC seconds it left */
};

struct session_key {
	struct agg_key key;
	uint64_t count;     /* calls as of the last session_forget_idle */
	double active;      /* CLOCK_MONOTONIC seconds count last grew */
	bool was_disk;      /* a libvirt disk's while counted */
};

int session_open(struct session *s, const struct observer_options *opts, bool libvirt)
{
	struct observer_options o = *opts;
	uint32_t env_slots;

	*s = (struct session){.libvirt = libvirt};
	if (observer_slots_from_env(&env_slots) < 0)
		return -1;
	if (env_slots)   /* tests run out of slots without a config */
		o.slots = env_slots;
	return observer_open(&o, &s->obs);
}

void session_close(struct session *s)
{
	observer_close(s->obs);
	disk_list_free(&s->disks);
	for (size_t i = 0; i < s->n_names; i++)
		free(s->names[i].source);
	free(s->names);
	free(s->scans);
	free(s->keys);
	free(s->gone);
	*s = (struct session){0};
}

/* ---- which processes ------------------------------------------------------ */

static bool pid_in(const pid_t *v, size_t n, pid_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == pid)
			return true;
	return false;
}

static bool pid_alive(pid_t pid)
{
	return kill(pid, 0) == 0 || errno != ESRCH;
}

/* Stop watching processes that exited (and, exact, any not wanted); watch
 * the wanted ones that live. */
static void sync_watched(struct session *s, const pid_t *want, size_t n_want, bool exact)
{
	pid_t *cur;
	size_t n = observer_watched(s->obs, &cur);

	for (size_t i = 0; i < n; i++)
		if (!pid_alive(cur[i]) || (exact && !pid_in(want, n_want, cur[i])))
			observer_watch_tgid(s->obs, cur[i], false);
	for (size_t i = 0; i < n_want; i++)
		if (!pid_in(cur, n, want[i]) && pid_alive(want[i]))
			observer_watch_tgid(s->obs, want[i], true);
	free(cur);
}

/* The disks of the old inventory missing from the fresh one: a call
 * their QEMU makes on its way out (the flush at shutdown) creates a key
 * after the disk has left, and that key's slot must come back as fast. */
static void remember_gone(struct session *s, const struct disk_list *fresh)
{
	double now = mono_clock_s();
	size_t kept = 0;

	for (size_t i = 0; i < s->n_gone; i++)
		if (now - s->gone[i].at < SESSION_IDLE_FORGET_S)
			s->gone[kept++] = s->gone[i];
	s->n_gone = kept;
	for (size_t i = 0; i < s->disks.n; i++) {
		const struct disk *d = &s->disks.v[i];
		if (!d->image.dev || disk_list_find_devino(fresh, d->image.dev, d->image.ino))
			continue;
		s->gone = xrealloc(s->gone, (s->n_gone + 1) * sizeof(*s->gone));
		s->gone[s->n_gone++] = (struct session_gone){d->image.dev, d->image.ino, now};
	}
}

static bool left_libvirt(const struct session *s, uint64_t dev, uint64_t ino)
{
	for (size_t i = 0; i < s->n_gone; i++)
		if (s->gone[i].dev == dev && s->gone[i].ino == ino)
			return true;
	return false;
}

size_t session_set_inventory(struct session *s, struct disk_list *fresh,
			     session_scope_fn in_scope, const void *ctx)
{
	pid_t *pids = xcalloc(fresh->n + 1, sizeof(*pids));
	size_t n = 0;

	remember_gone(s, fresh);
	disk_list_free(&s->disks);
	s->disks = *fresh;
	*fresh = (struct disk_list){0};
	for (size_t i = 0; i < s->disks.n; i++) {
		const struct disk *d = &s->disks.v[i];
		if (d->domain_active && d->qemu_pid > 0 && !pid_in(pids, n, d->qemu_pid) &&
		    (!in_scope || in_scope(d->domain, ctx)))
			pids[n++] = d->qemu_pid;
	}
	sync_watched(s, pids, n, true);
	free(pids);
	return n;
}

bool session_watch_pids(struct session *s, const pid_t *pids, size_t n)
{
	sync_watched(s, pids, n, false);
	for (size_t i = 0; i < n; i++)
		if (pid_alive(pids[i]))
			return true;
	return false;
}

/* ---- names ---------------------------------------------------------------- */

const struct disk *session_disk(const struct session *s, uint64_t dev, uint64_t ino)
{
	return s->libvirt ? disk_list_find_devino(&s->disks, dev, ino) : NULL;
}

static struct session_name *name_find(struct session *s, uint64_t dev, uint64_t ino)
{
	for (size_t i = 0; i < s->n_names; i++)
		if (s->names[i].dev == dev && s->names[i].ino == ino)
			return &s->names[i];
	return NULL;
}

static void name_add(struct session *s, uint64_t dev, uint64_t ino, const char *path)
{
	if (name_find(s, dev, ino))
		return;
	s->names = xrealloc(s->names, (s->n_names + 1) * sizeof(*s->names));
	s->names[s->n_names++] = (struct session_name){.dev = dev, .ino = ino,
						       .source = xstrdup(path)};
}

/* Remember the (dev, ino) -> path of every file and block device pid has open. */
static void scan_pid_fds(struct session *s, pid_t pid)
{
	char dir[64], link[PATH_MAX];
	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(dir);
	struct dirent *de;

	while (d && (de = readdir(d))) {
		struct stat st;
		char *fd = xasprintf("%s/%s", dir, de->d_name);
		ssize_t n = readlink(fd, link, sizeof(link) - 1);
		if (n > 0 && link[0] == '/' && stat(fd, &st) == 0) {
			link[n] = '\0';
			if (S_ISREG(st.st_mode))
				name_add(s, st.st_dev, st.st_ino, link);
			else if (S_ISBLK(st.st_mode))
				name_add(s, st.st_rdev, 0, link);
		}
		free(fd);
	}
	if (d)
		closedir(d);
}

static struct session_scan *scan_entry(struct session *s, pid_t pid)
{
	for (size_t i = 0; i < s->n_scans; i++)
		if (s->scans[i].pid == pid)
			return &s->scans[i];
	s->scans = xrealloc(s->scans, (s->n_scans + 1) * sizeof(*s->scans));
	s->scans[s->n_scans] = (struct session_scan){.pid = pid, .at = -1e9};
	return &s->scans[s->n_scans++];
}

void session_scan_watched(struct session *s, bool force)
{
	pid_t *pids;
	size_t n = observer_watched(s->obs, &pids);
	double now = mono_clock_s();

	for (size_t i = 0; i < n; i++) {
		struct session_scan *sc = scan_entry(s, pids[i]);
		if (force || now - sc->at >= FD_RESCAN_S) {
			scan_pid_fds(s, pids[i]);
			sc->at = now;
		}
	}
	for (size_t i = 0; i < s->n_scans;)   /* forget processes gone */
		if (pid_in(pids, n, s->scans[i].pid))
			i++;
		else
			s->scans[i] = s->scans[--s->n_scans];
	free(pids);
}

static const char *io_label(enum io_mode io)
{
	return io_mode_name(io) ? io_mode_name(io) : "default";
}

struct event_names session_names(struct session *s, uint64_t dev, uint64_t ino,
				 bool io_known, enum io_mode io)
{
	const struct disk *d = session_disk(s, dev, ino);
	const struct session_name *n = d ? NULL : name_find(s, dev, ino);

	if (d)
		return (struct event_names){d->domain, d->target, d->source, io_label(d->io)};
	return (struct event_names){NULL, NULL, n ? n->source : NULL,
				    io_known ? io_label(io) : NULL};
}

bool session_blocks_guest(const struct session *s, uint64_t dev, uint64_t ino,
			  uint32_t syscall, bool io_known, enum io_mode io)
{
	const struct disk *d = session_disk(s, dev, ino);

	if (d)
		return agg_blocks_guest(syscall, d->io, true);
	return agg_blocks_guest(syscall, io, !s->libvirt && io_known);
}

const char *session_row_name(struct session *s, uint64_t dev, uint64_t ino, char *buf,
			     size_t len)
{
	struct event_names n = session_names(s, dev, ino, false, IO_MODE_UNSET);

	if (n.domain && n.target)
		snprintf(buf, len, "%s/%s", n.domain, n.target);
	else if (n.source)
		snprintf(buf, len, "%s", n.source);
	else
		snprintf(buf, len, "dev %lu ino %lu", (unsigned long)dev, (unsigned long)ino);
	return buf;
}

void session_on_new_file(struct session *s, pid_t pid, uint64_t dev, uint64_t ino)
{
	if (!session_disk(s, dev, ino) && !name_find(s, dev, ino))
		scan_pid_fds(s, pid);
}

/* ---- counting slots ------------------------------------------------------- */

int session_read(struct session *s, struct agg_snapshot *out)
{
	return observer_read(s->obs, out);
}

static struct session_key *key_find(struct session *s, const struct agg_entry *e, double now)
{
	for (size_t i = 0; i < s->n_keys; i++)
		if (agg_key_equal(&s->keys[i].key, &e->key))
			return &s->keys[i];
	s->keys = xrealloc(s->keys, (s->n_keys + 1) * sizeof(*s->keys));
	s->keys[s->n_keys] = (struct session_key){.key = e->key, .count = e->c.count, .active = now};
	return &s->keys[s->n_keys++];
}

/* A live libvirt disk keeps its slot (its counters are its metrics); one
 * that left libvirt gives it back as soon as it had no call for one
 * interval (the read that saw its last calls is behind us); anything
 * else after SESSION_IDLE_FORGET_S. */
static bool key_done(struct session *s, struct session_key *k, const struct agg_entry *e,
		     double now)
{
	bool disk = session_disk(s, e->key.dev, e->key.ino) != NULL;
	bool idle = e->c.count == k->count && k->active < now;

	if (e->c.count != k->count) {
		k->count = e->c.count;
		k->active = now;
	}
	k->was_disk |= disk || left_libvirt(s, e->key.dev, e->key.ino);
	if (disk)
		return false;
	return (k->was_disk && idle) || now - k->active >= SESSION_IDLE_FORGET_S;
}

void session_forget_idle(struct session *s, struct agg_snapshot *snap)
{
	double now = mono_clock_s();
	bool *seen = xcalloc(s->n_keys + snap->n, sizeof(*seen));

	for (size_t i = 0; i < snap->n;) {
		struct session_key *k = key_find(s, &snap->v[i], now);
		if (!key_done(s, k, &snap->v[i], now)) {
			seen[k - s->keys] = true;
			i++;
			continue;
		}
		if (observer_forget(s->obs, &k->key) == 0)
			s->forgotten++;
		snap->v[i] = snap->v[--snap->n];
	}
	size_t kept = 0;   /* keys not counted any more leave the table */
	for (size_t i = 0; i < s->n_keys; i++)
		if (seen[i])
			s->keys[kept++] = s->keys[i];
	s->n_keys = kept;
	free(seen);
}

uint32_t session_slots_total(const struct session *s)
{
	return observer_slots_total(s->obs);
}

uint32_t session_slots_in_use(const struct session *s)
{
	return observer_slots_in_use(s->obs);
}

uint64_t session_untracked(const struct session *s)
{
	return observer_untracked(s->obs);
}
