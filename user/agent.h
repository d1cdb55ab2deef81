/* SPDX-License-Identifier: GPL-2.0-only */
/* The adaptive agent's state and steps: observe (stall events, interval
 * windows), decide (policy/adapt.c), act (apply.c), account (audit, metrics).
 * cmd_run.c owns the loop and signals; every libvirt call runs in the
 * libvirt thread (virt_worker.c): the agent hands it jobs and takes the
 * results, and never decides from an inventory older than its windows. */
#ifndef AIOGUARD_AGENT_H
#define AIOGUARD_AGENT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../policy/adapt.h"
#include "agent_config.h"
#include "aggregate.h"
#include "audit.h"
#include "disk.h"
#include "host.h"
#include "session.h"
#include "virt_worker.h"

/* What the agent remembers of one disk, across inventory refreshes and
 * libvirt reconnects. Identity: domain UUID + target + (dev, ino): a new
 * image behind the same target starts a fresh history. */
struct agent_disk {
	char *uuid, *domain, *target, *source;
	uint64_t dev, ino;
	struct adapt_window *win;      /* closed, oldest first: the last
	                                  history-windows only, all a decision
	                                  and its evidence read (allocated as
	                                  needed: a 64-window array in every
	                                  disk was 3.5 KiB of a disk's ~7) */
	uint32_t nwin, wincap;
	struct adapt_window cur;       /* the open window, from stall events */
	bool cur_grew;                 /* cur got a stall since the last check */
	uint32_t open_elapsed_ms;      /* deciding on the open window: how long
	                                  it has been open; 0 otherwise */
	int64_t last_change_s, last_stall_s, watched_since_s;
	enum adapt_action logged_action;   /* last audited, to log changes only */
	enum io_mode logged_to;
	/* the latest switch decided, for aioguard_disk_switch_timestamp_seconds
	 * (a guard's advice is not one); at 0: none yet */
	struct {
		double at;             /* CLOCK_REALTIME seconds */
		enum io_mode from, to;
		int result;
	} switched;
	const struct disk *disk;       /* in agent.s.disks; NULL when gone */
	double live_verify_since;      /* a live switch applied then (monotonic
	                                  s); 0: nothing to verify */
	enum io_mode live_from, live_to;
	/* its live record speaks of another image (io_live_stale) */
	bool reapply_out;              /* a reapply is with the libvirt thread */
	bool reapply_said;             /* a dry run's or a refusal's audit line
	                                  is written (once per image) */
	double reapply_next;           /* after a failure: not before (monotonic) */
};

/* A decision as it was taken: what its audit line says, even when the
 * libvirt thread answers later and the disk has changed or gone. */
struct agent_verdict {
	char *domain, *target, *source;
	enum io_mode from;
	enum image_state image;
	uint64_t holes;
	uint32_t open_elapsed_ms;
	struct adapt_window w[ADAPT_MAX_WINDOWS + 1];
	uint32_t n;
	struct adapt_decision dec;
	double evidence_at, decided;   /* monotonic seconds */
};

enum { RESULT_APPLIED, RESULT_DRY_RUN, RESULT_FAILED, RESULT_ADVISED, RESULT_UNCHANGED, RESULT_COUNT };

struct agent {
	struct agent_config cfg;
	struct session s;              /* the observer; s.disks: the last inventory */
	struct virt_worker *vw;        /* the libvirt thread */
	bool libvirt_up;               /* it answers (virt_worker_state) */
	bool inventory_asked;          /* an inventory job is out… */
	bool inventory_again;          /* …and one more is wanted after it (a
	                                  change came while it was out) */
	bool decide_pending;           /* windows closed: decide on the next inventory */
	double decide_evidence_at;     /* when they closed */
	size_t applies_out;            /* apply jobs out */
	struct io_uring_support iou;   /* as of the last inventory */
	char kernel[HOST_KERNEL_LEN];  /* QEMU's kernel release; "" if remote */
	struct agent_disk *disks;
	size_t ndisks;
	struct agg_snapshot prev, now;
	struct agg_snapshot open;      /* a read inside the open window */
	struct agg_snapshot open_max;  /* the longest submissions those reads saw:
	                                  each read ends an interval of maxima */
	double window_start;           /* monotonic seconds */
	double window_start_wall;      /* CLOCK_REALTIME of the read that opened the
	                                  window: a stall event from before it was
	                                  counted by the kernel in the closed one */
	double *changes;               /* monotonic times of applied changes */
	size_t nchanges;
	struct audit_log *audit;
	FILE *events;                  /* JSON lines of stalls and decisions, or NULL */
	bool inventory_dirty;          /* older than the windows, or libvirt said
	                                  a domain changed: no decision until a
	                                  fresh one arrives */
	uint64_t decisions[3][RESULT_COUNT];   /* [adapt_action][result] */
	uint64_t stalls_seen;
	double last_decision_latency_s;        /* evidence complete -> decided */
	double last_apply_latency_s;           /* decided -> XML defined */
};

void agent_init(struct agent *a, const struct agent_config *cfg);
void agent_free(struct agent *a);

/* Put back what a live switch killed half way left in running domains in
 * scope (live_repair: only domains with a swap recorded as under way), in
 * the libvirt thread, before anything else it is asked. */
void agent_repair_live(struct agent *a);
/* After libvirt made new nodes for a disk switched live (a snapshot's
 * overlay, a block copy or commit pivot: io_live_stale in the inventory),
 * swap them too where the policy still holds: the persistent XML still
 * says the mode switched to and the disk is not opted out; enforce with
 * --apply live only (else one audit line says what would be done).
 * Called with each inventory. */
void agent_recheck_live(struct agent *a);
/* Ask the libvirt thread for a fresh inventory (one at a time); the
 * inventory counts as stale until it arrives. */
void agent_request_inventory(struct agent *a);
/* Take what the libvirt thread finished: inventories (then the decisions
 * that waited for one), applied decisions (then their audit lines). */
void agent_take_done(struct agent *a);
/* Take a fresh inventory (moved) and this host's io_uring facts and kernel: keep
 * histories, watch the QEMU pids in scope. No libvirt call. */
void agent_take_inventory(struct agent *a, struct disk_list *fresh,
			  const struct io_uring_support *iou, const char *kernel);
/* Hand one stall event to the open window of its disk. */
void agent_on_stall(struct agent *a, const struct observer_stall *s);
/* Decide early for disks whose open window just turned bad, so a switch
 * does not wait for the window to close. */
void agent_check_open_windows(struct agent *a);
/* Close the window: read the kernel's counters, push; ask for a fresh
 * inventory and decide for all disks once it is there. */
void agent_close_window(struct agent *a);
/* The Prometheus text of everything the agent knows. */
void agent_write_metrics(struct agent *a, FILE *f);

#endif
