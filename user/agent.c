// SPDX-License-Identifier: GPL-2.0-only
#include "agent.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "config.h"
#include "events.h"
#include "export_prom.h"
#include "inventory.h"
#include "live.h"
#include "util.h"
#include "virt.h"

static const char *const result_names[RESULT_COUNT] = {
	[RESULT_APPLIED] = "applied", [RESULT_DRY_RUN] = "dry-run",
	[RESULT_FAILED] = "failed", [RESULT_ADVISED] = "advise-only",
	[RESULT_UNCHANGED] = "unchanged",   /* libvirt already had that mode */
};

void agent_init(struct agent *a, const struct agent_config *cfg)
{
	*a = (struct agent){.cfg = *cfg, .window_start = mono_clock_s(),
			    .window_start_wall = wall_clock_s()};
}

static void disk_forget(struct agent_disk *d)
{
	free(d->uuid);
	free(d->domain);
	free(d->target);
	free(d->source);
	free(d->win);
}

void agent_free(struct agent *a)
{
	for (size_t i = 0; i < a->ndisks; i++)
		disk_forget(&a->disks[i]);
	free(a->disks);
	free(a->changes);
	agg_snapshot_free(&a->prev);
	agg_snapshot_free(&a->now);
	agg_snapshot_free(&a->open);
	agg_snapshot_free(&a->open_max);
}

static int64_t now_s(void)
{
	return (int64_t)mono_clock_s();
}

/* ---- inventory ---------------------------------------------------------- */

static bool same_disk(const struct agent_disk *d, const struct disk *x)
{
	return streq_null(d->uuid, x->domain_uuid) && streq_null(d->target, x->target) &&
	       d->dev == x->image.dev && d->ino == x->image.ino;
}

/* Only local disks the agent could ever switch: a file or block device it
 * could inspect, of a running domain in scope (a defined-only domain has no
 * QEMU to observe: no evidence, no decision), not read-only media. */
static bool watchable(const struct agent *a, const struct disk *x)
{
	return x->domain_active && x->image.state != IMAGE_UNKNOWN && !x->readonly &&
	       x->device == DISK_DEVICE_DISK && config_domain_in_scope(&a->cfg, x->domain);
}

static struct agent_disk *track(struct agent *a, const struct disk *x)
{
	for (size_t i = 0; i < a->ndisks; i++)
		if (same_disk(&a->disks[i], x))
			return &a->disks[i];
	a->disks = xrealloc(a->disks, (a->ndisks + 1) * sizeof(*a->disks));
	struct agent_disk *d = &a->disks[a->ndisks++];
	*d = (struct agent_disk){
		.uuid = xstrdup(x->domain_uuid), .domain = xstrdup(x->domain),
		.target = xstrdup(x->target), .source = xstrdup(x->source),
		.dev = x->image.dev, .ino = x->image.ino,
		.last_change_s = -1, .last_stall_s = -1, .watched_since_s = now_s(),
	};
	return d;
}

/* Disks gone from libvirt are dropped, so memory and metric labels stay
 * bounded by what exists. */
static void drop_gone(struct agent *a)
{
	size_t kept = 0;
	for (size_t i = 0; i < a->ndisks; i++) {
		if (a->disks[i].disk)
			a->disks[kept++] = a->disks[i];
		else
			disk_forget(&a->disks[i]);
	}
	a->ndisks = kept;
}

static bool domain_in_scope(const char *domain, const void *cfg)
{
	return config_domain_in_scope(cfg, domain);
}

void agent_take_inventory(struct agent *a, struct disk_list *fresh,
			  const struct io_uring_support *iou, const char *kernel)
{
	session_set_inventory(&a->s, fresh, domain_in_scope, &a->cfg);
	a->iou = *iou;
	snprintf(a->kernel, sizeof(a->kernel), "%s", kernel);
	for (size_t i = 0; i < a->ndisks; i++)
		a->disks[i].disk = NULL;
	for (size_t i = 0; i < a->s.disks.n; i++)
		if (watchable(a, &a->s.disks.v[i]))
			track(a, &a->s.disks.v[i])->disk = &a->s.disks.v[i];
	drop_gone(a);
	/* an inventory read while a change is being applied predates it */
	a->inventory_dirty = a->applies_out > 0;
	if (!a->inventory_dirty)
		agent_recheck_live(a);
}

void agent_request_inventory(struct agent *a)
{
	a->inventory_dirty = true;
	a->inventory_again = a->inventory_asked;
	if (a->inventory_asked || !a->vw)
		return;
	struct virt_job *j = xcalloc(1, sizeof(*j));
	j->kind = VIRT_JOB_INVENTORY;
	virt_worker_submit(a->vw, j);
	a->inventory_asked = true;
}

