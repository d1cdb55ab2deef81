/* SPDX-License-Identifier: GPL-2.0-only */
/* Shared between bpf/observer.bpf.c and user/: fixed-size structs only.
 *
 * Units: the kernel side counts nanoseconds; dev is the kernel's encoding
 * (MAJOR << 20 | MINOR): user/observer.c converts it to stat()'s st_dev. */
#ifndef AIOGUARD_OBSERVER_H
#define AIOGUARD_OBSERVER_H

#ifndef __VMLINUX_H__  /* user space; BPF gets the types from vmlinux.h */
#include <linux/types.h>
#endif

/* Latency histogram: log2 of microseconds. Slot 0 holds [0, 2) us, slot k >= 1
 * holds [2^k, 2^(k+1)) us; the last slot also holds everything longer. */
#define OBS_SLOTS 32

/* (disk, syscall) pairs counted at once; user space recycles idle ones. */
#define OBS_MAX_DISKS 1024
#define OBS_COMM_LEN 16
/* Syscall numbers that map to an obs_syscall (x86-64 tops out near 460). */
#define OBS_SYSCALL_TABLE 512
/* io_submit: iocbs read to find bytes; io_submit's fd is the first one's. */
#define OBS_IOCB_READ 8
/* iovecs summed per vectored request (bytes beyond them are not counted). */
#define OBS_IOV_READ 4

/* The submission syscalls timed, 0 = not timed. */
enum obs_syscall {
	OBS_SC_NONE,
	OBS_SC_IO_SUBMIT,
	OBS_SC_IO_URING_ENTER,
	OBS_SC_PWRITEV,
	OBS_SC_PREADV,
	OBS_SC_PWRITEV2,
	OBS_SC_PREADV2,
	OBS_SC_PWRITE64,
	OBS_SC_PREAD64,
	OBS_SC_FALLOCATE,
	OBS_SC_FDATASYNC,
	OBS_SC_COUNT,
};

/* Per image file and syscall. Block devices: dev = the device, ino = 0. */
struct obs_disk_key {
	__u64 dev;
	__u64 ino;
	__u32 syscall;  /* enum obs_syscall */
	__u32 pad;
};

/* Cumulative per CPU, in the slot disk_slots gives the key; user space sums
 * the CPUs and takes interval deltas.
 * max_ns cannot be cumulative-differenced, so it is kept per interval:
 * slot (epoch & 1) holds the max of interval `epoch` (see max_epoch). */
struct obs_disk_stats {
	__u64 count;        /* submissions (syscalls) */
	__u64 iocbs;        /* requests submitted (io_submit/io_uring; else 1) */
	__u64 bytes;
	__u64 sum_ns;
	__u64 alloc_ns;     /* inside filesystem block allocation */
	__u64 offcpu_ns;    /* switched out while in the syscall */
	__u64 stalls;       /* submissions >= the stall threshold */
	__u64 max_ns[2];
	__u64 max_epoch[2];
	__u64 slots[OBS_SLOTS];
};

enum obs_event_type {
	OBS_EVENT_STALL = 1,     /* a submission >= the stall threshold */
	OBS_EVENT_NEW_FILE,      /* first submission to this (dev, ino, syscall):
	                            lets user space name the file while the
	                            process still has it open */
};

/* One ring buffer record per stall or new file. */
struct obs_event {
	__u32 type;         /* enum obs_event_type */
	__u32 pad;
	__u64 ts_ns;        /* CLOCK_MONOTONIC at syscall exit */
	__u64 dev;
	__u64 ino;
	__u64 duration_ns;
	__u64 alloc_ns;
	__u64 offcpu_ns;
	__u64 bytes;
	__u32 pid;          /* tgid */
	__u32 tid;
	__u32 iocbs;
	__u32 syscall;      /* enum obs_syscall */
	char comm[OBS_COMM_LEN];  /* of the thread */
};

#endif
