// SPDX-License-Identifier: GPL-2.0-only
/* aioguard observer. For watched processes only, time each I/O submission
 * syscall per thread from enter to exit, attribute it to the image's
 * (dev, ino), and split out the time spent allocating filesystem blocks and
 * the time switched off CPU. Aggregates per (dev, ino, syscall) in the
 * kernel; one ring buffer record per stall (and per new file).
 *
 * Cost matters more than anything here (docs/BENCHMARKS.md): per-thread
 * state lives in task local storage (sched_switch fires on every context
 * switch, and the lookup of a task that never entered a timed syscall is one
 * pointer test); kernel structures are walked with plain loads, not helper
 * calls; user memory (~100 ns a read) is read only when no kernel event told
 * the file and the bytes. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "observer.h"
#include "bits.bpf.h"
#include "maps.bpf.h"
#include "core_fixes.bpf.h"

#define EXT4_GET_BLOCKS_CREATE 0x0001
#define IORING_ENTER_GETEVENTS 1U

/* Set by user space before load. */
/* Not const: SIGHUP changes it while the programs run (run --threshold-us). */
__u64 stall_threshold_ns = 1000000;
const volatile bool comm_filter_on = false;
const volatile char comm_filter[OBS_COMM_LEN] = {};
const volatile __u8 syscall_kind[OBS_SYSCALL_TABLE] = {};
/* False where the kernel forbids bpf_probe_read_kernel (lockdown=
 * confidentiality); libbpf then turns the user reads into the also
 * forbidden bpf_probe_read, so both go: the verifier prunes every path that
 * reads memory through a helper. See core_fixes.bpf.h. */
const volatile bool probe_reads_ok = true;

/* User space advances it at every interval it reads (see obs_disk_stats). */
__u64 interval_epoch;
/* Bumped whenever the watched set changes: threads cache their verdict. */
__u64 watch_gen = 1;
/* Records dropped because the ring buffer was full. */
__u64 lost_events;
/* Submissions not counted because every disk_stats slot was taken. */
__u64 untracked;

/* tgids whose submissions are timed; user space and the comm filter add. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} watched SEC(".maps");

/* One per thread of a watched process that entered a timed syscall. */
struct inflight {
	__u64 watch_gen;        /* `watched` is valid while this is watch_gen */
	bool watched;
	__u32 slot;             /* disk_stats slot of the last key; valid while
	                           slot_owner[slot] is that key */
	/* From here on: the current submission, zeroed at syscall entry. */
	__u64 start_ns;         /* syscall entry; 0 when not inside one */
	__u64 switched_out_ns;  /* 0 while on CPU */
	__u64 offcpu_ns;
	__u64 alloc_start_ns;   /* allocating since; 0 when not */
	__u64 xfs_trans_start_ns; /* the latest xfs transaction began */
	__u64 alloc_ns;
	__u64 dev;
	__u64 ino;
	__u64 bytes;
	__u64 iocbpp;           /* io_submit's array of iocb pointers */
	__u32 iocbs;
	__u32 sampled;          /* io_submit: iocbs whose bytes were read */
	__u8 syscall;
	bool devino_known;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct inflight);
} inflight SEC(".maps");

/* Statistics live in a per-CPU array, whose lookup the verifier inlines: a
 * hash lookup per submission cost ~80 ns more. A key gets a slot from
 * free_slots (filled by user space) the first time it is seen; threads
 * cache their slot and check it against slot_owner. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, OBS_MAX_DISKS);
	__type(key, struct obs_disk_key);
	__type(value, __u32);
} disk_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, OBS_MAX_DISKS);
	__type(key, __u32);
	__type(value, struct obs_disk_key);
} slot_owner SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, OBS_MAX_DISKS);
	__type(value, __u32);
} free_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, OBS_MAX_DISKS);
	__type(key, __u32);
	__type(value, struct obs_disk_stats);
} disk_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

static __always_inline __u32 syscall_kind_of(long nr)
{
	return (__u64)nr < OBS_SYSCALL_TABLE ? syscall_kind[nr] : OBS_SC_NONE;
}

/* The process name (group leader's comm) equals the filter. */
static __always_inline bool comm_matches(struct task_struct *task)
{
	struct task_struct *leader = task->group_leader;

	for (int i = 0; i < OBS_COMM_LEN; i++) {
		char c = leader->comm[i];

		if (c != comm_filter[i])
			return false;
		if (!c)
			break;
	}
	return true;
}

