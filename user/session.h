/* SPDX-License-Identifier: GPL-2.0-only */
/* One observer session: the layer over the eBPF observer that `watch` and
 * `run` share, so a fix reaches both. It
 *   - watches the right processes: the QEMU of the running domains of an
 *     inventory (in scope), or given pids;
 *   - names what the kernel counts: (dev, ino) -> the libvirt disk, or the
 *     path a watched process has open (/proc/PID/fd);
 *   - gives back the kernel's counting slots: a key whose disk left libvirt
 *     at once, any other key idle for long; and says how many are in use,
 *     how many there are, and what went uncounted for want of one.
 * It makes no libvirt call: the caller collects the inventory (run: off the
 * observing thread) and hands it over, so observation never waits on
 * libvirtd. */
#ifndef AIOGUARD_SESSION_H
#define AIOGUARD_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "aggregate.h"
#include "disk.h"
#include "events.h"
#include "observer.h"

/* A key not of a libvirt disk (a backing file, a process watched by pid)
 * is given back once idle this long: closed images, exited processes. */
#define SESSION_IDLE_FORGET_S 600.0

struct session_name;   /* a path a watched process had open */
struct session_key;    /* a counted (dev, ino, syscall) and when it was last used */
struct session_scan;   /* when a process's fds were last read */
struct session_gone;   /* a disk that left libvirt, and when */

struct session {
	struct observer *obs;
	bool libvirt;                  /* names come from an inventory */
	struct disk_list disks;        /* that inventory (running domains) */
	struct session_name *names;
	size_t n_names;
	struct session_scan *scans;
	size_t n_scans;
	struct session_key *keys;
	size_t n_keys;
	struct session_gone *gone;     /* disks that left libvirt lately */
	size_t n_gone;
	uint64_t forgotten;            /* slots given back so far */
};

/* Open the observer (opts->slots from AIOGUARD_BPF_SLOTS unless set).
 * libvirt: disks will be named from inventories. 0, or -1 (said). */
int session_open(struct session *s, const struct observer_options *opts, bool libvirt);
void session_close(struct session *s);

/* Take a fresh inventory (moved: *fresh is left empty) and watch exactly
 * the QEMU of its running domains that in_scope accepts (NULL: all).
 * Returns how many QEMU processes are watched. */
typedef bool (*session_scope_fn)(const char *domain, const void *ctx);
size_t session_set_inventory(struct session *s, struct disk_list *fresh,
			     session_scope_fn in_scope, const void *ctx);

/* Without libvirt: watch these processes while they live, keep the others
 * (the comm filter's). Returns whether any of them is alive. */
bool session_watch_pids(struct session *s, const pid_t *pids, size_t n);

/* The libvirt disk behind (dev, ino), or NULL. */
const struct disk *session_disk(const struct session *s, uint64_t dev, uint64_t ino);

/* domain, target, source and mode of (dev, ino), any NULL where unknown.
 * io_known/io: the mode of files no libvirt disk owns (watch --io). */
struct event_names session_names(struct session *s, uint64_t dev, uint64_t ino,
				 bool io_known, enum io_mode io);
/* A stall or a pool wait (agg_blocks_guest): by the libvirt disk's mode,
 * else by io_known/io (only without libvirt). */
bool session_blocks_guest(const struct session *s, uint64_t dev, uint64_t ino,
			  uint32_t syscall, bool io_known, enum io_mode io);
/* "domain/target", else the path, else "dev D ino I". */
const char *session_row_name(struct session *s, uint64_t dev, uint64_t ino, char *buf,
			     size_t len);

/* The observer's new-file event: name the file while pid has it open. */
void session_on_new_file(struct session *s, pid_t pid, uint64_t dev, uint64_t ino);
/* Re-read the open files of watched processes (each at most once a
 * second unless force), so short-lived ones are named in time. */
void session_scan_watched(struct session *s, bool force);

/* The kernel's cumulative counters, into *out. */
int session_read(struct session *s, struct agg_snapshot *out);
/* After the read that closes an interval: give back the slots of keys
 * whose disk left libvirt and that had no call since the last such read,
 * and of any key idle for SESSION_IDLE_FORGET_S; they are removed from
 * *snap too, so a key counted again later starts a fresh interval. */
void session_forget_idle(struct session *s, struct agg_snapshot *snap);

uint32_t session_slots_total(const struct session *s);
uint32_t session_slots_in_use(const struct session *s);
uint64_t session_untracked(const struct session *s);

#endif
