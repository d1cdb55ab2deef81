/* SPDX-License-Identifier: GPL-2.0-only */
/* The JSON-lines stream (schema in README): built with json-c, one object a
 * line. watch and run write the same shapes. */
#ifndef AIOGUARD_EVENTS_H
#define AIOGUARD_EVENTS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <json-c/json.h>

#include "aggregate.h"
#include "observer.h"

/* Names of a (dev, ino): any may be NULL (-> JSON null); io_mode is the
 * disk's mode as the metrics name it ("native", "threads", "io_uring",
 * "default"), NULL where it is not known. */
struct event_names {
	const char *domain, *target, *source, *io_mode;
};

void json_add_str(json_object *o, const char *key, const char *v);   /* NULL -> null */
void json_add_u64(json_object *o, const char *key, uint64_t v);
void json_add_double(json_object *o, const char *key, double v);

/* A call >= the threshold: {"type":"stall"} when it blocked the thread that
 * submits the guest's I/O, {"type":"pool_wait"} when a worker of QEMU's
 * pool waited (agg_blocks_guest decides). */
json_object *event_stall(const struct observer_stall *s, const struct event_names *n,
			 bool guest_blocking);
/* One (disk, syscall) interval; its calls >= the threshold count as
 * "stalls" or as "pool_waits", never both. */
json_object *event_disk(const struct agg_interval *r, double ts, const struct event_names *n,
			bool guest_blocking);
json_object *event_summary(double ts, uint64_t lost_events);

/* Write one line and flush; drops the reference. */
void event_emit(FILE *f, json_object *o);

double wall_clock_s(void);       /* CLOCK_REALTIME seconds */
double mono_clock_s(void);       /* CLOCK_MONOTONIC seconds */

#endif