static __always_inline bool tgid_watched(struct task_struct *task, __u32 tgid)
{
	__u8 one = 1;

	if (bpf_map_lookup_elem(&watched, &tgid))
		return true;
	if (!comm_filter_on || !comm_matches(task))
		return false;
	if (!bpf_map_update_elem(&watched, &tgid, &one, BPF_NOEXIST))
		__sync_fetch_and_add(&watch_gen, 1);
	return true;
}

/* The thread's state when its process is watched, else NULL. The verdict
 * is cached per thread: no map lookup on the hot path. */
static __always_inline struct inflight *watched_thread(struct task_struct *task)
{
	struct inflight *in = bpf_task_storage_get(&inflight, task, 0, 0);
	__u64 gen = watch_gen;
	bool yes;

	if (in && in->watch_gen == gen)
		return in->watched ? in : NULL;
	yes = tgid_watched(task, bpf_get_current_pid_tgid() >> 32);
	if (!yes && !in)
		return NULL;  /* threads never watched get no storage */
	if (!in)
		in = bpf_task_storage_get(&inflight, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!in)
		return NULL;
	in->watch_gen = gen;
	in->watched = yes;
	return yes ? in : NULL;
}

static __always_inline __u64 iovec_bytes(__u64 uiov, __u64 n)
{
	struct iovec iov[OBS_IOV_READ] = {};
	__u64 sum = 0;

	if (n > OBS_IOV_READ)
		n = OBS_IOV_READ;
	if (!probe_reads_ok || !n || bpf_probe_read_user(iov, n * sizeof(iov[0]), (void *)uiov))
		return 0;
	for (int i = 0; i < OBS_IOV_READ && i < n; i++)
		sum += iov[i].iov_len;
	return sum;
}

static __always_inline __u64 iocb_bytes(const struct iocb *cb)
{
	switch (cb->aio_lio_opcode) {
	case IOCB_CMD_PREAD:
	case IOCB_CMD_PWRITE:
		return cb->aio_nbytes;
	case IOCB_CMD_PREADV:
	case IOCB_CMD_PWRITEV:  /* aio_nbytes counts iovecs */
		return iovec_bytes(cb->aio_buf, cb->aio_nbytes);
	default:
		return 0;
	}
}

static __always_inline void resolve_fd(struct inflight *in, struct task_struct *task, int fd)
{
	in->devino_known = fd_devino(task, fd, &in->dev, &in->ino);
}

/* io_submit's fallback when no direct I/O event named the file (block
 * devices, buffered or non-iomap files, kernels before iomap_dio_rw_begin):
 * the first iocb names the file, bytes are summed over the first
 * OBS_IOCB_READ iocbs. */
static __always_inline void read_iocbs(struct inflight *in, struct task_struct *task, long nr)
{
	__u64 ptrs[OBS_IOCB_READ] = {};
	struct iocb cb;
	int n = nr < OBS_IOCB_READ ? nr : OBS_IOCB_READ;

	if (!probe_reads_ok || n <= 0 || read_user_ptrs(ptrs, in->iocbpp, n))
		return;
	for (int i = 0; i < OBS_IOCB_READ && i < n; i++) {
		if (bpf_probe_read_user(&cb, sizeof(cb), (void *)ptrs[i]))
			break;
		if (i == 0)
			resolve_fd(in, task, cb.aio_fildes);
		in->bytes += iocb_bytes(&cb);
		in->sampled++;
	}
}

/* io_uring_enter(fd, to_submit, min_complete, flags): a call that submits
 * nothing, or also waits for completions, is not a submission to time. */
static __always_inline bool uring_submits_only(__u64 to_submit, __u64 min_complete, __u64 flags)
{
	return to_submit && !((flags & IORING_ENTER_GETEVENTS) && min_complete);
}

