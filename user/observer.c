// SPDX-License-Identifier: GPL-2.0-only
/* Loader of bpf/observer.bpf.c, in the style of libbpf-tools: open, set the
 * read-only settings, probe which hooks this kernel has and disable the
 * others, load, attach one by one so that every missing piece is named. */
#include "observer.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "loadlog.h"
#include "observer.skel.h"
#include "util.h"

#define TRACEFS "/sys/kernel/tracing"
#define VMLINUX_BTF "/sys/kernel/btf/vmlinux"
#define MAX_LINKS 48   /* 2 per timed syscall + the optional hooks */

static const struct timed_syscall {
	enum obs_syscall sc;
	long nr;
	const char *name;   /* also names the classic tracepoints */
} timed_syscalls[] = {
	{OBS_SC_IO_SUBMIT, SYS_io_submit, "io_submit"},
	{OBS_SC_IO_URING_ENTER, SYS_io_uring_enter, "io_uring_enter"},
	{OBS_SC_PWRITEV, SYS_pwritev, "pwritev"},
	{OBS_SC_PREADV, SYS_preadv, "preadv"},
	{OBS_SC_PWRITEV2, SYS_pwritev2, "pwritev2"},
	{OBS_SC_PREADV2, SYS_preadv2, "preadv2"},
	{OBS_SC_PWRITE64, SYS_pwrite64, "pwrite64"},
	{OBS_SC_PREAD64, SYS_pread64, "pread64"},
	{OBS_SC_FALLOCATE, SYS_fallocate, "fallocate"},
	{OBS_SC_FDATASYNC, SYS_fdatasync, "fdatasync"},
};
#define N_TIMED_SYSCALLS (sizeof(timed_syscalls) / sizeof(timed_syscalls[0]))

/* Hooks the observer works without, each with what is lost. A hook whose
 * tracepoint was renamed lists the old one's programs in `alt`: whichever
 * set this kernel has is loaded. */
static const struct optional_hook {
	const char *what;
	const char *lost;
	const char *progs[4];
	const char *alt[4];
} optional_hooks[] = {
	{"off-CPU", "offcpu_us stays 0", {"sched_switch"}, {NULL}},
	{"ext4 alloc", "alloc_us stays 0 on ext4",
	 {"ext4_ext_map_enter", "ext4_ext_map_exit", "ext4_ind_map_enter", "ext4_ind_map_exit"}, {NULL}},
	{"xfs alloc", "alloc_us stays 0 on xfs",
	 {"xfs_log_reserve", "xfs_iomap_alloc", "xfs_alloc_file_space"}, {NULL}},
	{"direct I/O", "io_submit reads its iocbs from user memory (slower)",
	 {"iomap_dio_rw_begin"}, {"aio_read_enter", "aio_write_enter"}},   /* fentry on 6.1 */
	{"io_uring", "io_uring_enter is not attributed to any disk", {"uring_submit_req"},
	 {"uring_submit_sqe"}},   /* io_uring_submit_sqe before 6.4 */
};
#define N_OPTIONAL_HOOKS (sizeof(optional_hooks) / sizeof(optional_hooks[0]))

struct observer {
	struct observer_bpf *skel;
	struct ring_buffer *rb;
	struct bpf_link *links[MAX_LINKS];
	size_t n_links;
	int ncpus;
	struct obs_disk_stats *percpu;   /* read buffer, one per CPU */
	double realtime_offset;          /* CLOCK_REALTIME - CLOCK_MONOTONIC */
	const struct observer_callbacks *cb;   /* during observer_poll() */
	uint32_t slots, slots_in_use;
	char hooks[512];
	struct observer_hook hook[1 + N_OPTIONAL_HOOKS];   /* syscalls, then optional */
};

const char *obs_syscall_name(enum obs_syscall sc)
{
	for (size_t i = 0; i < N_TIMED_SYSCALLS; i++)
		if (timed_syscalls[i].sc == sc)
			return timed_syscalls[i].name;
	return "?";
}

/* The kernel's MINORBITS is 20; glibc's makedev() spreads the numbers
 * differently. The one place the two encodings meet. */
uint64_t observer_dev_from_kernel(uint64_t kdev)
{
	return makedev(kdev >> 20, kdev & ((1U << 20) - 1));
}

uint64_t observer_dev_to_kernel(uint64_t dev)
{
	return ((uint64_t)major(dev) << 20) | minor(dev);
}

