/* SPDX-License-Identifier: GPL-2.0-only */
/* The agent's libvirt side, in a thread of its own, so that observation
 * never waits on libvirtd: the thread that reads the ring buffer, closes
 * windows and publishes metrics makes no libvirt call.
 *
 * Why a thread and not keepalive alone: a libvirt call blocks its caller
 * until the daemon answers. Keepalive (virConnectSetKeepAlive) does end a
 * call to a dead daemon, but only after interval * (count + 1) seconds, and
 * a daemon that answers keepalives while it hangs on storage in one worker
 * never trips it; no libvirt call can be made non-blocking. Here every call
 * runs in the worker, one at a time, requests in and results out through
 * queues; the observing thread only reads how long the current call has
 * been running: past VIRT_HUNG_S (an idle worker pings every second, so a
 * hang shows within 7 s) libvirt counts as down (metrics, log,
 * decisions wait) while observation goes on. Keepalive stays on so a dead
 * connection is closed and reopened. */
#ifndef AIOGUARD_VIRT_WORKER_H
#define AIOGUARD_VIRT_WORKER_H

#include <stdbool.h>

#include "apply.h"
#include "disk.h"
#include "host.h"

/* A call running this long means libvirtd does not answer… */
#define VIRT_HUNG_S 6.0
/* …but applying a decision may save and restore a large guest. */
#define VIRT_HUNG_APPLY_S 300.0

enum virt_job_kind {
	VIRT_JOB_INVENTORY,   /* running domains' disks, inspected, + io_uring facts */
	VIRT_JOB_APPLY,       /* apply_set_io(req) */
	VIRT_JOB_CALL,        /* call(conn, arg) */
};

struct virt_job {
	enum virt_job_kind kind;
	int rc;                        /* 0 or -1 */
	struct disk_list disks;        /* INVENTORY: out */
	struct io_uring_support iou;   /* INVENTORY: out */
	char kernel[HOST_KERNEL_LEN];  /* INVENTORY: out */
	struct apply_request req;      /* APPLY: in (strings owned by the submitter) */
	struct apply_result res;       /* APPLY: out */
	void (*call)(virConnectPtr conn, void *arg);   /* CALL */
	void *arg;
	const char *label;             /* CALL: what it does, for a hang's log line */
	void *owner;                   /* the submitter's */
	struct virt_job *next;
};

enum virt_state {
	VIRT_UP,          /* connected, no call stuck */
	VIRT_DOWN,        /* not connected (reconnecting with backoff) */
	VIRT_HUNG,        /* a call has run longer than VIRT_HUNG_S */
};

struct virt_worker;

/* Connect to uri (NULL: libvirt's default) in the caller's thread, then
 * start the worker. NULL with the reason in err. */
struct virt_worker *virt_worker_start(const char *uri, char *err, size_t errlen);
void virt_worker_stop(struct virt_worker *w);

/* Queue a job (the worker owns it until virt_worker_done hands it back). */
void virt_worker_submit(struct virt_worker *w, struct virt_job *j);
/* The next finished job, or NULL. */
struct virt_job *virt_worker_done(struct virt_worker *w);

/* Now: up, down or hung; *detail: a line saying why (for the log). */
enum virt_state virt_worker_state(struct virt_worker *w, char *detail, size_t len);
/* A domain started, stopped, was defined, …, or the connection was
 * (re)opened since the last call: the inventory is stale. */
bool virt_worker_take_change(struct virt_worker *w);

#endif