static __always_inline void on_sys_enter(__u32 kind, __u64 a1, __u64 a2, __u64 a3, __u64 a4)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct inflight *in;

	if (kind == OBS_SC_IO_URING_ENTER && !uring_submits_only(a2, a3, a4))
		return;
	in = watched_thread(task);
	if (!in)
		return;
	__builtin_memset(&in->start_ns, 0, sizeof(*in) - offsetof(struct inflight, start_ns));
	in->syscall = kind;
	switch (kind) {
	case OBS_SC_IO_SUBMIT:
		in->iocbpp = a3;  /* the file is told by iomap_dio_rw_begin, */
		break;            /* else read from the iocbs at exit */
	case OBS_SC_IO_URING_ENTER:
		break;  /* the files are known at io_uring_submit_req */
	case OBS_SC_FALLOCATE:
		in->bytes = a4;  /* fallocate(fd, mode, offset, len) */
		resolve_fd(in, task, a1);
		break;
	default:
		resolve_fd(in, task, a1);
	}
	if (in->devino_known || kind == OBS_SC_IO_SUBMIT || kind == OBS_SC_IO_URING_ENTER)
		in->start_ns = bpf_ktime_get_ns();
}

/* Requests and bytes once the return value is known. */
static __always_inline void count_requests(struct inflight *in, long ret)
{
	switch (in->syscall) {
	case OBS_SC_IO_SUBMIT:
		in->iocbs = ret > 0 ? ret : 0;
		if (in->sampled && in->iocbs > in->sampled)  /* read iocbs: estimate the rest */
			in->bytes = in->bytes * in->iocbs / in->sampled;
		break;
	case OBS_SC_IO_URING_ENTER:
		break;  /* counted per request */
	case OBS_SC_FALLOCATE:
	case OBS_SC_FDATASYNC:
		in->iocbs = 1;
		break;
	default:  /* read/write family: bytes transferred */
		in->iocbs = 1;
		in->bytes = ret > 0 ? ret : 0;
	}
}

static __always_inline void emit(__u32 type, const struct inflight *in, __u64 now, __u64 dur)
{
	struct obs_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	__u64 id = bpf_get_current_pid_tgid();

	if (!e) {
		__sync_fetch_and_add(&lost_events, 1);
		return;
	}
	e->type = type;
	e->ts_ns = now;
	e->dev = in->dev;
	e->ino = in->ino;
	e->duration_ns = dur;
	e->alloc_ns = in->alloc_ns;
	e->offcpu_ns = in->offcpu_ns;
	e->bytes = in->bytes;
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->iocbs = in->iocbs;
	e->syscall = in->syscall;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	/* Stall records do not wake the reader: a wake-up is an irq_work (a
	 * self-IPI, a VM exit under a hypervisor) per record whenever the
	 * reader keeps up, and a burst of stalls is when it does. The reader
	 * polls at least every 200 ms and drains the ring each time
	 * (observer_poll). A new file wakes it at once: its name is looked up
	 * while the process still has the file open. */
	bpf_ringbuf_submit(e, type == OBS_EVENT_STALL ? BPF_RB_NO_WAKEUP : 0);
}

static __always_inline bool same_key(const struct obs_disk_key *a, const struct obs_disk_key *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->syscall == b->syscall;
}

static __always_inline struct obs_disk_stats *disk_stats_of(struct inflight *in, __u64 now)
{
	struct obs_disk_key key = { .dev = in->dev, .ino = in->ino, .syscall = in->syscall };
	__u32 slot = in->slot;
	struct obs_disk_key *owner = bpf_map_lookup_elem(&slot_owner, &slot);

	if (!owner || !same_key(owner, &key)) {
		switch (slot_lookup_or_claim(&disk_slots, &free_slots, &slot_owner, &key, &slot)) {
		case SLOT_NONE:
			__sync_fetch_and_add(&untracked, 1);
			return NULL;
		case SLOT_NEW:
			emit(OBS_EVENT_NEW_FILE, in, now, 0);
			break;
		case SLOT_KNOWN:
			break;
		}
		in->slot = slot;
	}
	return bpf_map_lookup_elem(&disk_stats, &slot);
}