/* In the libvirt thread: live_repair every running domain in scope. */
static void repair_live_with(virConnectPtr conn, void *arg)
{
	const struct agent_config *cfg = arg;
	virDomainPtr *doms = NULL;
	char msg[512];
	int n = virConnectListAllDomains(conn, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);

	for (int i = 0; i < n; i++) {
		const char *name = virDomainGetName(doms[i]);
		int rc = config_domain_in_scope(cfg, name)
				 ? live_repair(doms[i], cfg->state_dir, msg, sizeof(msg)) : 0;

		if (rc < 0)
			log_err("%s: a live switch left half done could not be put back: %s", name, msg);
		else if (rc > 0)
			log_err("%s: %s", name, msg);
		virDomainFree(doms[i]);
	}
	free(doms);
}

void agent_repair_live(struct agent *a)
{
	struct agent_config *cfg = xcalloc(1, sizeof(*cfg));
	struct virt_job *j = xcalloc(1, sizeof(*j));

	*cfg = a->cfg;
	*j = (struct virt_job){.kind = VIRT_JOB_CALL, .call = repair_live_with, .arg = cfg};
	virt_worker_submit(a->vw, j);
}

static struct agent_disk *find_devino(struct agent *a, uint64_t dev, uint64_t ino)
{
	for (size_t i = 0; i < a->ndisks; i++)
		if (a->disks[i].dev == dev && a->disks[i].ino == ino && a->disks[i].disk)
			return &a->disks[i];
	return NULL;
}

/* A disk by name, as a decision's verdict holds it; NULL when gone. */
static struct agent_disk *find_disk(struct agent *a, const char *domain, const char *target)
{
	for (size_t i = 0; i < a->ndisks; i++)
		if (a->disks[i].disk && streq_null(a->disks[i].domain, domain) &&
		    streq_null(a->disks[i].target, target))
			return &a->disks[i];
	return NULL;
}

/* ---- observing ---------------------------------------------------------- */

/* The mode as the metrics and the JSON lines name it. */
static const char *io_label(enum io_mode io)
{
	return io_mode_name(io) ? io_mode_name(io) : "default";
}

/* A stall counts for its disk's window only when it blocked the thread
 * that submits in the disk's mode (agg_blocks_guest: io_submit for native,
 * io_uring_enter for io_uring, the pool's reads and writes for threads); a
 * pool worker's fdatasync is a pool wait, kept apart as evidence. An event
 * read from the ring buffer after the window closed, of a call that ended
 * before, is the closed window's: the kernel counted it there already. */
void agent_on_stall(struct agent *a, const struct observer_stall *s)
{
	struct agent_disk *d = find_devino(a, s->dev, s->ino);
	struct event_names n = {0};
	bool blocks = d ? agg_blocks_guest(s->syscall, d->disk->io, true)
			: agg_blocks_guest(s->syscall, IO_MODE_UNSET, false);
	bool open_window = s->ts >= a->window_start_wall;

	a->stalls_seen++;
	if (d)
		n = (struct event_names){d->domain, d->target, d->source, io_label(d->disk->io)};
	if (d && blocks) {
		d->last_stall_s = now_s();
		if (open_window) {
			d->cur.stalls++;
			d->cur.stalled_us += s->duration_ns / 1000;
			d->cur_grew = true;
		} else if (d->nwin) {   /* its time, which only events carry */
			d->win[d->nwin - 1].stalled_us += s->duration_ns / 1000;
		}
	} else if (d && open_window) {
		d->cur.pool_waits++;
	}
	if (a->events)
		event_emit(a->events, event_stall(s, &n, blocks));
}

/* ---- deciding and acting ------------------------------------------------ */

static uint32_t changes_last_hour(struct agent *a, double now)
{
	size_t kept = 0;
	for (size_t i = 0; i < a->nchanges; i++)
		if (now - a->changes[i] < 3600)
			a->changes[kept++] = a->changes[i];
	a->nchanges = kept;
	return (uint32_t)kept;
}

static json_object *window_json(const struct adapt_window *w)
{
	json_object *o = json_object_new_object();
	json_add_u64(o, "submits", w->submits);
	json_add_u64(o, "stalls", w->stalls);
	json_add_u64(o, "stalled_us", w->stalled_us);
	json_add_u64(o, "p99_us", w->p99_us);
	json_add_u64(o, "alloc_us", w->alloc_us);
	json_add_u64(o, "pool_waits", w->pool_waits);
	json_add_u64(o, "length_ms", w->length_ms);
	return o;
}

static json_object *evidence_json(const struct agent *a, const struct agent_verdict *v)
{
	json_object *o = json_object_new_object(), *arr = json_object_new_array();
	uint32_t k = a->cfg.adapt.history_windows;
	for (uint32_t i = v->n > k ? v->n - k : 0; i < v->n; i++) {
		json_object *wj = window_json(&v->w[i]);

		/* the open window: its figures so far, judged against its full length */
		if (i == v->n - 1 && v->open_elapsed_ms) {
			json_object_object_add(wj, "open", json_object_new_boolean(true));
			json_add_u64(wj, "elapsed_ms", v->open_elapsed_ms);
		}
		json_object_array_add(arr, wj);
	}
	json_add_u64(o, "bad_windows", v->dec.bad_windows);
	json_add_u64(o, "history_windows", k);
	json_add_str(o, "image", image_state_name(v->image));
	json_add_u64(o, "image_holes_bytes", v->holes);
	json_add_str(o, "target_mode", adapt_target_name(a->cfg.adapt.target));
	json_object *iou = json_object_new_object();
	json_object_object_add(iou, "usable", a->iou.known ?
			       json_object_new_boolean(a->iou.usable) : NULL);
	json_add_str(iou, "why", a->iou.why[0] ? a->iou.why : NULL);
	json_object_object_add(o, "io_uring", iou);
	json_object_object_add(o, "windows", arr);
	return o;
}

