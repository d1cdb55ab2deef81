// SPDX-License-Identifier: GPL-2.0-only
/* aioguard watch: live per-disk submission latency, allocation and off-CPU
 * time of QEMU processes (libvirt domains, or given pids / process names). */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aggregate.h"
#include "commands.h"
#include "events.h"
#include "inventory.h"
#include "observer.h"
#include "util.h"
#include "virt.h"

#define RECENT_STALLS 5
#define FD_RESCAN_S 1.0
#define IDLE_FORGET_S 600.0  /* free the observer's slot of a disk this idle */

struct watch_opts {
	const char *uri;
	pid_t *pids;
	size_t n_pids;
	const char *comm;
	double interval_s, duration_s;
	uint64_t threshold_us;
	enum observer_syscall_hooks hooks;
	bool json;
	bool io_known;        /* --io: the mode of the processes' files */
	enum io_mode io;
};

/* A file or block device some watched process had open (/proc/PID/fd). */
struct disk_name {
	uint64_t dev, ino;
	char *source;
};

struct pid_scan {
	pid_t pid;
	double at;    /* CLOCK_MONOTONIC seconds of the last fd scan */
};

struct key_seen {
	struct agg_key key;
	double active;  /* CLOCK_MONOTONIC seconds of the last submission */
};

struct watch {
	struct watch_opts opt;
	struct observer *obs;
	virConnectPtr conn;             /* NULL with --pid/--comm */
	struct disk_list disks;         /* libvirt mode */
	struct disk_name *names;
	size_t n_names;
	struct pid_scan *scans;
	size_t n_scans;
	struct key_seen *seen;
	size_t n_seen;
	struct agg_snapshot prev, now;
	struct observer_stall recent[RECENT_STALLS];        /* stalls */
	size_t n_recent;
	struct observer_stall recent_pool[RECENT_STALLS];   /* pool waits */
	size_t n_recent_pool;
	bool tty;
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	stop_requested = 1;
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: aioguard watch [OPTIONS]\n"
		"\n"
		"Times every I/O submission of QEMU processes with eBPF: io_submit\n"
		"(io='native'), io_uring_enter (io='io_uring') and the worker-pool syscalls\n"
		"(pwritev, preadv, pwrite64, pread64, their v2 forms, fallocate,\n"
		"fdatasync). Per disk and syscall and per interval it reports submissions,\n"
		"bytes, p50/p99/max latency, time spent allocating filesystem blocks (ext4,\n"
		"xfs) and time switched off CPU, and every call that took at least the\n"
		"threshold, kept apart by who waited:\n"
		"  stall      the thread that submits the guest's I/O in the disk's mode\n"
		"             was blocked: io_submit (native), io_uring_enter (io_uring),\n"
		"             the pool's reads and writes (threads, or no io: QEMU's default)\n"
		"  pool wait  a worker of QEMU's pool waited: fdatasync and fallocate in\n"
		"             every mode, reads and writes of a native or io_uring disk\n"
		"A disk's mode comes from libvirt; with --pid/--comm from --io, and without\n"
		"it reads and writes count as pool waits (only io='threads' makes them the\n"
		"submission).\n"
		"\n"
		"Without --pid/--comm it watches the QEMU of every running libvirt domain\n"
		"(the list is refreshed each interval) and names disks domain/target.\n"
		"With --pid/--comm it does not use libvirt and names disks by path.\n"
		"\n"
		"Options:\n"
		"  -c, --connect URI     libvirt URI (default: libvirt's default)\n"
		"  -p, --pid PID         watch this process (repeatable)\n"
		"      --comm NAME       watch every process with this name, also those\n"
		"                        started later (first 15 characters, like ps)\n"
		"  -i, --interval S      seconds per interval (default 1)\n"
		"  -d, --duration S      stop after S seconds (default: until SIGINT/SIGTERM)\n"
		"  -t, --threshold-us N  a call this long is a stall or a pool wait\n"
		"                        (default 1000)\n"
		"      --io MODE         with --pid/--comm: the processes run their files\n"
		"                        on native, threads or io_uring (qemu-img's -i,\n"
		"                        QEMU's aio=; QEMU's default is threads)\n"
		"      --json            JSON lines: {\"type\":\"disk\"} per disk, syscall and\n"
		"                        interval with submissions; {\"type\":\"stall\"} per\n"
		"                        stall, {\"type\":\"pool_wait\"} per pool wait;\n"
		"                        {\"type\":\"summary\"} at the end\n"
		"      --hooks KIND      what times the syscalls: auto (default: the first\n"
		"                        the kernel allows of fentry, syscalls, raw),\n"
		"                        fentry (fentry/fexit), syscalls (per-syscall\n"
		"                        tracepoints), raw (tp_btf raw_syscalls)\n"
		"  -v, --verbose         say more (libbpf messages, mounts)\n"
		"  -h, --help            this text\n"
		"\n"
		"Latency percentiles come from log2 histograms, interpolated inside a\n"
		"bucket and capped at the measured maximum. Needs root.\n");
}

