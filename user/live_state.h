/* SPDX-License-Identifier: GPL-2.0-only */
/* The truth about a live switch: libvirt's live XML keeps the io QEMU was
 * started with and cannot be told otherwise, so the mode QEMU really runs
 * after `--apply live` is kept here, in STATE_DIR/live/UUID.json:
 *   {"instance": "BOOT_ID/QEMU_PID/DOMAIN_ID",
 *    "disks": {"vda": {"io": "threads", "source": "/…/vda.qcow2"}},
 *                                 the mode QEMU runs per target, and the
 *                                 image whose file node was swapped
 *    "nodes": {"libvirt-1-storage": "threads"},   the file nodes swapped:
 *                          the aio each runs (any other node runs what
 *                          libvirt made it with: the live XML's io)
 *    "pending": {"libvirt-2-storage": "native"},   a swap under way: the
 *                                            aio its file node had before
 *    "guest": {"paused": "by a swap"}}   a swap paused the guest and has
 *                                   not resumed it yet (live.h: why)
 * A record holds for the QEMU process it was written for only (the
 * instance): a restarted domain runs what its XML says again, and the
 * record of its earlier QEMU is removed when next read; and for the image
 * it was written for only: a snapshot's new overlay, or a block copy
 * pivoted to, is a node libvirt made with the XML's io (the agent then
 * swaps it too: live_swap skips the nodes "nodes" says run the mode). */
#ifndef AIOGUARD_LIVE_STATE_H
#define AIOGUARD_LIVE_STATE_H

#include <stdbool.h>
#include <libvirt/libvirt.h>

#include "../policy/facts.h"

/* The mode QEMU runs for target, when a record of this QEMU says one for
 * this source (the disk's top image now; NULL: not checked). */
bool live_state_get_io(const char *state_dir, virDomainPtr dom, const char *target,
		       const char *source, enum io_mode *io);
/* A record of this QEMU says target was switched live to *io, whatever
 * image it is on now: the mode the switch was for. */
bool live_state_get_wanted(const char *state_dir, virDomainPtr dom, const char *target,
			   enum io_mode *io);

/* Record target's live mode on the image source (and clear what is
 * pending). 0, or -1 (errno). */
int live_state_set_io(const char *state_dir, virDomainPtr dom, const char *target,
		      const char *source, enum io_mode io);

/* The aio a file node runs after a swap of ours ("threads", …); aio NULL
 * forgets it. 0, or -1 (errno). */
int live_state_set_node(const char *state_dir, virDomainPtr dom, const char *node,
			const char *aio);
/* node -> aio of every file node swapped in this QEMU (a new reference;
 * NULL when the domain does not run here). */
struct json_object *live_state_nodes(const char *state_dir, virDomainPtr dom);

/* A swap of a file node under way: the aio it had ("native", …); aio NULL
 * clears it. 0, or -1 (errno). */
int live_state_set_pending(const char *state_dir, virDomainPtr dom, const char *node,
			   const char *aio);
/* Every node a swap is under way on -> the aio it had (a new reference;
 * NULL when the domain does not run here). */
struct json_object *live_state_pending(const char *state_dir, virDomainPtr dom);

/* A swap paused the guest (set before virDomainSuspend) / resumed it
 * (cleared): a swap killed in between leaves the guest paused, and the
 * repair resumes it. 0, or -1 (errno). */
int live_state_set_paused(const char *state_dir, virDomainPtr dom, bool paused);
bool live_state_paused(const char *state_dir, virDomainPtr dom);

#endif