/* One record out: the --events stream, then the audit log (with line for
 * syslog); line is freed. */
static void publish(struct agent *a, json_object *o, char *line)
{
	if (a->events)
		event_emit(a->events, json_object_get(o));
	audit_log_write(a->audit, o, line);
	free(line);
}

static void audit_decision(struct agent *a, const struct agent_verdict *v, int result,
			   const struct apply_result *res, double apply_latency_s)
{
	json_object *o = json_object_new_object();
	json_add_str(o, "type", "decision");
	json_add_double(o, "ts", wall_clock_s());
	json_add_str(o, "domain", v->domain);
	json_add_str(o, "target", v->target);
	json_add_str(o, "source", v->source);
	json_add_str(o, "from", io_mode_name(v->from));
	json_add_str(o, "to", io_mode_name(v->dec.to));
	json_add_str(o, "action", adapt_action_name(v->dec.action));
	json_add_str(o, "mode", a->cfg.enforce ? "enforce" : "dry-run");
	json_add_str(o, "apply", apply_strategy_name(res && res->message[0] ? res->strategy : a->cfg.apply));
	json_add_str(o, "reason", v->dec.reason);
	json_object_object_add(o, "evidence", evidence_json(a, v));
	json_add_str(o, "result", result_names[result]);
	/* evidence complete -> decided; decided -> XML defined (enforce only) */
	json_add_double(o, "decision_latency_ms", (v->decided - v->evidence_at) * 1e3);
	if (result == RESULT_APPLIED || result == RESULT_FAILED)
		json_add_double(o, "apply_latency_ms", apply_latency_s * 1e3);
	json_add_str(o, "message", res && res->message[0] ? res->message : NULL);
	json_add_str(o, "backup", res && res->backup_path[0] ? res->backup_path : NULL);

	/* A failure says why in syslog too: the audit log may be what failed
	 * (a full or read-only state directory). */
	bool why = result == RESULT_FAILED && res && res->message[0];
	char *line = xasprintf("%s %s/%s: %s -> %s (%s): %s%s%s", result_names[result], v->domain,
			       v->target, io_mode_name(v->from) ? io_mode_name(v->from) : "-",
			       io_mode_name(v->dec.to) ? io_mode_name(v->dec.to) : "-",
			       a->cfg.enforce ? "enforce" : "dry-run", v->dec.reason,
			       why ? "; " : "", why ? res->message : "");
	publish(a, o, line);
}

/* ---- verifying a live switch ------------------------------------------- */

/* QEMU cannot be asked which aio a file node has: the observer must see
 * the disk's submissions move (io_submit stops, the pool's writes or
 * io_uring_enter start). */
static void expect_live_switch(struct agent_disk *d, const struct apply_result *res)
{
	if (!res->live || res->strategy != APPLY_LIVE)
		return;
	d->live_verify_since = mono_clock_s();
	d->live_from = res->old_io;
	d->live_to = res->new_io;
}

static void audit_live_verify(struct agent *a, const struct agent_disk *d, uint64_t old_way,
			      uint64_t new_way)
{
	const char *result = old_way ? "contradicted" : "confirmed";
	json_object *o = json_object_new_object();
	char *line = xasprintf("live switch %s %s/%s: %s -> %s: the observer saw %llu submissions the old way, %llu the new",
			       result, d->domain, d->target, io_label(d->live_from), io_label(d->live_to),
			       (unsigned long long)old_way, (unsigned long long)new_way);

	json_add_str(o, "type", "live_verify");
	json_add_double(o, "ts", wall_clock_s());
	json_add_str(o, "domain", d->domain);
	json_add_str(o, "target", d->target);
	json_add_str(o, "from", io_label(d->live_from));
	json_add_str(o, "to", io_label(d->live_to));
	json_add_u64(o, "old_way_submits", old_way);
	json_add_u64(o, "new_way_submits", new_way);
	json_add_str(o, "result", result);
	log_err("%s", line);
	publish(a, o, line);
}

/* One window opened after the switch, with I/O on the disk, decides. */
static void verify_live_switch(struct agent *a, struct agent_disk *d,
			       const struct agg_interval *rows, size_t n)
{
	uint64_t old_way = 0, new_way = 0;

	if (!d->live_verify_since || a->window_start < d->live_verify_since)
		return;
	for (size_t i = 0; i < n; i++) {
		uint32_t sc = rows[i].key.syscall;

		if (rows[i].key.dev != d->dev || rows[i].key.ino != d->ino)
			continue;
		if (agg_blocks_guest(sc, d->live_from, true) && !agg_blocks_guest(sc, d->live_to, true))
			old_way += rows[i].submits;
		else if (agg_blocks_guest(sc, d->live_to, true))
			new_way += rows[i].submits;
	}
	if (!old_way && !new_way)
		return;   /* no I/O yet */
	audit_live_verify(a, d, old_way, new_way);
	d->live_verify_since = 0;
}