static int parse_number(const char *s, double min, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < min)
		return -1;
	*out = v;
	return 0;
}

static int parse_pid(const char *s, struct watch_opts *o)
{
	double v;
	if (parse_number(s, 1, &v) || v != floor(v) || v > INT_MAX)
		return -1;
	o->pids = xrealloc(o->pids, (o->n_pids + 1) * sizeof(*o->pids));
	o->pids[o->n_pids++] = (pid_t)v;
	return 0;
}

static int parse_hooks(const char *s, enum observer_syscall_hooks *out)
{
	if (!strcmp(s, "auto"))
		*out = OBSERVER_HOOKS_AUTO;
	else if (!strcmp(s, "syscalls"))
		*out = OBSERVER_HOOKS_SYSCALLS;
	else if (!strcmp(s, "raw"))
		*out = OBSERVER_HOOKS_RAW_SYSCALLS;
	else if (!strcmp(s, "fentry"))
		*out = OBSERVER_HOOKS_FENTRY;
	else
		return -1;
	return 0;
}

enum { OPT_COMM = 256, OPT_JSON, OPT_HOOKS, OPT_IO };

/* 0 to run, 1 when --help was shown, -1 on a usage error (said). */
static int parse_args(int argc, char **argv, struct watch_opts *o)
{
	static const struct option longopts[] = {
		{"connect", required_argument, NULL, 'c'},
		{"pid", required_argument, NULL, 'p'},
		{"comm", required_argument, NULL, OPT_COMM},
		{"interval", required_argument, NULL, 'i'},
		{"duration", required_argument, NULL, 'd'},
		{"threshold-us", required_argument, NULL, 't'},
		{"json", no_argument, NULL, OPT_JSON},
		{"hooks", required_argument, NULL, OPT_HOOKS},
		{"io", required_argument, NULL, OPT_IO},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	double v;
	int c;

	*o = (struct watch_opts){.interval_s = 1, .threshold_us = 1000};
	log_set_command("watch");
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:p:i:d:t:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': o->uri = optarg; break;
		case 'p':
			if (parse_pid(optarg, o))
				return usage_error("--pid: not a process id: '%s'", optarg), -1;
			break;
		case OPT_COMM: o->comm = optarg; break;
		case 'i':
			if (parse_number(optarg, 0.05, &o->interval_s))
				return usage_error("--interval: need seconds >= 0.05, got '%s'", optarg), -1;
			break;
		case 'd':
			if (parse_number(optarg, 0, &o->duration_s))
				return usage_error("--duration: need seconds >= 0, got '%s'", optarg), -1;
			break;
		case 't':
			if (parse_number(optarg, 1, &v) || v > 1e9)
				return usage_error("--threshold-us: need microseconds >= 1, got '%s'", optarg), -1;
			o->threshold_us = (uint64_t)v;
			break;
		case OPT_JSON: o->json = true; break;
		case OPT_HOOKS:
			if (parse_hooks(optarg, &o->hooks))
				return usage_error("--hooks: auto, fentry, syscalls or raw, got '%s'", optarg), -1;
			break;
		case OPT_IO:
			if (!io_mode_parse(optarg, &o->io) || o->io == IO_MODE_UNSET)
				return usage_error("--io: native, threads or io_uring, got '%s'", optarg), -1;
			o->io_known = true;
			break;
		case 'v': log_verbose = true; break;
		case 'h': usage(stdout); return 1;
		default: return option_error(c, argv), -1;
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]), -1;
	if (o->comm && !*o->comm)
		return usage_error("--comm: empty name"), -1;
	if (o->io_known && !o->n_pids && !o->comm)
		return usage_error("--io: only with --pid or --comm (libvirt says each disk's mode)"), -1;
	return 0;
}