static double clock_seconds(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* While loading, libbpf's messages (the verifier log among them) are kept
 * here, so that a refused load can be told in a few lines: which program,
 * and the verifier's last words. */
static struct {
	bool on;
	char *buf;
	size_t len;
} load_log;

static void load_log_append(const char *fmt, va_list ap)
{
	va_list aq;
	va_copy(aq, ap);
	int n = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	if (n <= 0)
		return;
	load_log.buf = xrealloc(load_log.buf, load_log.len + n + 1);
	vsnprintf(load_log.buf + load_log.len, n + 1, fmt, ap);
	load_log.len += n;
}

/* libbpf's warnings always (but while loading: kept for load_error), its
 * chatter with -v. */
static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (load_log.on && !log_verbose) {
		if (level == LIBBPF_WARN)
			load_log_append(fmt, ap);
		return 0;
	}
	return level == LIBBPF_WARN || log_verbose ? vfprintf(stderr, fmt, ap) : 0;
}

static void libbpf_log_capture(bool on)
{
	if (on) {
		free(load_log.buf);
		load_log.buf = NULL;
		load_log.len = 0;
	}
	load_log.on = on;
}

static int check_prerequisites(void)
{
	if (geteuid() != 0) {
		log_err("watching needs root (CAP_BPF and CAP_PERFMON) to load eBPF programs");
		return -1;
	}
	if (access(VMLINUX_BTF, R_OK) != 0) {
		log_err("the kernel has no BTF (%s missing: needs CONFIG_DEBUG_INFO_BTF=y)",
			VMLINUX_BTF);
		return -1;
	}
	return 0;
}

/* Classic tracepoints are found through tracefs; mount it when missing. */
static void ensure_tracefs(void)
{
	if (access(TRACEFS "/events", F_OK) == 0)
		return;
	if (mount("nodev", TRACEFS, "tracefs", 0, NULL) != 0)
		log_info("cannot mount tracefs on %s: %s", TRACEFS, strerror(errno));
	else
		log_info("mounted tracefs on %s", TRACEFS);
}

/* The kernel's BTF, for probing only: ~6 MiB, released once loaded. */
static struct btf *probe_btf;

static struct btf *vmlinux_btf(void)
{
	if (!probe_btf)
		probe_btf = btf__load_vmlinux_btf();
	return libbpf_get_error(probe_btf) ? NULL : probe_btf;
}

static void release_probe_btf(void)
{
	if (!libbpf_get_error(probe_btf))
		btf__free(probe_btf);
	probe_btf = NULL;
}

/* Is tracepoint tp known to BTF: vmlinux's, or that of the loaded module
 * its name starts with (xfs_iomap_alloc -> /sys/kernel/btf/xfs)? */
static bool tp_in_btf(const char *tp)
{
	struct btf *base = vmlinux_btf();
	char type[128], module[64];

	if (!base)
		return false;
	snprintf(type, sizeof(type), "btf_trace_%s", tp);
	if (btf__find_by_name_kind(base, type, BTF_KIND_TYPEDEF) > 0)
		return true;
	snprintf(module, sizeof(module), "%.*s", (int)strcspn(tp, "_"), tp);
	char *path = xasprintf("/sys/kernel/btf/%s", module);
	struct btf *mod = btf__parse_split(path, base);
	free(path);
	if (libbpf_get_error(mod))
		return false;
	bool found = btf__find_by_name_kind(mod, type, BTF_KIND_TYPEDEF) > 0;
	btf__free(mod);
	return found;
}

static const struct bpf_insn return_0[] = {
	{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0},
	{.code = BPF_JMP | BPF_EXIT},
};

/* Load a two-instruction BPF_PROG_TYPE_TRACING program on the BTF type
 * `name` of `kind`: its fd, or -1. */
static int load_tracing(enum bpf_attach_type type, const char *name, __u32 kind)
{
	struct btf *btf = vmlinux_btf();
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = type);
	int id = btf ? btf__find_by_name_kind(btf, name, kind) : -1;

	if (id <= 0)
		return -1;
	opts.attach_btf_id = id;
	return bpf_prog_load(BPF_PROG_TYPE_TRACING, NULL, "GPL", return_0, 2, &opts);
}

/* Does such a program load? Some kernels refuse some attach types (here:
 * fentry under lockdown) while allowing others. */