/* ---- reapplying a live switch ------------------------------------------ */

/* Why the inventory and not libvirt's events: libvirt 9.0 sends no event
 * for an external disk-only snapshot (a block job event comes for a commit
 * or copy only), and the inventory already reads every running domain's
 * live XML at each window's close and on every lifecycle event; its top
 * image against the record (io_live_stale) costs no QMP call. A node
 * libvirt made thus runs the XML's io for a window at most. A restart or
 * an incoming migration is a new QEMU: its record is dropped (live_state),
 * the persistent XML it started from already says the mode. */
#define REAPPLY_RETRY_S 60.0

struct agent_reapply {
	struct virt_job job;
	char *domain, *target, *source, *state_dir;
	enum io_mode io, xml_io;
	double detected;               /* monotonic: when the inventory showed it */
	int rc;
	char msg[1024];
};

/* In the libvirt thread. */
static void reapply_with(virConnectPtr conn, void *arg)
{
	struct agent_reapply *r = arg;
	virDomainPtr dom = virDomainLookupByName(conn, r->domain);

	if (!dom) {
		r->rc = -1;
		snprintf(r->msg, sizeof(r->msg), "%s", virt_last_error());
		return;
	}
	r->rc = live_swap(dom, r->target, r->io, r->xml_io, r->state_dir, r->msg, sizeof(r->msg));
	virDomainFree(dom);
}

static void audit_reapply(struct agent *a, const char *domain, const char *target,
			  const char *source, enum io_mode from, enum io_mode to,
			  const char *result, const char *message, double latency_s)
{
	json_object *o = json_object_new_object();
	char *line = xasprintf("live reapply %s %s/%s (%s): %s -> %s: %s", result, domain, target,
			       source, io_label(from), io_label(to), message);

	json_add_str(o, "type", "live_reapply");
	json_add_double(o, "ts", wall_clock_s());
	json_add_str(o, "domain", domain);
	json_add_str(o, "target", target);
	json_add_str(o, "source", source);
	json_add_str(o, "from", io_label(from));
	json_add_str(o, "to", io_label(to));
	json_add_str(o, "reason", "libvirt made new nodes for the disk since its live switch (a snapshot, block copy or commit): they run the live XML's io");
	json_add_str(o, "result", result);
	if (latency_s >= 0)
		json_add_double(o, "latency_ms", latency_s * 1e3);
	json_add_str(o, "message", message);
	log_err("%s", line);
	publish(a, o, line);
}

static void submit_reapply(struct agent *a, struct agent_disk *d)
{
	struct agent_reapply *r = xcalloc(1, sizeof(*r));

	*r = (struct agent_reapply){
		.domain = xstrdup(d->domain), .target = xstrdup(d->target),
		.source = xstrdup(d->source), .state_dir = xstrdup(a->cfg.state_dir),
		.io = d->disk->io_live_wanted, .xml_io = d->disk->io_xml, .detected = mono_clock_s(),
	};
	r->job = (struct virt_job){.kind = VIRT_JOB_CALL, .call = reapply_with, .arg = r,
				   .owner = r, .label = "reapplying a live switch"};
	d->reapply_out = true;
	a->applies_out++;   /* no decision until it is read back */
	a->inventory_dirty = true;
	virt_worker_submit(a->vw, &r->job);
}

static void finish_reapply(struct agent *a, struct agent_reapply *r)
{
	struct agent_disk *d = find_disk(a, r->domain, r->target);
	const char *result = r->rc < 0 ? "failed" : r->rc > 0 ? "applied" : "unchanged";

	a->applies_out--;
	audit_reapply(a, r->domain, r->target, r->source, r->xml_io, r->io, result, r->msg,
		      mono_clock_s() - r->detected);
	if (d) {
		d->reapply_out = false;
		d->reapply_next = r->rc < 0 ? mono_clock_s() + REAPPLY_RETRY_S : 0;
		if (r->rc > 0) {   /* the observer must see the overlay's I/O move */
			d->live_verify_since = mono_clock_s();
			d->live_from = r->xml_io;
			d->live_to = r->io;
		}
	}
	agent_request_inventory(a);
	free(r->domain);
	free(r->target);
	free(r->source);
	free(r->state_dir);
	free(r);
}

/* Said once per image: what would be done, or why it is not. */
static void reapply_say(struct agent *a, struct agent_disk *d, const char *result, const char *why)
{
	if (d->reapply_said)
		return;
	d->reapply_said = true;
	audit_reapply(a, d->domain, d->target, d->source, d->disk->io_xml, d->disk->io_live_wanted,
		      result, why, -1);
}