static bool pid_in(const pid_t *v, size_t n, pid_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == pid)
			return true;
	return false;
}

/* ---- names of disks ---------------------------------------------------- */

static struct disk_name *name_find(struct watch *w, uint64_t dev, uint64_t ino)
{
	for (size_t i = 0; i < w->n_names; i++)
		if (w->names[i].dev == dev && w->names[i].ino == ino)
			return &w->names[i];
	return NULL;
}

static void name_add(struct watch *w, uint64_t dev, uint64_t ino, const char *path)
{
	if (name_find(w, dev, ino))
		return;
	w->names = xrealloc(w->names, (w->n_names + 1) * sizeof(*w->names));
	w->names[w->n_names++] = (struct disk_name){.dev = dev, .ino = ino,
						    .source = xstrdup(path)};
}

/* Remember the (dev, ino) -> path of every file and block device pid has open. */
static void scan_pid_fds(struct watch *w, pid_t pid)
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
				name_add(w, st.st_dev, st.st_ino, link);
			else if (S_ISBLK(st.st_mode))
				name_add(w, st.st_rdev, 0, link);
		}
		free(fd);
	}
	if (d)
		closedir(d);
}

static struct pid_scan *scan_entry(struct watch *w, pid_t pid)
{
	for (size_t i = 0; i < w->n_scans; i++)
		if (w->scans[i].pid == pid)
			return &w->scans[i];
	w->scans = xrealloc(w->scans, (w->n_scans + 1) * sizeof(*w->scans));
	w->scans[w->n_scans] = (struct pid_scan){.pid = pid, .at = -1e9};
	return &w->scans[w->n_scans++];
}

/* Rescan the fds of watched processes now and then: short-lived ones (a
 * qemu-img run) must be named while they still have their files open. */
static void scan_watched(struct watch *w, bool force)
{
	pid_t *pids;
	size_t n = observer_watched(w->obs, &pids);
	double now = mono_clock_s();

	for (size_t i = 0; i < n; i++) {
		struct pid_scan *s = scan_entry(w, pids[i]);
		if (force || now - s->at >= FD_RESCAN_S) {
			scan_pid_fds(w, pids[i]);
			s->at = now;
		}
	}
	for (size_t i = 0; i < w->n_scans;)  /* forget processes gone */
		if (pid_in(pids, n, w->scans[i].pid))
			i++;
		else
			w->scans[i] = w->scans[--w->n_scans];
	free(pids);
}

/* The libvirt disk behind (dev, ino), or NULL. */
static const struct disk *libvirt_disk(struct watch *w, uint64_t dev, uint64_t ino)
{
	return w->conn ? disk_list_find_devino(&w->disks, dev, ino) : NULL;
}

static const char *io_label(enum io_mode io)
{
	return io_mode_name(io) ? io_mode_name(io) : "default";
}

/* domain, target, source and mode of a disk; any may be NULL. */
static struct event_names disk_names(struct watch *w, uint64_t dev, uint64_t ino)
{
	const struct disk *d = libvirt_disk(w, dev, ino);
	const struct disk_name *n = d ? NULL : name_find(w, dev, ino);

	if (d)
		return (struct event_names){d->domain, d->target, d->source, io_label(d->io)};
	return (struct event_names){NULL, NULL, n ? n->source : NULL,
				    w->opt.io_known ? io_label(w->opt.io) : NULL};
}

/* A stall or a pool wait (agg_blocks_guest): by the disk's mode in libvirt,
 * else by --io; a file no libvirt disk owns (a backing file) has no known
 * mode. */
static bool blocks_guest(struct watch *w, uint64_t dev, uint64_t ino, uint32_t syscall)
{
	const struct disk *d = libvirt_disk(w, dev, ino);

	if (d)
		return agg_blocks_guest(syscall, d->io, true);
	return agg_blocks_guest(syscall, w->opt.io, !w->conn && w->opt.io_known);
}