static bool tracing_loads(enum bpf_attach_type type, const char *name, __u32 kind)
{
	int fd = load_tracing(type, name, kind);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* Does an fentry program load and attach on function `fn`? Loading is not
 * enough: 6.1's trampolines refuse at attach (ENOTSUPP) functions of more
 * than 6 arguments, and functions ftrace cannot patch. */
static bool fentry_attaches(const char *fn)
{
	int fd = load_tracing(BPF_TRACE_FENTRY, fn, BTF_KIND_FUNC);

	if (fd < 0)
		return false;
	int link = bpf_raw_tracepoint_open(NULL, fd);
	close(fd);
	if (link < 0)
		return false;
	close(link);
	return true;
}

static bool tp_btf_allowed(void)
{
	return tracing_loads(BPF_TRACE_RAW_TP, "btf_trace_sched_switch", BTF_KIND_TYPEDEF);
}

#if defined(__x86_64__)
#define SYSCALL_FN_PREFIX "__x64_sys_"
#elif defined(__aarch64__)
#define SYSCALL_FN_PREFIX "__arm64_sys_"
#else
#error "SYSCALL_FN_PREFIX: add this architecture (as in bpf/core_fixes.bpf.h)"
#endif

static bool fentry_allowed(void)
{
	return tracing_loads(BPF_TRACE_FENTRY, SYSCALL_FN_PREFIX "io_submit", BTF_KIND_FUNC);
}

static bool classic_syscall_tps_present(void)
{
	return access(TRACEFS "/events/syscalls/sys_enter_io_submit", F_OK) == 0;
}

static const char *prog_tracepoint(const struct bpf_program *p)
{
	const char *sec = bpf_program__section_name(p);
	const char *slash = strchr(sec, '/');
	return slash ? slash + 1 : sec;
}

static struct bpf_program *prog(struct observer *o, const char *name)
{
	return bpf_object__find_program_by_name(o->skel->obj, name);
}

static void set_autoload(struct observer *o, const char *const *names, size_t n, bool on)
{
	for (size_t i = 0; i < n && names[i]; i++)
		bpf_program__set_autoload(prog(o, names[i]), on);
}

static const char *hooks_name(enum observer_syscall_hooks h)
{
	switch (h) {
	case OBSERVER_HOOKS_FENTRY: return "fentry/fexit on the syscall functions";
	case OBSERVER_HOOKS_SYSCALLS: return "tracepoint syscalls:sys_{enter,exit}_<name>";
	case OBSERVER_HOOKS_RAW_SYSCALLS: return "tp_btf raw_syscalls:sys_{enter,exit}";
	default: return "?";
	}
}

/* Programs per kind: fentry_<sc>/fexit_<sc>, tp_enter_<sc>/tp_exit_<sc>,
 * btf_sys_enter/btf_sys_exit. Only those of `h` load. */
static void set_syscall_autoload(struct observer *o, enum observer_syscall_hooks h)
{
	char name[64];

	for (size_t i = 0; i < N_TIMED_SYSCALLS; i++) {
		const char *sc = timed_syscalls[i].name;
		snprintf(name, sizeof(name), "fentry_%s", sc);
		bpf_program__set_autoload(prog(o, name), h == OBSERVER_HOOKS_FENTRY);
		snprintf(name, sizeof(name), "fexit_%s", sc);
		bpf_program__set_autoload(prog(o, name), h == OBSERVER_HOOKS_FENTRY);
		snprintf(name, sizeof(name), "tp_enter_%s", sc);
		bpf_program__set_autoload(prog(o, name), h == OBSERVER_HOOKS_SYSCALLS);
		snprintf(name, sizeof(name), "tp_exit_%s", sc);
		bpf_program__set_autoload(prog(o, name), h == OBSERVER_HOOKS_SYSCALLS);
	}
	bpf_program__set_autoload(prog(o, "btf_sys_enter"), h == OBSERVER_HOOKS_RAW_SYSCALLS);
	bpf_program__set_autoload(prog(o, "btf_sys_exit"), h == OBSERVER_HOOKS_RAW_SYSCALLS);
}

/* The kinds to try, best first. fentry costs the other tasks nothing; the
 * classic tracepoints only run programs for the syscalls timed, where raw
 * sys_enter/exit run them for every syscall of every process. */
static size_t syscall_hook_candidates(enum observer_syscall_hooks want, bool tp_btf_ok,
				      enum observer_syscall_hooks out[3])
{
	bool ok[] = {
		[OBSERVER_HOOKS_FENTRY] = fentry_allowed(),
		[OBSERVER_HOOKS_SYSCALLS] = classic_syscall_tps_present(),
		[OBSERVER_HOOKS_RAW_SYSCALLS] = tp_btf_ok && tp_in_btf("sys_enter") &&
						tp_in_btf("sys_exit"),
	};
	size_t n = 0;

	for (int h = OBSERVER_HOOKS_FENTRY; h <= OBSERVER_HOOKS_RAW_SYSCALLS; h++)
		if (ok[h] && (want == OBSERVER_HOOKS_AUTO || want == (enum observer_syscall_hooks)h))
			out[n++] = h;
	if (n == 0 && want != OBSERVER_HOOKS_AUTO)
		log_err("%s: refused or missing on this kernel%s", hooks_name(want),
			want == OBSERVER_HOOKS_SYSCALLS ? " (CONFIG_FTRACE_SYSCALLS, tracefs)" : "");
	else if (n == 0)
		log_err("no syscall hook: fentry refused, no syscalls:sys_enter_* tracepoints, "
			"no tp_btf raw_syscalls");
	else if (want == OBSERVER_HOOKS_AUTO && !ok[OBSERVER_HOOKS_FENTRY])
		log_info("fentry/fexit refused by this kernel: using %s", hooks_name(out[0]));
	return n;
}

/* Can program p attach here: a tp_btf tracepoint this kernel has, or an
 * fentry on a function this kernel has and lets fentry hook? */
static bool hook_usable(const struct bpf_program *p, bool tp_btf_ok)
{
	if (strncmp(bpf_program__section_name(p), "fentry/", 7) == 0)
		return fentry_attaches(prog_tracepoint(p));
	return tp_btf_ok && tp_in_btf(prog_tracepoint(p));
}

/* The first hook (tracepoint or function) of programs `names` this kernel
 * lacks or refuses, or NULL. */
static const char *missing_tracepoint(struct observer *o, const char *const names[4], bool tp_btf_ok)
{
	for (size_t i = 0; i < 4 && names[i]; i++)
		if (!hook_usable(prog(o, names[i]), tp_btf_ok))
			return prog_tracepoint(prog(o, names[i]));
	return NULL;
}

/* For each optional hook group, the program set this kernel has (its own
 * or the alternative); the others are not loaded. */
static void probe_optional_hooks(struct observer *o, bool tp_btf_ok,
				 const char *const *use[N_OPTIONAL_HOOKS])
{
	for (size_t g = 0; g < N_OPTIONAL_HOOKS; g++) {
		const struct optional_hook *h = &optional_hooks[g];
		const char *missing = missing_tracepoint(o, h->progs, tp_btf_ok);

		use[g] = NULL;
		if (!missing)
			use[g] = h->progs;
		else if (h->alt[0] && !missing_tracepoint(o, h->alt, tp_btf_ok))
			use[g] = h->alt;
		set_autoload(o, h->progs, 4, use[g] == h->progs);
		set_autoload(o, h->alt, 4, h->alt[0] && use[g] == h->alt);
		if (!use[g])
			log_err("warning: %s: tracepoint %s %s: %s", h->what, missing,
				tp_btf_ok ? "not found" : "not usable (tp_btf refused)", h->lost);
	}
}

/* May BPF programs read memory through helpers? lockdown=confidentiality
 * forbids bpf_probe_read_kernel (LOCKDOWN_BPF_READ_KERNEL), and libbpf then
 * rewrites bpf_probe_read_user into the equally forbidden bpf_probe_read. */
static bool probe_reads_allowed(void)
{
	/* bpf_probe_read_kernel(fp - 8, 8, NULL); return 0. A load, not
	 * libbpf_probe_bpf_helper(): libbpf 1.1 reads "unknown func" in the
	 * verifier log as "missing" but not 6.12's "cannot use helper". */
	const struct bpf_insn prog[] = {
		{.code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = BPF_REG_1, .src_reg = BPF_REG_10},
		{.code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = BPF_REG_1, .imm = -8},
		{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_2, .imm = 8},
		{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_3, .imm = 0},
		{.code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_probe_read_kernel},
		{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0},
		{.code = BPF_JMP | BPF_EXIT},
	};
	int fd = bpf_prog_load(BPF_PROG_TYPE_TRACEPOINT, NULL, "GPL", prog,
			       sizeof(prog) / sizeof(prog[0]), NULL);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* Without helper reads, only bpf_rdonly_cast (6.2) reaches the file behind
 * a descriptor. */
static bool rdonly_cast_present(void)
{
	struct btf *btf = vmlinux_btf();

	return btf && btf__find_by_name_kind(btf, "bpf_rdonly_cast", BTF_KIND_FUNC) > 0;
}

/* What is lost where reads are forbidden; -1 when nothing can be timed. */
static int check_probe_reads(bool *ok)
{
	*ok = probe_reads_allowed();
	if (*ok)
		return 0;
	if (!rdonly_cast_present()) {
		log_err("this kernel forbids BPF reads of kernel memory (lockdown=confidentiality?) "
			"and has no bpf_rdonly_cast (added in 6.2): aioguard cannot tell which file a "
			"submission goes to here. lockdown=integrity, which Secure Boot sets, allows it");
		return -1;
	}
	log_err("warning: BPF reads of kernel and user memory forbidden (lockdown="
		"confidentiality?): io_submit is attributed through direct I/O only, io_uring "
		"bytes and registered files are not counted");
	return 0;
}

static void set_settings(struct observer *o, const struct observer_options *opts, bool probe_reads_ok)
{
	struct observer_bpf__rodata *ro = o->skel->rodata;

	ro->probe_reads_ok = probe_reads_ok;

	o->skel->data->stall_threshold_ns = opts->stall_threshold_ns ? opts->stall_threshold_ns : 1000000;
	if (opts->comm && *opts->comm) {
		ro->comm_filter_on = true;
		strncpy((char *)ro->comm_filter, opts->comm, OBS_COMM_LEN - 1);
	}
	for (size_t i = 0; i < N_TIMED_SYSCALLS; i++)
		if (timed_syscalls[i].nr < OBS_SYSCALL_TABLE)
			ro->syscall_kind[timed_syscalls[i].nr] = timed_syscalls[i].sc;
}

static int keep_link(struct observer *o, struct bpf_link *link, const char *what)
{
	if (!link) {
		log_err("cannot attach %s: %s", what, strerror(errno));
		return -1;
	}
	if (o->n_links == MAX_LINKS) {  /* a hook added without raising MAX_LINKS */
		bpf_link__destroy(link);
		log_err("cannot attach %s: more than %d links", what, MAX_LINKS);
		return -1;
	}
	o->links[o->n_links++] = link;
	return 0;
}

/* One program per syscall and kind, named <prefix><syscall>. */
static int attach_per_syscall(struct observer *o, const char *prefix)
{
	char name[64];

	for (size_t i = 0; i < N_TIMED_SYSCALLS; i++) {
		snprintf(name, sizeof(name), "%s%s", prefix, timed_syscalls[i].name);
		if (keep_link(o, bpf_program__attach(prog(o, name)), name))
			return -1;
	}
	return 0;
}

static int attach_syscalls(struct observer *o, enum observer_syscall_hooks h)
{
	switch (h) {
	case OBSERVER_HOOKS_FENTRY:
		return attach_per_syscall(o, "fentry_") || attach_per_syscall(o, "fexit_") ? -1 : 0;
	case OBSERVER_HOOKS_RAW_SYSCALLS:
		return keep_link(o, bpf_program__attach(prog(o, "btf_sys_enter")), "sys_enter") ||
		       keep_link(o, bpf_program__attach(prog(o, "btf_sys_exit")), "sys_exit") ? -1 : 0;
	default:
		return attach_per_syscall(o, "tp_enter_") || attach_per_syscall(o, "tp_exit_") ? -1 : 0;
	}
}

static int attach_all(struct observer *o, enum observer_syscall_hooks sys,
		      const char *const *use[])
{
	if (attach_syscalls(o, sys))
		return -1;
	for (size_t g = 0; g < N_OPTIONAL_HOOKS; g++)
		for (size_t i = 0; use[g] && i < 4 && use[g][i]; i++)
			if (keep_link(o, bpf_program__attach(prog(o, use[g][i])), use[g][i]))
				return -1;
	return 0;
}

static void describe_hooks(struct observer *o, enum observer_syscall_hooks sys,
			   const char *const *use[])
{
	o->hook[0] = (struct observer_hook){"syscalls", hooks_name(sys), true};
	for (size_t g = 0; g < N_OPTIONAL_HOOKS; g++)
		o->hook[1 + g] = (struct observer_hook){
			optional_hooks[g].what,
			use[g] ? bpf_program__section_name(prog(o, use[g][0])) : "missing",
			use[g] != NULL};
	int n = 0;
	for (size_t i = 0; i < 1 + N_OPTIONAL_HOOKS && n < (int)sizeof(o->hooks); i++)
		n += snprintf(o->hooks + n, sizeof(o->hooks) - n, "%s%s: %s", i ? "; " : "",
			      o->hook[i].what, o->hook[i].how);
}

size_t observer_hook_list(const struct observer *o, const struct observer_hook **out)
{
	*out = o->hook;
	return 1 + N_OPTIONAL_HOOKS;
}

/* The last n lines of the verifier's log, each to log_err with the name
 * of the program it refused. */
static void print_verifier_tail(const char *log, const char *name, int n)
{
	const char *p;
	size_t len = loadlog_verifier_tail(log, n, &p);

	for (const char *end = p + len; p && p < end;) {
		const char *nl = memchr(p, '\n', end - p);
		size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if (l)
			log_err("  %s: %.*s", name, (int)l, p);
		p += l + 1;
	}
}

/* A refused load, told as what failed: EPERM is about privileges (or a
 * lockdown that forbids this kind of program); EACCES and EINVAL are the
 * verifier's or the kernel's verdict on one program. */
static int load_error(int err, enum observer_syscall_hooks sys)
{
	char name[128];

	loadlog_failed_program(load_log.buf, name, sizeof(name));
	if (err == -EPERM) {
		log_err("the kernel refused to load the eBPF programs%s%s (%s): root with "
			"CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN needed; lockdown may forbid "
			"this kind of program", *name ? ": " : "", name, strerror(-err));
	} else {
		log_err("cannot load the eBPF programs (%s): %s%s%s%s", hooks_name(sys),
			*name ? "program " : "", name, *name ? " refused: " : "", strerror(-err));
		if (*name)
			print_verifier_tail(load_log.buf, name, 6);
		if (!*name || !log_verbose)
			log_err("  (run with -v for libbpf's whole log)");
	}
	libbpf_log_capture(false);
	return -1;
}

int observer_decode_event(const void *data, size_t size, double realtime_offset,
			  struct observer_stall *out)
{
	struct obs_event e;

	if (size < sizeof(e))
		return -1;
	memcpy(&e, data, sizeof(e));   /* the ring buffer guarantees no alignment to us */
	*out = (struct observer_stall){
		.ts = (double)e.ts_ns / 1e9 + realtime_offset,
		.pid = (pid_t)e.pid,
		.tid = (pid_t)e.tid,
		.dev = observer_dev_from_kernel(e.dev),
		.ino = e.ino,
		.syscall = e.syscall < OBS_SC_COUNT ? e.syscall : OBS_SC_NONE,
		.duration_ns = e.duration_ns,
		.alloc_ns = e.alloc_ns,
		.offcpu_ns = e.offcpu_ns,
		.bytes = e.bytes,
		.iocbs = e.iocbs,
	};
	memcpy(out->thread, e.comm, sizeof(out->thread));
	out->thread[sizeof(out->thread) - 1] = '\0';
	return e.type == OBS_EVENT_STALL || e.type == OBS_EVENT_NEW_FILE ? (int)e.type : -1;
}

static int handle_event(void *ctx, void *data, size_t size)
{
	struct observer *o = ctx;
	struct observer_stall s;

	if (!o->cb)
		return 0;
	switch (observer_decode_event(data, size, o->realtime_offset, &s)) {
	case OBS_EVENT_STALL:
		if (o->cb->stall)
			o->cb->stall(&s, o->cb->ctx);
		break;
	case OBS_EVENT_NEW_FILE:
		if (o->cb->new_file)
			o->cb->new_file(s.pid, s.dev, s.ino, o->cb->ctx);
		break;
	}
	return 0;
}

/* Every stats slot starts free. */
static int fill_free_slots(struct observer *o)
{
	int fd = bpf_map__fd(o->skel->maps.free_slots);

	for (__u32 slot = 0; slot < o->slots; slot++)
		if (bpf_map_update_elem(fd, NULL, &slot, 0)) {
			log_err("cannot fill the stats slot queue: %s", strerror(errno));
			return -1;
		}
	return 0;
}

/* The four maps of the slot scheme hold o->slots entries: set before load,
 * so tests shrink them without a rebuild. */
static int size_slot_maps(struct observer *o)
{
	struct bpf_map *maps[] = {o->skel->maps.disk_slots, o->skel->maps.slot_owner,
				  o->skel->maps.free_slots, o->skel->maps.disk_stats};

	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++)
		if (bpf_map__set_max_entries(maps[i], o->slots)) {
			log_err("cannot size the stats maps to %u slots", o->slots);
			return -1;
		}
	return 0;
}

int observer_slots_from_env(uint32_t *out)
{
	const char *v = getenv("AIOGUARD_BPF_SLOTS");
	char *end;

	*out = 0;
	if (!v || !*v)
		return 0;
	errno = 0;
	unsigned long n = strtoul(v, &end, 10);
	if (errno || *end || n < 1 || n > 65536 || *v == '-') {
		log_err("AIOGUARD_BPF_SLOTS: need a number of slots 1..65536, got '%s'", v);
		return -1;
	}
	*out = (uint32_t)n;
	return 0;
}

/* The optional hook group whose programs in `use` include `name`, or -1. */
static int optional_group_of(const char *name, const char *const *use[])
{
	for (size_t g = 0; *name && g < N_OPTIONAL_HOOKS; g++)
		for (size_t i = 0; use[g] && i < 4 && use[g][i]; i++)
			if (strcmp(use[g][i], name) == 0)
				return (int)g;
	return -1;
}

/* Open, set up for syscall hooks `sys` without the optional groups in
 * `refused`, load, attach. Returns 0, -1, or 1 when the kernel refused a
 * program of an optional group: that group is then marked in `refused` and
 * the caller tries again without it (under lockdown=confidentiality, say,
 * a program that needs bpf_probe_read_kernel is refused while the rest
 * loads). */
static int load_with(struct observer *o, const struct observer_options *opts,
		     enum observer_syscall_hooks sys, bool tp_btf_ok, bool probe_reads_ok,
		     bool refused[])
{
	const char *const *use[N_OPTIONAL_HOOKS];
	char name[128];

	o->skel = observer_bpf__open();
	if (!o->skel) {
		log_err("cannot open the eBPF object: %s", strerror(errno));
		return -1;
	}
	set_settings(o, opts, probe_reads_ok);
	if (size_slot_maps(o))
		return -1;
	set_syscall_autoload(o, sys);
	probe_optional_hooks(o, tp_btf_ok, use);
	for (size_t g = 0; g < N_OPTIONAL_HOOKS; g++)
		if (refused[g] && use[g]) {
			set_autoload(o, use[g], 4, false);
			use[g] = NULL;
		}
	release_probe_btf();   /* probing is over; an idle agent need not keep it */
	libbpf_log_capture(true);
	int err = observer_bpf__load(o->skel);
	libbpf_log_capture(false);
	if (err) {
		loadlog_failed_program(load_log.buf, name, sizeof(name));
		int g = optional_group_of(name, use);
		if (g < 0 || err == -EPERM)
			return load_error(err, sys);
		log_err("warning: %s: the kernel refused program %s (%s): %s", optional_hooks[g].what,
			name, strerror(-err), optional_hooks[g].lost);
		print_verifier_tail(load_log.buf, name, 3);
		refused[g] = true;
		return 1;
	}
	if (fill_free_slots(o) || attach_all(o, sys, use))
		return -1;
	describe_hooks(o, sys, use);
	return 0;
}

static void unload(struct observer *o)
{
	for (size_t i = 0; i < o->n_links; i++)
		bpf_link__destroy(o->links[i]);
	o->n_links = 0;
	observer_bpf__destroy(o->skel);
	o->skel = NULL;
}

/* Each candidate kind of syscall hook in turn: a kernel may refuse at load
 * what the probe let through. */
static int open_and_load(struct observer *o, const struct observer_options *opts)
{
	enum observer_syscall_hooks kinds[3];
	bool tp_btf_ok = tp_btf_allowed(), probe_reads_ok;
	size_t n = syscall_hook_candidates(opts->syscall_hooks, tp_btf_ok, kinds);

	if (check_probe_reads(&probe_reads_ok))
		return -1;
	for (size_t i = 0; i < n; i++) {
		bool refused[N_OPTIONAL_HOOKS] = {false};
		int rc;

		while ((rc = load_with(o, opts, kinds[i], tp_btf_ok, probe_reads_ok, refused)) == 1)
			unload(o);  /* each turn refuses one more group: it ends */
		if (rc == 0)
			return 0;
		unload(o);
		if (i + 1 < n)
			log_err("falling back from %s to %s", hooks_name(kinds[i]),
				hooks_name(kinds[i + 1]));
	}
	return -1;
}

int observer_open(const struct observer_options *opts, struct observer **out)
{
	struct observer *o;

	*out = NULL;
	if (check_prerequisites())
		return -1;
	libbpf_set_print(libbpf_quiet);
	ensure_tracefs();
	o = xcalloc(1, sizeof(*o));
	o->ncpus = libbpf_num_possible_cpus();
	o->slots = opts->slots ? opts->slots : OBS_MAX_DISKS;
	if (o->ncpus <= 0 || open_and_load(o, opts)) {
		observer_close(o);
		return -1;
	}
	o->percpu = xcalloc(o->ncpus, sizeof(*o->percpu));
	o->rb = ring_buffer__new(bpf_map__fd(o->skel->maps.events), handle_event, o, NULL);
	if (!o->rb) {
		log_err("cannot open the event ring buffer: %s", strerror(errno));
		observer_close(o);
		return -1;
	}
	o->realtime_offset = clock_seconds(CLOCK_REALTIME) - clock_seconds(CLOCK_MONOTONIC);
	*out = o;
	return 0;
}

void observer_close(struct observer *o)
{
	if (!o)
		return;
	ring_buffer__free(o->rb);
	unload(o);
	free(o->percpu);
	free(o);
}

const char *observer_hooks(const struct observer *o)
{
	return o->hooks;
}

int observer_watch_tgid(struct observer *o, pid_t tgid, bool watch)
{
	int fd = bpf_map__fd(o->skel->maps.watched);
	__u32 key = tgid;
	__u8 one = 1;

	if (watch ? bpf_map_update_elem(fd, &key, &one, BPF_ANY)
		  : bpf_map_delete_elem(fd, &key) && errno != ENOENT)
		return -errno;
	__atomic_fetch_add(&o->skel->data->watch_gen, 1, __ATOMIC_SEQ_CST);  /* threads re-check */
	return 0;
}

size_t observer_watched(const struct observer *o, pid_t **out)
{
	int fd = bpf_map__fd(o->skel->maps.watched);
	size_t n = 0, cap = 16;
	pid_t *v = xcalloc(cap, sizeof(*v));
	__u32 key, next;
	__u32 *prev = NULL;

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		if (n == cap)
			v = xrealloc(v, (cap *= 2) * sizeof(*v));
		v[n++] = next;
		key = next;
		prev = &key;
	}
	*out = v;
	return n;
}