void agent_recheck_live(struct agent *a)
{
	for (size_t i = 0; i < a->ndisks; i++) {
		struct agent_disk *d = &a->disks[i];
		const struct disk *x = d->disk;
		char why[256];

		if (!x || !x->io_live_stale || d->reapply_out || mono_clock_s() < d->reapply_next ||
		    !a->vw)
			continue;
		if (x->io_next_boot != x->io_live_wanted || x->opted_out != OPT_OUT_NONE) {
			snprintf(why, sizeof(why), "not reapplied: %s", x->opted_out != OPT_OUT_NONE
				 ? "the disk is opted out (aioguard metadata)"
				 : "the persistent XML no longer says the mode switched to");
			reapply_say(a, d, "skipped", why);
		} else if (!a->cfg.enforce || a->cfg.apply != APPLY_LIVE) {
			snprintf(why, sizeof(why), "would swap its new nodes to aio=%s (enforce with --apply live does)",
				 io_label(x->io_live_wanted));
			reapply_say(a, d, "dry-run", why);
		} else {
			submit_reapply(a, d);
		}
	}
}

/* A decision's outcome: counted, audited and said; d: its disk, NULL
 * when it has gone meanwhile. */
static void account(struct agent *a, struct agent_disk *d, const struct agent_verdict *v,
		    int result, const struct apply_result *res, double apply_latency_s)
{
	if (result == RESULT_APPLIED) {
		a->changes = xrealloc(a->changes, (a->nchanges + 1) * sizeof(*a->changes));
		a->changes[a->nchanges++] = mono_clock_s();
	}
	a->decisions[v->dec.action][result]++;
	a->last_decision_latency_s = v->decided - v->evidence_at;
	a->last_apply_latency_s = apply_latency_s;
	if (d && v->dec.action == ADAPT_SWITCH) {   /* aioguard_disk_switch_timestamp_seconds */
		if (result == RESULT_APPLIED)
			expect_live_switch(d, res);
		d->switched.at = wall_clock_s();
		d->switched.from = v->from;
		d->switched.to = v->dec.to;
		d->switched.result = result;
	}
	audit_decision(a, v, result, res, apply_latency_s);
	/* Applied and failed changes are always said: a failure's message may
	 * be nowhere else when the audit log cannot be written. */
	if (result == RESULT_APPLIED || result == RESULT_FAILED)
		log_err("%s/%s: %s", v->domain, v->target, res->message);
	else if (result != RESULT_DRY_RUN)
		log_info("%s/%s: %s", v->domain, v->target,
			 res && res->message[0] ? res->message : v->dec.reason);
}

static void verdict_free(struct agent_verdict *v)
{
	free(v->domain);
	free(v->target);
	free(v->source);
	free(v);
}

/* An apply job: the request, what it owns, and the verdict it carries out. */
struct agent_apply {
	struct virt_job job;
	char *backups, *state_dir;
	struct agent_verdict *v;
};

/* Enforce: the libvirt thread applies (apply.c: backup, validated define,
 * rollback); the audit line is written when it answers. */
static void submit_apply(struct agent *a, struct agent_verdict *v)
{
	struct agent_apply *p = xcalloc(1, sizeof(*p));

	p->backups = xasprintf("%s/backups", a->cfg.state_dir);
	p->state_dir = xstrdup(a->cfg.state_dir);
	p->v = v;
	p->job = (struct virt_job){
		.kind = VIRT_JOB_APPLY, .owner = p,
		.req = {.domain = v->domain, .target = v->target, .io = v->dec.to,
			.strategy = a->cfg.apply, .live_fallback = true,
			.fallback = a->cfg.live_fallback, .backup_dir = p->backups,
			.state_dir = p->state_dir},
	};
	virt_worker_submit(a->vw, &p->job);
	a->applies_out++;
}

static void finish_apply(struct agent *a, struct agent_apply *p)
{
	int result = p->job.rc < 0 ? RESULT_FAILED
				   : p->job.res.changed ? RESULT_APPLIED : RESULT_UNCHANGED;

	a->applies_out--;
	account(a, find_disk(a, p->v->domain, p->v->target), p->v, result, &p->job.res,
		mono_clock_s() - p->v->decided);
	agent_request_inventory(a);   /* new io; after save-restore a new pid */
	verdict_free(p->v);
	free(p->backups);
	free(p->state_dir);
	free(p);
}

static void decide_closed(struct agent *a);

void agent_take_done(struct agent *a)
{
	struct virt_job *j;

	while (a->vw && (j = virt_worker_done(a->vw))) {
		if (j->kind == VIRT_JOB_APPLY) {
			finish_apply(a, j->owner);
			continue;
		}
		if (j->kind == VIRT_JOB_CALL && j->owner) {
			finish_reapply(a, j->owner);
			continue;
		}
		if (j->kind == VIRT_JOB_CALL) {
			free(j->arg);
			free(j);
			continue;
		}
		a->inventory_asked = false;
		if (j->rc == 0 || j->disks.n)
			agent_take_inventory(a, &j->disks, &j->iou, j->kernel);
		disk_list_free(&j->disks);
		free(j);
		if (a->inventory_again)   /* older than a change libvirt told of */
			agent_request_inventory(a);
	}
	if (a->decide_pending && !a->inventory_dirty && a->libvirt_up)
		decide_closed(a);
}