/* ---- which processes ----------------------------------------------------- */

static bool pid_alive(pid_t pid)
{
	return kill(pid, 0) == 0 || errno != ESRCH;
}

/* Forget processes that exited (and, in libvirt mode, QEMUs no longer of a
 * running domain); watch the new ones. */
static void sync_watched(struct watch *w, const pid_t *want, size_t n_want, bool exact)
{
	pid_t *cur;
	size_t n = observer_watched(w->obs, &cur);

	for (size_t i = 0; i < n; i++)
		if (!pid_alive(cur[i]) || (exact && !pid_in(want, n_want, cur[i])))
			observer_watch_tgid(w->obs, cur[i], false);
	for (size_t i = 0; i < n_want; i++)
		if (!pid_in(cur, n, want[i]) && pid_alive(want[i]))
			observer_watch_tgid(w->obs, want[i], true);
	free(cur);
}

/* libvirt mode: re-read the domains; returns how many QEMUs run. */
static int refresh_domains(struct watch *w)
{
	struct disk_list fresh = {0};
	pid_t *pids = NULL;
	size_t n = 0;

	if (inventory_collect(w->conn, NULL, INVENTORY_INSPECT | INVENTORY_RUNNING_ONLY, &fresh) < 0)
		return -1;
	disk_list_free(&w->disks);
	w->disks = fresh;
	for (size_t i = 0; i < w->disks.n; i++) {
		const struct disk *d = &w->disks.v[i];
		if (!d->domain_active || d->qemu_pid <= 0 || pid_in(pids, n, d->qemu_pid))
			continue;
		pids = xrealloc(pids, (n + 1) * sizeof(*pids));
		pids[n++] = d->qemu_pid;
	}
	sync_watched(w, pids, n, true);
	free(pids);
	return (int)n;
}

/* false once there is nothing left to watch: every --pid exited (with no
 * --comm to bring new ones). */
static bool refresh_processes(struct watch *w)
{
	if (w->conn) {
		refresh_domains(w);
		return true;
	}
	sync_watched(w, w->opt.pids, w->opt.n_pids, false);
	for (size_t i = 0; i < w->opt.n_pids; i++)
		if (pid_alive(w->opt.pids[i]))
			return true;
	if (!w->opt.comm)
		log_err("every watched process has exited");
	return w->opt.comm;
}

/* ---- output ------------------------------------------------------------ */

static const char *row_name(struct watch *w, uint64_t dev, uint64_t ino, char *buf, size_t len)
{
	struct event_names n = disk_names(w, dev, ino);

	if (n.domain && n.target)
		snprintf(buf, len, "%s/%s", n.domain, n.target);
	else if (n.source)
		snprintf(buf, len, "%s", n.source);
	else
		snprintf(buf, len, "dev %lu ino %lu", (unsigned long)dev, (unsigned long)ino);
	return buf;
}

static void print_recent(struct watch *w, const char *title, const struct observer_stall *v,
			 size_t n)
{
	char name[64];

	if (n)
		printf("\n%s:\n", title);
	for (size_t i = 0; i < n; i++) {
		const struct observer_stall *s = &v[i];
		printf("  %-16s tid %-7d %-14s %-40.40s %9.0f us (alloc %.0f, off-CPU %.0f)\n",
		       s->thread, (int)s->tid, obs_syscall_name(s->syscall),
		       row_name(w, s->dev, s->ino, name, sizeof(name)),
		       (double)s->duration_ns / 1e3, (double)s->alloc_ns / 1e3,
		       (double)s->offcpu_ns / 1e3);
	}
}

