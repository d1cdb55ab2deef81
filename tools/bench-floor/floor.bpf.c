// SPDX-License-Identifier: GPL-2.0-only
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
/* The least a timer of io_submit can do: one clock read at enter and at exit, an empty
 * program on the direct I/O hook; nothing stored, no per-thread state. */
__u64 sink;
SEC("tracepoint/syscalls/sys_enter_io_submit") int f_enter_clock(void *ctx) { sink = bpf_ktime_get_ns(); return 0; }
SEC("tracepoint/syscalls/sys_exit_io_submit") int f_exit_clock(void *ctx) { sink += bpf_ktime_get_ns(); return 0; }
SEC("tp_btf/iomap_dio_rw_begin") int BPF_PROG(f_dio_empty) { return 0; }
char LICENSE[] SEC("license") = "GPL";