static struct agent_verdict *verdict_new(const struct agent_disk *d, const struct adapt_window *w,
					 uint32_t n, const struct adapt_decision *dec,
					 double evidence_at)
{
	struct agent_verdict *v = xcalloc(1, sizeof(*v));
	*v = (struct agent_verdict){
		.domain = xstrdup(d->domain), .target = xstrdup(d->target),
		.source = xstrdup(d->source), .from = d->disk->io,
		.image = d->disk->image.state, .holes = d->disk->image.hole_bytes,
		.open_elapsed_ms = d->open_elapsed_ms, .n = n, .dec = *dec,
		.evidence_at = evidence_at, .decided = mono_clock_s(),
	};
	memcpy(v->w, w, n * sizeof(*w));
	return v;
}

static void act(struct agent *a, struct agent_disk *d, const struct adapt_window *w, uint32_t n,
		const struct adapt_decision *dec, double evidence_at)
{
	struct agent_verdict *v = verdict_new(d, w, n, dec, evidence_at);

	/* A dry run and a failure count as a change for the cooldown too: the
	 * same advice every window would flood the log, the same failure
	 * would hammer libvirt. */
	if (dec->action == ADAPT_SWITCH)
		d->last_change_s = now_s();
	if (dec->action == ADAPT_SWITCH && a->cfg.enforce) {
		submit_apply(a, v);
		a->inventory_dirty = true;   /* no decision until the change is read back */
		return;
	}
	account(a, d, v, dec->action == ADAPT_SWITCH ? RESULT_DRY_RUN : RESULT_ADVISED, NULL, 0);
	verdict_free(v);
}

static void decide(struct agent *a, struct agent_disk *d, const struct adapt_window *w, uint32_t n,
		   double evidence_at)
{
	struct adapt_disk in;

	disk_adapt_facts(d->disk, &a->iou, a->kernel, &in);
	in.last_change_s = d->last_change_s;
	in.last_stall_s = d->last_stall_s;
	in.watched_since_s = d->watched_since_s;
	in.windows = w;
	in.nwindows = n;
	struct adapt_global g = {.now_s = now_s(),
				 .changes_last_hour = changes_last_hour(a, mono_clock_s())};
	struct adapt_decision dec;

	adapt_decide(&a->cfg.adapt, &in, &g, &dec);
	if (dec.action == ADAPT_KEEP) {
		d->logged_action = ADAPT_KEEP;
		return;
	}
	/* Advice that does not change is said once, not every window. */
	if (dec.action == ADAPT_ADVISE_ONLY && d->logged_action == ADAPT_ADVISE_ONLY &&
	    d->logged_to == dec.to)
		return;
	d->logged_action = dec.action;
	d->logged_to = dec.to;
	act(a, d, w, n, &dec, evidence_at);
}

/* The closed windows plus the open one. The open one is judged against the
 * full window length: what it holds already is a lower bound of what it will
 * hold when it closes, so a window bad now stays bad (one stall in its first
 * millisecond is not "1000 ms stalled per second"). */
static uint32_t windows_with_open(const struct agent *a, const struct agent_disk *d,
				  struct adapt_window *out)
{
	if (d->nwin)   /* no history yet: d->win is NULL, and memcpy's source must not be */
		memcpy(out, d->win, d->nwin * sizeof(*out));
	out[d->nwin] = d->cur;
	out[d->nwin].length_ms = a->cfg.interval_s * 1000;
	return d->nwin + 1;
}

/* The longest submission of each key over the reads of this window. */
static void keep_max(struct agg_snapshot *acc, struct agg_entry *e)
{
	for (size_t i = 0; i < acc->n; i++) {
		if (!agg_key_equal(&acc->v[i].key, &e->key))
			continue;
		if (e->c.interval_max_ns > acc->v[i].c.interval_max_ns)
			acc->v[i].c.interval_max_ns = e->c.interval_max_ns;
		e->c.interval_max_ns = acc->v[i].c.interval_max_ns;
		return;
	}
	agg_snapshot_add(acc, &e->key)->c.interval_max_ns = e->c.interval_max_ns;
}

/* The kernel's counters since the window opened, one read for all disks.
 * A read ends an interval of the per-CPU maxima, so what each saw is kept
 * for the window's own read at its close. */
static size_t read_open(struct agent *a, struct agg_interval **rows)
{
	session_read(&a->s, &a->open);
	for (size_t i = 0; i < a->open.n; i++)
		keep_max(&a->open_max, &a->open.v[i]);
	return agg_intervals(&a->prev, &a->open, rows);
}

static void fill_window(struct agent_disk *d, const struct agg_interval *rows, size_t n,
			uint32_t length_ms, struct adapt_window *w);