static __always_inline void account(struct inflight *in, __u64 now, __u64 dur, bool stall)
{
	struct obs_disk_stats *st = disk_stats_of(in, now);
	__u64 epoch = interval_epoch, slot = log2_u64(dur / 1000), e = epoch & 1;

	if (!st)
		return;
	st->count++;
	st->iocbs += in->iocbs;
	st->bytes += in->bytes;
	st->sum_ns += dur;
	st->alloc_ns += in->alloc_ns;
	st->offcpu_ns += in->offcpu_ns;
	st->stalls += stall;
	st->slots[slot < OBS_SLOTS ? slot : OBS_SLOTS - 1]++;
	if (st->max_epoch[e] != epoch) {
		st->max_epoch[e] = epoch;
		st->max_ns[e] = dur;
	} else if (dur > st->max_ns[e]) {
		st->max_ns[e] = dur;
	}
}

static __always_inline void on_sys_exit(__u32 kind, long ret)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct inflight *in = bpf_task_storage_get(&inflight, task, 0, 0);
	__u64 now, dur;
	bool stall;

	if (!in || !in->start_ns || in->syscall != kind)
		return;
	now = bpf_ktime_get_ns();
	dur = now - in->start_ns;
	in->start_ns = 0;
	if (!in->devino_known && kind == OBS_SC_IO_SUBMIT)
		read_iocbs(in, task, ret);
	if (!in->devino_known)  /* io_uring_enter that submitted to no file */
		return;
	if (in->alloc_start_ns)  /* xfs fallocate allocates until the end */
		in->alloc_ns += now - in->alloc_start_ns;
	count_requests(in, ret);
	stall = dur >= stall_threshold_ns;
	account(in, now, dur, stall);
	if (stall)
		emit(OBS_EVENT_STALL, in, now, dur);
}

/* Syscall hooks, variant 1: the raw syscall tracepoints through BTF. They
 * fire for every syscall on the system; the table lookup rejects others. */
