/* SPDX-License-Identifier: GPL-2.0-only */
/* --apply live: change a running disk's AIO mode without restarting or
 * saving the guest, through libvirt's QEMU monitor passthrough (QMP),
 * keeping libvirt's node names. QEMU cannot reopen a file node with another aio (file-posix takes
 * only drop-cache on reopen), so each layer's file node is replaced:
 *   1. blockdev-add a temporary file node (LIVE_TMP_PREFIX + the storage
 *      node's name) on the same image, new aio, locking off (a second node
 *      with locking on would not get the write lock);
 *   2. blockdev-reopen the format node onto it;
 *   3. blockdev-del the storage node, blockdev-add it again under its own
 *      name with the new aio and libvirt's options;
 *   4. reopen the format node back onto it; blockdev-del the temporary node.
 * A reopen carries the node's whole option set (left out is reset to the
 * default): the options are those libvirt gave QEMU on its command line
 * (-blockdev); a node libvirt made after QEMU started (a snapshot's
 * overlay, a block copy) gets those of the layer the disk's device started
 * on, with its own names, image and format (libvirt builds every node of a
 * disk from its one <driver>), and read-only and backing as QEMU has them
 * now. The chain and its node names are libvirt's status XML's
 * (/run/libvirt/qemu/DOM.xml: QMP tells no node's children). After a swap
 * QEMU's report of each node (query-named-block-nodes: read-only,
 * cache.direct, format, image, backing, detect-zeroes) must be what it was
 * before, else the swap is undone.
 * A layer whose image can grow (a format other than raw over a regular
 * file) is swapped with the guest paused: QEMU's file driver knows a
 * file's length from its open and its own writes only, so a guest write
 * extending the image between a node's add and the reopen onto it would
 * read back as zeros through that node (and qcow2 would store its L2
 * table back empty). After each such reopen the new node's length is
 * checked against the old node's, and the hop repeated where other I/O
 * grew the image meanwhile.
 * Every layer of a backing chain runs the mode wanted afterwards (lower
 * ones stay read-only); a layer recorded as running it already is skipped.
 * A step refused puts the original node back. The mode QEMU then runs is
 * recorded (live_state.h): libvirt's live XML keeps the old io. libvirt
 * marks a domain that got monitor commands tainted ("custom-monitor"). */
#ifndef AIOGUARD_LIVE_H
#define AIOGUARD_LIVE_H

#include <stddef.h>
#include <libvirt/libvirt.h>

#include "../policy/facts.h"

#define LIVE_TMP_PREFIX "aioguard-tmp-"

/* 0 when target of the running domain can be switched live: its QEMU has
 * a stable blockdev-reopen (QEMU >= 6.1), libvirt started it in -blockdev
 * mode (libvirt >= 5.10 with QEMU >= 4.2), the disk's device was on QEMU's
 * command line (not hot-plugged: its options are the template of every
 * layer), and every layer of its chain has a format node over a local file
 * or block device. -1 with why. */
int live_probe(virDomainPtr dom, const char *target, char *why, size_t len);

/* Swap every layer of target's chain that does not run io (IO_MODE_UNSET:
 * QEMU's default, threads) to it. What a layer runs now is what
 * state_dir's record says of its file node, else xml_io (the live XML's:
 * libvirt made the node with it); a refused step puts that back. On
 * success the nodes and the disk's mode on its top image are recorded
 * under state_dir. The number of file nodes swapped (0: all ran io
 * already; the record then names the top image now), or -1; msg says
 * what happened either way (QMP step times included). */
int live_swap(virDomainPtr dom, const char *target, enum io_mode io, enum io_mode xml_io,
	      const char *state_dir, char *msg, size_t len);

/* Put back every file node a killed swap left on a temporary node (found
 * by LIVE_TMP_PREFIX): the node gets the aio it had before the swap
 * (recorded as pending; else what libvirt started it with). Returns how
 * many were repaired, or -1 with msg. */
int live_repair(virDomainPtr dom, const char *state_dir, char *msg, size_t len);

#endif