void agent_check_open_windows(struct agent *a)
{
	struct adapt_window w[ADAPT_MAX_WINDOWS + 1];
	struct agg_interval *rows = NULL;
	size_t nrows = 0;
	bool read = false;

	if (a->inventory_dirty || !a->libvirt_up)   /* never decide from a stale inventory */
		return;
	for (size_t i = 0; i < a->ndisks; i++) {
		struct agent_disk *d = &a->disks[i];
		if (!d->cur_grew || !d->disk)
			continue;
		d->cur_grew = false;
		uint32_t n = windows_with_open(a, d, w);
		if (!adapt_window_is_bad(&a->cfg.adapt, &w[n - 1]))
			continue;
		double at = mono_clock_s();
		if (!read) {
			nrows = read_open(a, &rows);
			read = true;
		}
		/* the evidence says what the window holds so far, not only its stalls */
		fill_window(d, rows, nrows, w[n - 1].length_ms, &w[n - 1]);
		d->open_elapsed_ms = (uint32_t)fmax(1, (at - a->window_start) * 1000);
		decide(a, d, w, n, at);
		d->open_elapsed_ms = 0;
	}
	free(rows);
}

/* Keep the last `keep` (history-windows) closed windows: nothing reads
 * older ones. After a SIGHUP that raises history-windows the history
 * grows back to it one window at a time. */
static void push_window(struct agent_disk *d, const struct adapt_window *w, uint32_t keep)
{
	if (keep < 1)
		keep = 1;
	if (keep > ADAPT_MAX_WINDOWS)
		keep = ADAPT_MAX_WINDOWS;
	if (d->nwin >= keep) {
		uint32_t drop = d->nwin - keep + 1;
		d->nwin -= drop;
		memmove(d->win, d->win + drop, d->nwin * sizeof(d->win[0]));
	}
	if (d->wincap < keep) {
		d->win = xrealloc(d->win, keep * sizeof(d->win[0]));
		d->wincap = keep;
	}
	d->win[d->nwin++] = *w;
}

/* Sum into one disk's window the syscalls that block its guest in its mode
 * (agg_blocks_guest); the kernel's stall count is authoritative (ring
 * buffer events can be lost), stalled time comes from the events. The
 * pool's calls over the threshold are counted apart, as evidence only. */
static void fill_window(struct agent_disk *d, const struct agg_interval *rows, size_t n,
			uint32_t length_ms, struct adapt_window *w)
{
	*w = (struct adapt_window){.stalled_us = d->cur.stalled_us, .length_ms = length_ms};
	for (size_t i = 0; i < n; i++) {
		if (rows[i].key.dev != d->dev || rows[i].key.ino != d->ino)
			continue;
		if (!agg_blocks_guest(rows[i].key.syscall, d->disk->io, true)) {
			w->pool_waits += rows[i].stalls;
			continue;
		}
		w->submits += rows[i].submits;
		w->stalls += rows[i].stalls;
		w->alloc_us += (uint64_t)rows[i].alloc_us;
		w->p99_us = (uint64_t)fmax((double)w->p99_us, rows[i].p99_us);
	}
	if (d->cur.stalls > w->stalls)
		w->stalls = d->cur.stalls;
	if (d->cur.pool_waits > w->pool_waits)
		w->pool_waits = d->cur.pool_waits;
}

void agent_close_window(struct agent *a)
{
	struct agg_interval *rows;
	double now = mono_clock_s();
	uint32_t length_ms = (uint32_t)fmax(1, (now - a->window_start) * 1000);
	double wall = wall_clock_s();

	session_read(&a->s, &a->now);
	for (size_t i = 0; i < a->now.n; i++)   /* the maxima earlier reads took */
		keep_max(&a->open_max, &a->now.v[i]);
	agg_snapshot_clear(&a->open_max);
	size_t n = agg_intervals(&a->prev, &a->now, &rows);
	for (size_t i = 0; i < a->ndisks; i++) {
		struct agent_disk *d = &a->disks[i];
		struct adapt_window w;
		fill_window(d, rows, n, length_ms, &w);
		push_window(d, &w, a->cfg.adapt.history_windows);
		verify_live_switch(a, d, rows, n);
		d->cur = (struct adapt_window){0};
		d->cur_grew = false;
	}
	free(rows);
	session_forget_idle(&a->s, &a->now);
	struct agg_snapshot tmp = a->prev;
	a->prev = a->now;
	a->now = tmp;
	a->window_start = now;
	a->window_start_wall = wall;
	/* the decisions on these windows wait for an inventory at least as new */
	a->decide_pending = true;
	a->decide_evidence_at = now;
	agent_request_inventory(a);
}

static void decide_closed(struct agent *a)
{
	a->decide_pending = false;
	for (size_t i = 0; i < a->ndisks; i++)
		if (a->disks[i].disk && a->disks[i].nwin)
			decide(a, &a->disks[i], a->disks[i].win, a->disks[i].nwin,
			       a->decide_evidence_at);
}

/* ---- metrics ------------------------------------------------------------ */

