/* SPDX-License-Identifier: GPL-2.0-only */
/* Every reach into kernel internals that drift between versions, in one
 * place. Field accesses are CO-RE relocated against the running kernel's
 * BTF (vmlinux.h types carry preserve_access_index). */
#ifndef AIOGUARD_CORE_FIXES_BPF_H
#define AIOGUARD_CORE_FIXES_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define S_IFMT  00170000
#define S_IFBLK 0060000
/* Low bits of io_uring's fixed-file pointers carry FFS_* flags. */
#define IO_FIXED_FILE_FLAGS 3UL

/* Syscall number and arguments from the user registers the raw syscall
 * tracepoints and the syscall functions get (BTF-typed, so plain loads). */
#if defined(__TARGET_ARCH_x86)
#define SYSCALL_NR(regs) ((regs)->orig_ax)
#define SYSCALL_FN(name) "__x64_sys_" #name  /* the syscall's function */
#elif defined(__TARGET_ARCH_arm64)
#define SYSCALL_NR(regs) ((regs)->syscallno)
#define SYSCALL_FN(name) "__arm64_sys_" #name
#else
#error "SYSCALL_NR: add this architecture"
#endif
#define SYSCALL_ARG1(regs) PT_REGS_PARM1_SYSCALL(regs)
#define SYSCALL_ARG2(regs) PT_REGS_PARM2_SYSCALL(regs)
#define SYSCALL_ARG3(regs) PT_REGS_PARM3_SYSCALL(regs)
#define SYSCALL_ARG4(regs) PT_REGS_PARM4_SYSCALL(regs)

/* Does the task carry any BPF task storage (ours or another tool's)? One
 * plain load (task_struct.bpf_storage, 5.11+) where the storage helper is a
 * call: sched_switch asks it of two tasks per context switch, and almost
 * all of them have none. Kernels without the field say yes. */
static __always_inline bool task_may_have_storage(struct task_struct *t)
{
	if (!bpf_core_field_exists(t->bpf_storage))
		return true;
	return t->bpf_storage;
}

/* Set by the loader: bpf_probe_read_* may be used (see observer.bpf.c). */
extern const volatile bool probe_reads_ok;

/* Since 6.2 a kernel pointer read as a number can be cast back to a BTF
 * pointer, after which plain loads (exception-protected) replace helper
 * calls: ~30 ns saved per hop. Older kernels take the helper path. */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;

/* The fd table slot read as the first member of a struct whose first member
 * is a struct file * (kiocb.ki_filp): the cast needs a kernel struct type. */
static __always_inline struct file *fd_slot_direct(struct file **slot)
{
	struct kiocb *k = bpf_rdonly_cast(slot, bpf_core_type_id_kernel(struct kiocb));

	return k->ki_filp;
}

/* Encode (dev, ino) as inventory keys disks: files by their inode, block
 * devices by the device number with ino 0. dev stays in kernel encoding.
 * Two spellings of one thing: plain loads on a BTF pointer, helper reads on
 * a pointer known only as a number. */
static __always_inline void inode_devino(struct inode *inode, __u64 *dev, __u64 *ino)
{
	bool blk = (inode->i_mode & S_IFMT) == S_IFBLK;

	*dev = blk ? inode->i_rdev : inode->i_sb->s_dev;
	*ino = blk ? 0 : inode->i_ino;
}

static __always_inline void inode_devino_read(struct inode *inode, __u64 *dev, __u64 *ino)
{
	bool blk = (BPF_CORE_READ(inode, i_mode) & S_IFMT) == S_IFBLK;

	*dev = blk ? BPF_CORE_READ(inode, i_rdev) : BPF_CORE_READ(inode, i_sb, s_dev);
	*ino = blk ? 0 : BPF_CORE_READ(inode, i_ino);
}

