/* SPDX-License-Identifier: GPL-2.0-only */
/* The adaptive agent's state and steps: observe (stall events, interval
 * windows), decide (policy/adapt.c), act (apply.c), account (audit, metrics).
 * cmd_run.c owns the loop, signals and the libvirt connection. */
#ifndef AIOGUARD_AGENT_H
#define AIOGUARD_AGENT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <libvirt/libvirt.h>

#include "../policy/adapt.h"
#include "agent_config.h"
#include "aggregate.h"
#include "audit.h"
#include "disk.h"
#include "host.h"
#include "session.h"

/* What the agent remembers of one disk, across inventory refreshes and
 * libvirt reconnects. Identity: domain UUID + target + (dev, ino): a new
 * image behind the same target starts a fresh history. */
struct agent_disk {
	char *uuid, *domain, *target, *source;
	uint64_t dev, ino;
	struct adapt_window win[ADAPT_MAX_WINDOWS];   /* closed, oldest first */
	uint32_t nwin;
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
};

enum { RESULT_APPLIED, RESULT_DRY_RUN, RESULT_FAILED, RESULT_ADVISED, RESULT_UNCHANGED, RESULT_COUNT };

struct agent {
	struct agent_config cfg;
	struct session s;              /* the observer; s.disks: the last inventory */
	virConnectPtr conn;            /* NULL while libvirtd is away */
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
	bool inventory_dirty;          /* refresh before the next decision */
	uint64_t decisions[3][RESULT_COUNT];   /* [adapt_action][result] */
	uint64_t stalls_seen;
	double last_decision_latency_s;        /* evidence complete -> decided */
	double last_apply_latency_s;           /* decided -> XML defined */
};

void agent_init(struct agent *a, const struct agent_config *cfg);
void agent_free(struct agent *a);

/* Put back what a live switch killed half way left in running domains in
 * scope (live_repair: only domains with a swap recorded as under way). */
void agent_repair_live(struct agent *a);
/* Re-read the domains through a->conn and take them (agent_take_inventory). */
int agent_refresh(struct agent *a);
/* Take a fresh inventory (moved) and this host's io_uring facts and kernel: keep
 * histories, watch the QEMU pids in scope. No libvirt call. */
void agent_take_inventory(struct agent *a, struct disk_list *fresh,
			  const struct io_uring_support *iou, const char *kernel);
/* Hand one stall event to the open window of its disk. */
void agent_on_stall(struct agent *a, const struct observer_stall *s);
/* Decide early for disks whose open window just turned bad, so a switch
 * does not wait for the window to close. */
void agent_check_open_windows(struct agent *a);
/* Close the window: read the kernel's counters, push, decide for all. */
void agent_close_window(struct agent *a);
/* The Prometheus text of everything the agent knows. */
void agent_write_metrics(struct agent *a, FILE *f);

#endif