static void print_table(struct watch *w, const struct agg_interval *rows, size_t n)
{
	char name[64];

	if (w->tty)
		fputs("\033[H\033[2J", stdout);
	printf("aioguard watch  every %.3gs  stall or pool wait >= %lu us  lost events %lu\n",
	       w->opt.interval_s, (unsigned long)w->opt.threshold_us,
	       (unsigned long)observer_lost_events(w->obs));
	printf("%-40s %-14s %8s %10s %9s %9s %9s %10s %10s %6s %6s\n", "DISK", "SYSCALL", "SUBMITS",
	       "MB", "P50us", "P99us", "MAXus", "ALLOCus", "OFFCPUus", "STALLS", "POOLW");
	for (size_t i = 0; i < n; i++) {
		const struct agg_interval *r = &rows[i];
		bool guest = blocks_guest(w, r->key.dev, r->key.ino, r->key.syscall);
		char stalls[24], pool[24];
		snprintf(stalls, sizeof(stalls), guest ? "%lu" : "-", (unsigned long)r->stalls);
		snprintf(pool, sizeof(pool), guest ? "-" : "%lu", (unsigned long)r->stalls);
		printf("%-40.40s %-14s %8lu %10.2f %9.1f %9.1f %9.1f %10.0f %10.0f %6s %6s\n",
		       row_name(w, r->key.dev, r->key.ino, name, sizeof(name)),
		       obs_syscall_name(r->key.syscall), (unsigned long)r->submits,
		       (double)r->bytes / 1e6, r->p50_us, r->p99_us, r->max_us, r->alloc_us,
		       r->offcpu_us, stalls, pool);
	}
	print_recent(w, "recent stalls (the submitting thread blocked)", w->recent, w->n_recent);
	print_recent(w, "recent pool waits (a worker of QEMU's pool; not a stall)", w->recent_pool,
		     w->n_recent_pool);
	fflush(stdout);
}

static void on_new_file(pid_t pid, uint64_t dev, uint64_t ino, void *ctx)
{
	struct watch *w = ctx;

	if (!disk_names(w, dev, ino).source)
		scan_pid_fds(w, pid);
}

static void on_stall(const struct observer_stall *s, void *ctx)
{
	struct watch *w = ctx;
	bool guest;

	on_new_file(s->pid, s->dev, s->ino, w);
	guest = blocks_guest(w, s->dev, s->ino, s->syscall);
	if (w->opt.json) {
		struct event_names n = disk_names(w, s->dev, s->ino);
		event_emit(stdout, event_stall(s, &n, guest));
		return;
	}
	struct observer_stall *v = guest ? w->recent : w->recent_pool;
	size_t *n = guest ? &w->n_recent : &w->n_recent_pool;
	if (*n == RECENT_STALLS)
		memmove(v, v + 1, sizeof(v[0]) * --*n);
	v[(*n)++] = *s;
}

static struct key_seen *key_seen(struct watch *w, const struct agg_key *k, double now)
{
	for (size_t i = 0; i < w->n_seen; i++)
		if (agg_key_equal(&w->seen[i].key, k))
			return &w->seen[i];
	w->seen = xrealloc(w->seen, (w->n_seen + 1) * sizeof(*w->seen));
	w->seen[w->n_seen] = (struct key_seen){.key = *k, .active = now};
	return &w->seen[w->n_seen++];
}

/* The observer counts OBS_MAX_DISKS (disk, syscall) pairs at once: give
 * back the slots of those idle for long (closed images, stopped domains). */
static void forget_idle(struct watch *w, const struct agg_interval *rows, size_t n)
{
	double now = mono_clock_s();

	for (size_t i = 0; i < n; i++)
		key_seen(w, &rows[i].key, now)->active = now;
	for (size_t i = 0; i < w->now.n; i++) {
		struct key_seen *k = key_seen(w, &w->now.v[i].key, now);
		if (now - k->active >= IDLE_FORGET_S) {
			observer_forget(w->obs, &k->key);
			*k = w->seen[--w->n_seen];
		}
	}
}

/* Close the interval: read, print, and keep the read for the next one. */
static void emit_interval(struct watch *w)
{
	struct agg_interval *rows;
	struct agg_snapshot tmp;

	observer_read(w->obs, &w->now);
	size_t n = agg_intervals(&w->prev, &w->now, &rows);
	bool unnamed = false;
	for (size_t i = 0; i < n; i++)
		unnamed |= !name_find(w, rows[i].key.dev, rows[i].key.ino);
	if (unnamed)
		scan_watched(w, true);
	double ts = wall_clock_s();
	for (size_t i = 0; w->opt.json && i < n; i++) {
		struct event_names names = disk_names(w, rows[i].key.dev, rows[i].key.ino);
		event_emit(stdout, event_disk(&rows[i], ts, &names,
					      blocks_guest(w, rows[i].key.dev, rows[i].key.ino,
							   rows[i].key.syscall)));
	}
	if (!w->opt.json)
		print_table(w, rows, n);
	forget_idle(w, rows, n);
	free(rows);
	tmp = w->prev;
	w->prev = w->now;
	w->now = tmp;
}