int observer_poll(struct observer *o, int timeout_ms, const struct observer_callbacks *cb)
{
	o->cb = cb;
	int n = ring_buffer__poll(o->rb, timeout_ms);
	/* Stall records come without a wake-up (observer.bpf.c, emit): take
	 * what the wait did not. */
	if (n >= 0) {
		int more = ring_buffer__consume(o->rb);
		n = more < 0 ? more : n + more;
	}
	o->cb = NULL;
	return n;
}

/* Sum one key's per-CPU values; the max of the closed interval `epoch`. */
static void sum_cpus(const struct observer *o, __u64 epoch, struct agg_counters *c)
{
	for (int cpu = 0; cpu < o->ncpus; cpu++) {
		const struct obs_disk_stats *s = &o->percpu[cpu];
		c->count += s->count;
		c->iocbs += s->iocbs;
		c->bytes += s->bytes;
		c->sum_ns += s->sum_ns;
		c->alloc_ns += s->alloc_ns;
		c->offcpu_ns += s->offcpu_ns;
		c->stalls += s->stalls;
		for (int i = 0; i < OBS_SLOTS; i++)
			c->slots[i] += s->slots[i];
		if (s->max_epoch[epoch & 1] == epoch && s->max_ns[epoch & 1] > c->interval_max_ns)
			c->interval_max_ns = s->max_ns[epoch & 1];
	}
}

