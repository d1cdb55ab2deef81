// SPDX-License-Identifier: GPL-2.0-only
/* aioguard watch: live per-disk submission latency, allocation and off-CPU
 * time of QEMU processes (libvirt domains, or given pids / process names). */
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
#include "session.h"
#include "util.h"
#include "virt.h"

#define RECENT_STALLS 5

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

struct watch {
	struct watch_opts opt;
	struct session s;               /* the observer, names, slots */
	virConnectPtr conn;             /* NULL with --pid/--comm */
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

static struct event_names disk_names(struct watch *w, uint64_t dev, uint64_t ino)
{
	return session_names(&w->s, dev, ino, w->opt.io_known, w->opt.io);
}

static bool blocks_guest(struct watch *w, uint64_t dev, uint64_t ino, uint32_t syscall)
{
	return session_blocks_guest(&w->s, dev, ino, syscall, w->opt.io_known, w->opt.io);
}

/* libvirt mode: re-read the domains; returns how many QEMUs run, -1 when
 * libvirt could not say. */
static int refresh_domains(struct watch *w)
{
	struct disk_list fresh = {0};

	if (inventory_collect(w->conn, NULL, INVENTORY_INSPECT | INVENTORY_RUNNING_ONLY, &fresh) < 0) {
		disk_list_free(&fresh);
		return -1;
	}
	return (int)session_set_inventory(&w->s, &fresh, NULL, NULL);
}

/* false once there is nothing left to watch: every --pid exited (with no
 * --comm to bring new ones). */
static bool refresh_processes(struct watch *w)
{
	if (w->conn) {
		refresh_domains(w);
		return true;
	}
	if (session_watch_pids(&w->s, w->opt.pids, w->opt.n_pids))
		return true;
	if (!w->opt.comm)
		log_err("every watched process has exited");
	return w->opt.comm;
}

/* ---- output ------------------------------------------------------------ */

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
		       session_row_name(&w->s, s->dev, s->ino, name, sizeof(name)),
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
	       (unsigned long)observer_lost_events(w->s.obs));
	printf("%-40s %-14s %8s %10s %9s %9s %9s %10s %10s %6s %6s\n", "DISK", "SYSCALL", "SUBMITS",
	       "MB", "P50us", "P99us", "MAXus", "ALLOCus", "OFFCPUus", "STALLS", "POOLW");
	for (size_t i = 0; i < n; i++) {
		const struct agg_interval *r = &rows[i];
		bool guest = blocks_guest(w, r->key.dev, r->key.ino, r->key.syscall);
		char stalls[24], pool[24];
		snprintf(stalls, sizeof(stalls), guest ? "%lu" : "-", (unsigned long)r->stalls);
		snprintf(pool, sizeof(pool), guest ? "-" : "%lu", (unsigned long)r->stalls);
		printf("%-40.40s %-14s %8lu %10.2f %9.1f %9.1f %9.1f %10.0f %10.0f %6s %6s\n",
		       session_row_name(&w->s, r->key.dev, r->key.ino, name, sizeof(name)),
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

	session_on_new_file(&w->s, pid, dev, ino);
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

/* Close the interval: read, print, and keep the read for the next one. */
static void emit_interval(struct watch *w)
{
	struct agg_interval *rows;
	struct agg_snapshot tmp;

	session_read(&w->s, &w->now);
	size_t n = agg_intervals(&w->prev, &w->now, &rows);
	bool unnamed = false;
	for (size_t i = 0; i < n; i++)
		unnamed |= !disk_names(w, rows[i].key.dev, rows[i].key.ino).source;
	if (unnamed)
		session_scan_watched(&w->s, true);
	double ts = wall_clock_s();
	for (size_t i = 0; w->opt.json && i < n; i++) {
		struct event_names names = disk_names(w, rows[i].key.dev, rows[i].key.ino);
		event_emit(stdout, event_disk(&rows[i], ts, &names,
					      blocks_guest(w, rows[i].key.dev, rows[i].key.ino,
							   rows[i].key.syscall)));
	}
	if (!w->opt.json)
		print_table(w, rows, n);
	session_forget_idle(&w->s, &w->now);
	free(rows);
	tmp = w->prev;
	w->prev = w->now;
	w->now = tmp;
}

/* ---- set-up and the loop ------------------------------------------------- */

static int check_pids(const struct watch_opts *o)
{
	for (size_t i = 0; i < o->n_pids; i++)
		if (kill(o->pids[i], 0) < 0 && errno == ESRCH)
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
	if (check_pids(&w->opt) || session_open(&w->s, &oo, !w->opt.n_pids && !w->opt.comm))
		return -1;
	fprintf(stderr, "aioguard: attached: %s\n", observer_hooks(w->s.obs));
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

	session_read(&w->s, &w->prev);
	while (!stop_requested) {
		double now = mono_clock_s(), until = fmin(fmin(next, end), now + 0.2);
		if (now >= end)
			break;
		int r = observer_poll(w->s.obs, (int)fmax(0, (until - now) * 1000), &cb);
		if (r < 0 && r != -EINTR) {
			log_err("reading stall events failed: %s", strerror(-r));
			break;
		}
		session_scan_watched(&w->s, false);
		if (mono_clock_s() >= next) {
			emit_interval(w);
			if (!refresh_processes(w))
				break;
			next += w->opt.interval_s * ceil((mono_clock_s() - next) / w->opt.interval_s + 1e-9);
		}
	}
	observer_poll(w->s.obs, 0, &cb);
	emit_interval(w);
}

static void cleanup(struct watch *w)
{
	session_close(&w->s);
	if (w->conn)
		virConnectClose(w->conn);
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
		event_emit(stdout, event_summary(wall_clock_s(), observer_lost_events(w.s.obs)));
	else
		printf("lost events (stalls and pool waits): %lu\n",
		       (unsigned long)observer_lost_events(w.s.obs));
	cleanup(&w);
	return 0;
}