/* (dev, ino) of the file behind descriptor fd of task (a trusted pointer). */
static __always_inline bool fd_devino(struct task_struct *task, int fd, __u64 *dev, __u64 *ino)
{
	struct fdtable *fdt = task->files->fdt;
	struct file **slot;
	struct file *file = NULL;
	struct inode *inode = NULL;

	if (fd < 0 || fd >= fdt->max_fds)
		return false;
	slot = fdt->fd + fd;
	if (bpf_rdonly_cast) {
		file = fd_slot_direct(slot);
		inode = file ? file->f_inode : NULL;
		if (inode)
			inode_devino(inode, dev, ino);
	} else if (probe_reads_ok) {   /* before 6.2 */
		bpf_core_read(&file, sizeof(file), slot);
		inode = BPF_CORE_READ(file, f_inode);
		if (inode)
			inode_devino_read(inode, dev, ino);
	}
	return inode;
}

/* (dev, ino) of a file the kernel hands a tracepoint (a BTF pointer). */
static __always_inline bool file_devino(struct file *file, __u64 *dev, __u64 *ino)
{
	struct inode *inode = file ? file->f_inode : NULL;

	if (inode)
		inode_devino(inode, dev, ino);
	return inode;
}

/* The first n (1..8) pointers of a user array. One fixed-size read: a
 * size computed from n loses its bounds on 6.1's verifier when clang spills
 * it ("R2 unbounded memory access"). QEMU's array of iocb pointers has room
 * for 8 (it sits in a larger array); elsewhere a read that would cross into
 * an unmapped page falls back to the first pointer alone. */
static __always_inline int read_user_ptrs(__u64 ptrs[8], __u64 uptr, int n)
{
	if (n > 1 && !bpf_probe_read_user(ptrs, 8 * sizeof(ptrs[0]), (void *)uptr))
		return 0;
	return bpf_probe_read_user(ptrs, sizeof(ptrs[0]), (void *)uptr);
}

/* Registered ("fixed") file idx of an io_uring. The table became an array
 * of io_rsrc_node pointers in 6.13; before that it was io_fixed_file[]. */
struct io_fixed_file___old {
	unsigned long file_ptr;
};
struct io_file_table___old {
	struct io_fixed_file___old *files;
};
struct io_ring_ctx___old {
	struct io_file_table___old file_table;
	unsigned int nr_user_files;
};

static __always_inline struct file *uring_fixed_file(struct io_ring_ctx *ctx, __u32 idx)
{
	unsigned long ptr = 0;

	if (bpf_core_field_exists(ctx->file_table.data)) {
		struct io_rsrc_node **nodes = BPF_CORE_READ(ctx, file_table.data.nodes);
		struct io_rsrc_node *node = NULL;

		if (idx >= BPF_CORE_READ(ctx, file_table.data.nr))
			return NULL;
		bpf_core_read(&node, sizeof(node), &nodes[idx]);
		ptr = BPF_CORE_READ(node, file_ptr);
	} else {
		struct io_ring_ctx___old *old = (void *)ctx;
		struct io_fixed_file___old *files = BPF_CORE_READ(old, file_table.files);

		if (idx >= BPF_CORE_READ(old, nr_user_files))
			return NULL;
		bpf_core_read(&ptr, sizeof(ptr), &files[idx].file_ptr);
	}
	return (struct file *)(ptr & ~IO_FIXED_FILE_FLAGS);
}

/* (dev, ino) of the file an io_uring request targets. At
 * io_uring_submit_req the file is not assigned yet (io_assign_file runs at
 * issue): resolve the sqe's fd, or the registered file it indexes. */
static __always_inline bool uring_req_devino(struct io_kiocb *req, struct task_struct *task,
					     __u64 *dev, __u64 *ino)
{
	struct inode *inode;

	if (!(req->flags & REQ_F_FIXED_FILE))  /* bit 0 since 5.1 */
		return fd_devino(task, req->cqe.fd, dev, ino);
	if (!probe_reads_ok)
		return false;
	inode = BPF_CORE_READ(uring_fixed_file(req->ctx, req->cqe.fd), f_inode);
	if (inode)
		inode_devino_read(inode, dev, ino);
	return inode;
}

/* Buffer and length of a read/write io_uring request: io_rw overlays the
 * request's cmd area. len counts iovecs for READV/WRITEV. */
static __always_inline void uring_req_rw(struct io_kiocb *req, __u64 *addr, __u32 *len)
{
	struct io_rw *rw = (void *)&req->cmd;

	*addr = BPF_CORE_READ(rw, addr);
	*len = BPF_CORE_READ(rw, len);
}

#endif