int observer_read(struct observer *o, struct agg_snapshot *out)
{
	int slots_fd = bpf_map__fd(o->skel->maps.disk_slots);
	int stats_fd = bpf_map__fd(o->skel->maps.disk_stats);
	struct obs_disk_key key, next, *prev = NULL;
	__u64 closed = __atomic_fetch_add(&o->skel->bss->interval_epoch, 1, __ATOMIC_SEQ_CST);
	__u32 slot;

	agg_snapshot_clear(out);
	o->slots_in_use = 0;
	while (bpf_map_get_next_key(slots_fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		o->slots_in_use++;
		if (bpf_map_lookup_elem(slots_fd, &key, &slot) ||
		    bpf_map_lookup_elem(stats_fd, &slot, o->percpu))
			continue;  /* forgotten meanwhile */
		struct agg_key k = {
			.dev = observer_dev_from_kernel(key.dev),
			.ino = key.ino,
			.syscall = key.syscall,
		};
		sum_cpus(o, closed, &agg_snapshot_add(out, &k)->c);
	}
	return 0;
}

int observer_forget(struct observer *o, const struct agg_key *k)
{
	struct obs_disk_key key = {
		.dev = observer_dev_to_kernel(k->dev),
		.ino = k->ino,
		.syscall = k->syscall,
	};
	struct obs_disk_key none = {0};
	int slots_fd = bpf_map__fd(o->skel->maps.disk_slots);
	__u32 slot;

	if (bpf_map_lookup_elem(slots_fd, &key, &slot))
		return -ENOENT;
	/* Threads holding the slot in their cache stop using it first. */
	bpf_map_update_elem(bpf_map__fd(o->skel->maps.slot_owner), &slot, &none, BPF_ANY);
	bpf_map_delete_elem(slots_fd, &key);
	if (o->slots_in_use)
		o->slots_in_use--;
	memset(o->percpu, 0, o->ncpus * sizeof(*o->percpu));
	bpf_map_update_elem(bpf_map__fd(o->skel->maps.disk_stats), &slot, o->percpu, BPF_ANY);
	return bpf_map_update_elem(bpf_map__fd(o->skel->maps.free_slots), NULL, &slot, 0) ? -errno : 0;
}


uint64_t observer_lost_events(const struct observer *o)
{
	return __atomic_load_n(&o->skel->bss->lost_events, __ATOMIC_RELAXED);
}

uint64_t observer_untracked(const struct observer *o)
{
	return __atomic_load_n(&o->skel->bss->untracked, __ATOMIC_RELAXED);
}

uint32_t observer_slots_total(const struct observer *o)
{
	return o->slots;
}

size_t observer_slots_kernel_bytes(const struct observer *o)
{
	return (size_t)o->slots * o->ncpus * sizeof(struct obs_disk_stats);
}

uint32_t observer_slots_in_use(const struct observer *o)
{
	return o->slots_in_use;
}

void observer_set_stall_threshold(struct observer *o, uint64_t ns)
{
	__atomic_store_n(&o->skel->data->stall_threshold_ns, ns ? ns : 1000000, __ATOMIC_SEQ_CST);
}