static void write_disk_metrics(struct agent *a, FILE *f)
{
	static double le[OBS_SLOTS - 1];
	struct prom_disk_series *s = xcalloc(a->prev.n, sizeof(*s));
	size_t n = 0;

	/* slot k holds [2^k, 2^(k+1)) µs (slot 0: [0, 2)); the last slot is
	 * open-ended and so only counts in +Inf */
	for (int k = 0; k < OBS_SLOTS - 1; k++)
		le[k] = ldexp(1e-6, k + 1);
	for (size_t i = 0; i < a->prev.n; i++) {
		const struct agg_entry *e = &a->prev.v[i];
		const struct agent_disk *d = find_devino(a, e->key.dev, e->key.ino);
		if (!d)
			continue;
		s[n++] = (struct prom_disk_series){
			.domain = d->domain, .target = d->target, .source = d->source,
			.io_mode = io_label(d->disk->io),
			.syscall = obs_syscall_name(e->key.syscall),
			.guest_blocking = agg_blocks_guest(e->key.syscall, d->disk->io, true),
			.buckets = e->c.slots, .le_seconds = le, .nbuckets = OBS_SLOTS - 1,
			.count = e->c.count, .sum_ns = e->c.sum_ns, .stalls = e->c.stalls,
			.alloc_ns = e->c.alloc_ns, .offcpu_ns = e->c.offcpu_ns, .bytes = e->c.bytes,
		};
	}
	prom_write_disk_series(f, s, n, a->cfg.metrics_detail);
	free(s);
}

static void write_recommendations(struct agent *a, FILE *f)
{
	struct prom_recommendation *r = xcalloc(a->ndisks, sizeof(*r));
	for (size_t i = 0; i < a->ndisks; i++) {
		const struct disk *x = a->disks[i].disk;
		struct advice adv;

		disk_advise(x, &a->iou, a->kernel, &adv);
		r[i] = (struct prom_recommendation){
			a->disks[i].domain, a->disks[i].target, a->disks[i].source,
			io_label(x->io),
			io_mode_name(adv.recommended) ? io_mode_name(adv.recommended) : "none",
			io_label(x->io_xml),
		};
	}
	prom_write_recommendations(f, r, a->ndisks);
	free(r);
}

static void write_disk_switches(struct agent *a, FILE *f)
{
	struct prom_disk_switch *r = xcalloc(a->ndisks, sizeof(*r));
	size_t n = 0;
	for (size_t i = 0; i < a->ndisks; i++) {
		const struct agent_disk *d = &a->disks[i];
		if (d->switched.at > 0)
			r[n++] = (struct prom_disk_switch){
				d->domain, d->target, io_label(d->switched.from), io_label(d->switched.to),
				result_names[d->switched.result], d->switched.at,
			};
	}
	prom_write_disk_switches(f, r, n);
	free(r);
}

static void write_agent_metrics(struct agent *a, FILE *f)
{
	prom_family(f, "aioguard_decisions_total", "counter",
		    "Decisions by action (switch, advise-only) and result.");
	for (int act = ADAPT_SWITCH; act <= ADAPT_ADVISE_ONLY; act++)
		for (int r = 0; r < RESULT_COUNT; r++) {
			const char *l[] = {"action", adapt_action_name(act), "result", result_names[r], NULL};
			prom_sample(f, "aioguard_decisions_total", l, (double)a->decisions[act][r]);
		}
	prom_family(f, "aioguard_bpf_events_lost_total", "counter",
		    "Stall events lost because the BPF ring buffer was full.");
	prom_sample(f, "aioguard_bpf_events_lost_total", NULL, (double)observer_lost_events(a->s.obs));
	const struct prom_bpf_slots slots = {session_slots_in_use(&a->s), session_slots_total(&a->s),
					     session_untracked(&a->s)};
	prom_write_bpf_slots(f, &slots);
	const struct observer_hook *hooks;
	size_t nhooks = observer_hook_list(a->s.obs, &hooks);
	struct prom_hook *ph = xcalloc(nhooks, sizeof(*ph));
	for (size_t i = 0; i < nhooks; i++)
		ph[i] = (struct prom_hook){hooks[i].what, hooks[i].how, hooks[i].attached};
	prom_write_bpf_hooks(f, ph, nhooks);
	free(ph);
	prom_family(f, "aioguard_libvirt_up", "gauge",
		    "1 while libvirt answers the agent; 0 when not connected or a call has hung for 10 s.");
	prom_sample(f, "aioguard_libvirt_up", NULL, a->libvirt_up ? 1 : 0);
	prom_family(f, "aioguard_watched_disks", "gauge", "Disks the agent watches and may switch.");
	prom_sample(f, "aioguard_watched_disks", NULL, (double)a->ndisks);
	prom_family(f, "aioguard_enforcing", "gauge", "1 when decisions are applied, 0 in dry-run.");
	prom_sample(f, "aioguard_enforcing", NULL, a->cfg.enforce ? 1 : 0);
	prom_family(f, "aioguard_build_info", "gauge", "aioguard's version.");
	const char *info[] = {"version", AIOGUARD_VERSION, NULL};
	prom_sample(f, "aioguard_build_info", info, 1);
}

void agent_write_metrics(struct agent *a, FILE *f)
{
	write_disk_metrics(a, f);
	write_recommendations(a, f);
	write_disk_switches(a, f);
	write_agent_metrics(a, f);
}