/* ---- set-up and the loop ------------------------------------------------- */

static int check_pids(const struct watch_opts *o)
{
	for (size_t i = 0; i < o->n_pids; i++)
		if (!pid_alive(o->pids[i]))
			return log_err("no process with pid %d", (int)o->pids[i]), -1;
	return 0;
}

static int start_libvirt(struct watch *w)
{
	virt_init();
	w->conn = virt_open(w->opt.uri);
	if (!w->conn)
		return -1;
	int n = refresh_domains(w);
	if (n < 0)
		return -1;
	if (n == 0)
		return log_err("no running libvirt domain to watch (use --pid or --comm for "
			       "other processes)"), -1;
	return 0;
}

static int start(struct watch *w)
{
	struct observer_options oo = {
		.stall_threshold_ns = w->opt.threshold_us * 1000,
		.comm = w->opt.comm,
		.syscall_hooks = w->opt.hooks,
	};

	if (w->opt.comm && strlen(w->opt.comm) >= OBS_COMM_LEN)
		log_info("--comm: the kernel keeps %d characters of a name: matching '%.*s'",
			 OBS_COMM_LEN - 1, OBS_COMM_LEN - 1, w->opt.comm);
	if (check_pids(&w->opt) || observer_open(&oo, &w->obs))
		return -1;
	fprintf(stderr, "aioguard: attached: %s\n", observer_hooks(w->obs));
	if (!w->opt.n_pids && !w->opt.comm)
		return start_libvirt(w);
	refresh_processes(w);
	return 0;
}

static void loop(struct watch *w)
{
	double t0 = mono_clock_s(), next = t0 + w->opt.interval_s;
	double end = w->opt.duration_s > 0 ? t0 + w->opt.duration_s : INFINITY;
	const struct observer_callbacks cb = {.stall = on_stall, .new_file = on_new_file, .ctx = w};

	observer_read(w->obs, &w->prev);
	while (!stop_requested) {
		double now = mono_clock_s(), until = fmin(fmin(next, end), now + 0.2);
		if (now >= end)
			break;
		int r = observer_poll(w->obs, (int)fmax(0, (until - now) * 1000), &cb);
		if (r < 0 && r != -EINTR) {
			log_err("reading stall events failed: %s", strerror(-r));
			break;
		}
		scan_watched(w, false);
		if (mono_clock_s() >= next) {
			emit_interval(w);
			if (!refresh_processes(w))
				break;
			next += w->opt.interval_s * ceil((mono_clock_s() - next) / w->opt.interval_s + 1e-9);
		}
	}
	observer_poll(w->obs, 0, &cb);
	emit_interval(w);
}

static void cleanup(struct watch *w)
{
	observer_close(w->obs);
	if (w->conn)
		virConnectClose(w->conn);
	disk_list_free(&w->disks);
	for (size_t i = 0; i < w->n_names; i++)
		free(w->names[i].source);
	free(w->names);
	free(w->scans);
	free(w->seen);
	agg_snapshot_free(&w->prev);
	agg_snapshot_free(&w->now);
	free(w->opt.pids);
}

int cmd_watch(int argc, char **argv)
{
	struct watch w = {0};
	struct sigaction sa = {.sa_handler = on_signal};
	int r = parse_args(argc, argv, &w.opt);

	if (r) {
		free(w.opt.pids);
		return r > 0 ? 0 : 2;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	json_c_set_serialization_double_format("%.3f", JSON_C_OPTION_GLOBAL);
	w.tty = !w.opt.json && isatty(STDOUT_FILENO);
	if (start(&w)) {
		cleanup(&w);
		return 1;
	}
	loop(&w);
	if (w.opt.json)
		event_emit(stdout, event_summary(wall_clock_s(), observer_lost_events(w.obs)));
	else
		printf("lost events (stalls and pool waits): %lu\n",
		       (unsigned long)observer_lost_events(w.obs));
	cleanup(&w);
	return 0;
}