SEC("tp_btf/sys_enter")
int BPF_PROG(btf_sys_enter, struct pt_regs *regs, long nr)
{
	__u32 kind = syscall_kind_of(nr);

	if (kind)
		on_sys_enter(kind, SYSCALL_ARG1(regs), SYSCALL_ARG2(regs),
			     SYSCALL_ARG3(regs), SYSCALL_ARG4(regs));
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(btf_sys_exit, struct pt_regs *regs, long ret)
{
	__u32 kind = syscall_kind_of(SYSCALL_NR(regs));

	if (kind)
		on_sys_exit(kind, ret);
	return 0;
}

/* Variant 2: the per-syscall classic tracepoints syscalls:sys_{enter,exit}_*,
 * which fire only for the syscalls timed. Record layout as in their format
 * files. The kernel refuses a program that reads past a record's last
 * argument, so each enter program reads only its syscall's arguments. */
struct syscall_enter_record {
	__u64 common;
	int nr;
	__u64 args[6];
};

struct syscall_exit_record {
	__u64 common;
	int nr;
	long ret;
};

#define SYSCALL_ENTER_TP(name, kind, a1, a2, a3, a4)			\
SEC("tracepoint/syscalls/sys_enter_" #name)				\
int tp_enter_##name(struct syscall_enter_record *ctx)			\
{									\
	on_sys_enter(kind, a1, a2, a3, a4);				\
	return 0;							\
}

#define ARG(i) ctx->args[i]
/* io_submit(ctx_id, nr, iocbpp) */
SYSCALL_ENTER_TP(io_submit, OBS_SC_IO_SUBMIT, ARG(0), ARG(1), ARG(2), 0)
/* io_uring_enter(fd, to_submit, min_complete, flags, …) */
SYSCALL_ENTER_TP(io_uring_enter, OBS_SC_IO_URING_ENTER, ARG(0), ARG(1), ARG(2), ARG(3))
/* fallocate(fd, mode, offset, len) */
SYSCALL_ENTER_TP(fallocate, OBS_SC_FALLOCATE, ARG(0), ARG(1), ARG(2), ARG(3))
/* the rest need only their fd */
SYSCALL_ENTER_TP(pwritev, OBS_SC_PWRITEV, ARG(0), 0, 0, 0)
SYSCALL_ENTER_TP(preadv, OBS_SC_PREADV, ARG(0), 0, 0, 0)
SYSCALL_ENTER_TP(pwritev2, OBS_SC_PWRITEV2, ARG(0), 0, 0, 0)
SYSCALL_ENTER_TP(preadv2, OBS_SC_PREADV2, ARG(0), 0, 0, 0)
SYSCALL_ENTER_TP(pwrite64, OBS_SC_PWRITE64, ARG(0), 0, 0, 0)
SYSCALL_ENTER_TP(pread64, OBS_SC_PREAD64, ARG(0), 0, 0, 0)
SYSCALL_ENTER_TP(fdatasync, OBS_SC_FDATASYNC, ARG(0), 0, 0, 0)

/* One exit program per syscall too: the kind is a constant, not a load
 * from the syscall table (a page the enter program did not touch). */
#define SYSCALL_EXIT_TP(name, kind)					\
SEC("tracepoint/syscalls/sys_exit_" #name)				\
int tp_exit_##name(struct syscall_exit_record *ctx)			\
{									\
	on_sys_exit(kind, ctx->ret);					\
	return 0;							\
}

SYSCALL_EXIT_TP(io_submit, OBS_SC_IO_SUBMIT)
SYSCALL_EXIT_TP(io_uring_enter, OBS_SC_IO_URING_ENTER)
SYSCALL_EXIT_TP(fallocate, OBS_SC_FALLOCATE)
SYSCALL_EXIT_TP(pwritev, OBS_SC_PWRITEV)
SYSCALL_EXIT_TP(preadv, OBS_SC_PREADV)
SYSCALL_EXIT_TP(pwritev2, OBS_SC_PWRITEV2)
SYSCALL_EXIT_TP(preadv2, OBS_SC_PREADV2)
SYSCALL_EXIT_TP(pwrite64, OBS_SC_PWRITE64)
SYSCALL_EXIT_TP(pread64, OBS_SC_PREAD64)
SYSCALL_EXIT_TP(fdatasync, OBS_SC_FDATASYNC)

/* Variant 3: fentry/fexit on the syscall functions themselves. Neither
 * fires for other syscalls nor puts every task on the slow syscall path as
 * syscall tracepoints do; some kernels refuse them (lockdown): the loader
 * probes and falls back. */
#define SYSCALL_FENTRY(name, kind, a1, a2, a3, a4)			\
SEC("fentry/" SYSCALL_FN(name))					\
int BPF_PROG(fentry_##name, struct pt_regs *regs)			\
{									\
	on_sys_enter(kind, a1, a2, a3, a4);				\
	return 0;							\
}									\
SEC("fexit/" SYSCALL_FN(name))						\
int BPF_PROG(fexit_##name, struct pt_regs *regs, long ret)		\
{									\
	on_sys_exit(kind, ret);						\
	return 0;							\
}

#define REG(i) SYSCALL_ARG##i(regs)
SYSCALL_FENTRY(io_submit, OBS_SC_IO_SUBMIT, REG(1), REG(2), REG(3), 0)
SYSCALL_FENTRY(io_uring_enter, OBS_SC_IO_URING_ENTER, REG(1), REG(2), REG(3), REG(4))
SYSCALL_FENTRY(fallocate, OBS_SC_FALLOCATE, REG(1), REG(2), REG(3), REG(4))
SYSCALL_FENTRY(pwritev, OBS_SC_PWRITEV, REG(1), 0, 0, 0)
SYSCALL_FENTRY(preadv, OBS_SC_PREADV, REG(1), 0, 0, 0)
SYSCALL_FENTRY(pwritev2, OBS_SC_PWRITEV2, REG(1), 0, 0, 0)
SYSCALL_FENTRY(preadv2, OBS_SC_PREADV2, REG(1), 0, 0, 0)
SYSCALL_FENTRY(pwrite64, OBS_SC_PWRITE64, REG(1), 0, 0, 0)
SYSCALL_FENTRY(pread64, OBS_SC_PREAD64, REG(1), 0, 0, 0)
SYSCALL_FENTRY(fdatasync, OBS_SC_FDATASYNC, REG(1), 0, 0, 0)

/* Off-CPU time of threads inside a timed syscall. */
SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	struct inflight *in = NULL;
	__u64 now = 0;

	if (task_may_have_storage(prev))
		in = bpf_task_storage_get(&inflight, prev, 0, 0);
	if (in && in->start_ns) {
		now = bpf_ktime_get_ns();
		in->switched_out_ns = now;
	}
	in = NULL;
	if (task_may_have_storage(next))
		in = bpf_task_storage_get(&inflight, next, 0, 0);
	if (in && in->switched_out_ns) {
		if (!now)
			now = bpf_ktime_get_ns();
		in->offcpu_ns += now - in->switched_out_ns;
		in->switched_out_ns = 0;
	}
	return 0;
}

static __always_inline struct inflight *current_inflight(void)
{
	struct inflight *in = bpf_task_storage_get(&inflight, bpf_get_current_task_btf(), 0, 0);

	return in && in->start_ns ? in : NULL;
}

/* ext4: block mapping that may allocate (EXT4_GET_BLOCKS_CREATE). Lookups
 * of mapped blocks are served from the extent status cache and do not get
 * here; mapping without CREATE does not allocate. */
static __always_inline void ext4_map_enter(unsigned int flags)
{
	struct inflight *in = current_inflight();

	if (in && (flags & EXT4_GET_BLOCKS_CREATE))
		in->alloc_start_ns = bpf_ktime_get_ns();
}

static __always_inline void ext4_map_exit(void)
{
	struct inflight *in = current_inflight();

	if (in && in->alloc_start_ns) {
		in->alloc_ns += bpf_ktime_get_ns() - in->alloc_start_ns;
		in->alloc_start_ns = 0;
	}
}

SEC("tp_btf/ext4_ext_map_blocks_enter")
int BPF_PROG(ext4_ext_map_enter, struct inode *inode, __u32 lblk, unsigned int len,
	     unsigned int flags)
{
	ext4_map_enter(flags);
	return 0;
}

SEC("tp_btf/ext4_ext_map_blocks_exit")
int BPF_PROG(ext4_ext_map_exit)
{
	ext4_map_exit();
	return 0;
}

SEC("tp_btf/ext4_ind_map_blocks_enter")
int BPF_PROG(ext4_ind_map_enter, struct inode *inode, __u32 lblk, unsigned int len,
	     unsigned int flags)
{
	ext4_map_enter(flags);
	return 0;
}

SEC("tp_btf/ext4_ind_map_blocks_exit")
int BPF_PROG(ext4_ind_map_exit)
{
	ext4_map_exit();
	return 0;
}

/* xfs has no event around its direct-I/O allocation, only one after it:
 * xfs_iomap_alloc fires once xfs_iomap_write_direct has reserved log space
 * (where it may wait), allocated and committed. Every transaction starts at
 * xfs_log_reserve: the latest one before xfs_iomap_alloc began the
 * allocation. (Timing the whole ->iomap_begin window instead needs a hook on
 * every iomap iteration, ~200 ns per submission.) */
SEC("tp_btf/xfs_log_reserve")
int BPF_PROG(xfs_log_reserve)
{
	struct inflight *in = current_inflight();

	if (in)
		in->xfs_trans_start_ns = bpf_ktime_get_ns();
	return 0;
}

SEC("tp_btf/xfs_iomap_alloc")
int BPF_PROG(xfs_iomap_alloc)
{
	struct inflight *in = current_inflight();

	if (in && in->xfs_trans_start_ns) {
		in->alloc_ns += bpf_ktime_get_ns() - in->xfs_trans_start_ns;
		in->xfs_trans_start_ns = 0;
	}
	return 0;
}

/* xfs fallocate allocates from here to the end of the syscall. */
SEC("tp_btf/xfs_alloc_file_space")
int BPF_PROG(xfs_alloc_file_space)
{
	struct inflight *in = current_inflight();

	if (in)
		in->alloc_start_ns = bpf_ktime_get_ns();
	return 0;
}

/* Direct I/O on ext4, xfs and other iomap filesystems, in the submitting
 * thread: names io_submit's file and counts its bytes without reading user
 * memory. */
static __always_inline void dio_begin(struct kiocb *iocb, struct iov_iter *iter)
{
	struct inflight *in = current_inflight();

	if (!in || in->syscall != OBS_SC_IO_SUBMIT)
		return;
	in->bytes += iter->count;
	if (!in->devino_known)
		in->devino_known = file_devino(iocb->ki_filp, &in->dev, &in->ino);
}

SEC("tp_btf/iomap_dio_rw_begin")
int BPF_PROG(iomap_dio_rw_begin, struct kiocb *iocb, struct iov_iter *iter)
{
	dio_begin(iocb, iter);
	return 0;
}

/* Where the kernel has no iomap_dio_rw_begin (Debian 12's 6.1) but allows
 * fentry: aio's own read and write of each iocb, given its file and the
 * kernel's copy of the iocb (iomap_dio_rw itself has 7 arguments, more
 * than 6.1's trampolines take). Any file, direct I/O or not; a vectored
 * iocb's bytes still need its iovecs from user memory. The loader keeps
 * these or the tracepoint; without either io_submit's exit reads the iocbs
 * from user memory. */
static __always_inline void aio_rw_begin(struct kiocb *req, const struct iocb *cb)
{
	struct inflight *in = current_inflight();

	if (!in || in->syscall != OBS_SC_IO_SUBMIT)
		return;
	in->bytes += iocb_bytes(cb);
	if (!in->devino_known)
		in->devino_known = file_devino(req->ki_filp, &in->dev, &in->ino);
}

SEC("fentry/aio_read")
int BPF_PROG(aio_read_enter, struct kiocb *req, const struct iocb *cb)
{
	aio_rw_begin(req, cb);
	return 0;
}

SEC("fentry/aio_write")
int BPF_PROG(aio_write_enter, struct kiocb *req, const struct iocb *cb)
{
	aio_rw_begin(req, cb);
	return 0;
}

/* Bytes of an io_uring read/write request. Vectored ones count iovecs in
 * len: the prepared request holds the imported iov_iter since 6.10, older
 * kernels leave them in user memory. */
static __always_inline __u64 uring_req_bytes(struct io_kiocb *req)
{
	__u64 addr;
	__u32 len;

	if (!probe_reads_ok)
		return 0;
	uring_req_rw(req, &addr, &len);
	switch (req->opcode) {
	case IORING_OP_READV:
	case IORING_OP_WRITEV:
		if (bpf_core_field_exists(((struct io_async_rw *)0)->iter))
			return BPF_CORE_READ((struct io_async_rw *)req->async_data, iter.count);
		return iovec_bytes(addr, len);
	case IORING_OP_READ:
	case IORING_OP_WRITE:
	case IORING_OP_READ_FIXED:
	case IORING_OP_WRITE_FIXED:
		return len;
	default:
		return 0;
	}
}

/* Fires in the submitting thread for each request io_uring_enter takes
 * from the SQ ring (with SQPOLL it fires in the SQ thread: not timed). The
 * first request names the file. */
static __always_inline void uring_submitted(struct io_kiocb *req)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct inflight *in = bpf_task_storage_get(&inflight, task, 0, 0);

	if (!in || !in->start_ns || in->syscall != OBS_SC_IO_URING_ENTER)
		return;
	in->iocbs++;
	in->bytes += uring_req_bytes(req);
	if (!in->devino_known)
		in->devino_known = uring_req_devino(req, task, &in->dev, &in->ino);
}

SEC("tp_btf/io_uring_submit_req")
int BPF_PROG(uring_submit_req, struct io_kiocb *req)
{
	uring_submitted(req);
	return 0;
}

/* The same tracepoint before 6.4 (req first there too, since 6.0); the
 * loader keeps whichever of the two this kernel has. */
SEC("tp_btf/io_uring_submit_sqe")
int BPF_PROG(uring_submit_sqe, struct io_kiocb *req)
{
	uring_submitted(req);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
