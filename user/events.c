// SPDX-License-Identifier: GPL-2.0-only
#include "events.h"

#include <time.h>

void json_add_str(json_object *o, const char *key, const char *v)
{
	json_object_object_add(o, key, v ? json_object_new_string(v) : NULL);
}

void json_add_u64(json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key, json_object_new_uint64(v));
}

void json_add_double(json_object *o, const char *key, double v)
{
	json_object_object_add(o, key, json_object_new_double(v));
}

static void add_names(json_object *o, const struct event_names *n)
{
	json_add_str(o, "domain", n->domain);
	json_add_str(o, "target", n->target);
	json_add_str(o, "source", n->source);
	json_add_str(o, "io_mode", n->io_mode);
}

json_object *event_stall(const struct observer_stall *s, const struct event_names *n,
			 bool guest_blocking)
{
	json_object *o = json_object_new_object();

	json_add_str(o, "type", guest_blocking ? "stall" : "pool_wait");
	json_add_double(o, "ts", s->ts);
	json_add_u64(o, "pid", (uint64_t)s->pid);
	json_add_u64(o, "tid", (uint64_t)s->tid);
	json_add_str(o, "thread", s->thread);
	add_names(o, n);
	json_add_u64(o, "dev", s->dev);
	json_add_u64(o, "ino", s->ino);
	json_add_str(o, "syscall", obs_syscall_name(s->syscall));
	json_add_double(o, "duration_us", (double)s->duration_ns / 1e3);
	json_add_double(o, "alloc_us", (double)s->alloc_ns / 1e3);
	json_add_double(o, "offcpu_us", (double)s->offcpu_ns / 1e3);
	json_add_u64(o, "requests", s->iocbs);
	json_add_u64(o, "bytes", s->bytes);
	return o;
}

json_object *event_disk(const struct agg_interval *r, double ts, const struct event_names *n,
			bool guest_blocking)
{
	json_object *o = json_object_new_object();

	json_add_str(o, "type", "disk");
	json_add_double(o, "ts", ts);
	add_names(o, n);
	json_add_u64(o, "dev", r->key.dev);
	json_add_u64(o, "ino", r->key.ino);
	json_add_str(o, "syscall", obs_syscall_name(r->key.syscall));
	json_add_u64(o, "submits", r->submits);
	json_add_u64(o, "requests", r->iocbs);
	json_add_u64(o, "bytes", r->bytes);
	json_add_double(o, "p50_us", r->p50_us);
	json_add_double(o, "p99_us", r->p99_us);
	json_add_double(o, "max_us", r->max_us);
	json_add_double(o, "alloc_us", r->alloc_us);
	json_add_double(o, "offcpu_us", r->offcpu_us);
	json_object_object_add(o, "guest_blocking", json_object_new_boolean(guest_blocking));
	json_add_u64(o, "stalls", guest_blocking ? r->stalls : 0);
	json_add_u64(o, "pool_waits", guest_blocking ? 0 : r->stalls);
	return o;
}

json_object *event_summary(double ts, uint64_t lost_events)
{
	json_object *o = json_object_new_object();

	json_add_str(o, "type", "summary");
	json_add_double(o, "ts", ts);
	json_add_u64(o, "lost_events", lost_events);
	return o;
}

void event_emit(FILE *f, json_object *o)
{
	fputs(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						   JSON_C_TO_STRING_NOSLASHESCAPE), f);
	fputc('\n', f);
	fflush(f);
	json_object_put(o);
}

static double clock_s(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double wall_clock_s(void)
{
	return clock_s(CLOCK_REALTIME);
}

double mono_clock_s(void)
{
	return clock_s(CLOCK_MONOTONIC);
}
