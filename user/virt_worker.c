// SPDX-License-Identifier: GPL-2.0-only
#include "virt_worker.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "inventory.h"
#include "util.h"
#include "virt.h"

#define BACKOFF_MAX_S 30.0
#define LOOP_TICK_MS 100   /* the worker looks at its queue this often */
#define PING_S 1.0         /* an idle worker asks libvirtd this often, so a
                              hang is seen within PING_S + VIRT_HUNG_S even
                              when the agent asks for nothing */

#define BUSY_APPLYING "applying a decision"

struct virt_worker {
	char *uri;
	pthread_t thread;
	pthread_mutex_t lock;
	struct virt_job *todo, *done;  /* FIFO both */
	double busy_since;             /* mono seconds a call began; 0 when none */
	double busy_limit;             /* hung past this */
	const char *busy_what;
	bool connected, stop, changed;
	char last_error[256];
	/* the worker thread's own */
	virConnectPtr conn;
	bool lost;                     /* close callback fired */
	int lifecycle_cb, tick;
	double next_connect, backoff, last_call;
};

static void set_busy(struct virt_worker *w, const char *what)
{
	pthread_mutex_lock(&w->lock);
	w->busy_since = what ? mono_clock_s() : 0;
	w->busy_what = what;
	w->busy_limit = what && !strcmp(what, BUSY_APPLYING) ? VIRT_HUNG_APPLY_S : VIRT_HUNG_S;
	pthread_mutex_unlock(&w->lock);
}

static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
	struct virt_worker *w = opaque;
	pthread_mutex_lock(&w->lock);
	w->changed = true;   /* started, stopped, defined, undefined, migrated */
	pthread_mutex_unlock(&w->lock);
	return 0;
}

static void on_close(virConnectPtr conn, int reason, void *opaque)
{
	((struct virt_worker *)opaque)->lost = true;
}

static void noop_tick(int timer, void *opaque)
{
}

static void set_connected(struct virt_worker *w, bool up)
{
	pthread_mutex_lock(&w->lock);
	w->connected = up;
	w->changed = true;
	if (!up)
		snprintf(w->last_error, sizeof(w->last_error), "%s", virt_last_error());
	pthread_mutex_unlock(&w->lock);
}

static int connect_now(struct virt_worker *w)
{
	set_busy(w, "connecting");
	virConnectPtr conn = virConnectOpen(w->uri);
	set_busy(w, NULL);
	if (!conn) {
		set_connected(w, false);
		return -1;
	}
	w->conn = conn;
	w->lost = false;
	/* a dead connection is closed after ~20 s and reopened */
	virConnectSetKeepAlive(conn, 5, 3);
	virConnectRegisterCloseCallback(conn, on_close, w, NULL);
	w->lifecycle_cb = virConnectDomainEventRegisterAny(conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
							   VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), w, NULL);
	set_connected(w, true);
	return 0;
}

static void disconnect(struct virt_worker *w)
{
	if (!w->conn)
		return;
	if (w->lifecycle_cb >= 0)
		virConnectDomainEventDeregisterAny(w->conn, w->lifecycle_cb);
	virConnectUnregisterCloseCallback(w->conn, on_close);
	virConnectClose(w->conn);
	w->conn = NULL;
	w->lifecycle_cb = -1;
}

/* Reconnect with backoff when libvirtd went away. */
static void keep_connected(struct virt_worker *w)
{
	double now = mono_clock_s();

	if (w->conn && !w->lost && virConnectIsAlive(w->conn) == 1)
		return;
	if (w->conn) {
		log_err("lost the connection to libvirt; reconnecting (windows are kept)");
		disconnect(w);
		set_connected(w, false);
		w->backoff = 1;
		w->next_connect = now + w->backoff;
		return;
	}
	if (now < w->next_connect)
		return;
	if (connect_now(w) == 0) {
		log_err("connected to libvirt again");
		w->backoff = 1;
		return;
	}
	w->backoff = fmin(w->backoff * 2, BACKOFF_MAX_S);
	w->next_connect = now + w->backoff;
	log_info("libvirt still unreachable (%s); next try in %.0fs", virt_last_error(), w->backoff);
}

/* A round trip to libvirtd (virConnectIsAlive only looks at the socket). */
static void ping(struct virt_worker *w)
{
	unsigned long v;

	if (!w->conn || mono_clock_s() - w->last_call < PING_S)
		return;
	set_busy(w, "answering a ping");
	if (virConnectGetLibVersion(w->conn, &v) < 0)
		w->lost = true;
	set_busy(w, NULL);
	w->last_call = mono_clock_s();
}

static void run_job(struct virt_worker *w, struct virt_job *j)
{
	if (!w->conn) {
		j->rc = -1;
		if (j->kind == VIRT_JOB_APPLY)
			snprintf(j->res.message, sizeof(j->res.message), "libvirt is not connected");
		return;
	}
	if (j->kind == VIRT_JOB_INVENTORY) {
		set_busy(w, "reading the domains");
		j->rc = inventory_collect(w->conn, NULL, INVENTORY_INSPECT | INVENTORY_RUNNING_ONLY,
					  &j->disks);
		if (j->rc == 0 || j->disks.n) {
			io_uring_probe(w->conn, &j->iou);
			host_kernel_probe(w->conn, j->kernel);
		}
	} else if (j->kind == VIRT_JOB_CALL) {
		set_busy(w, j->label ? j->label : "putting back a live switch left half done");
		j->call(w->conn, j->arg);
		j->rc = 0;
	} else {
		set_busy(w, BUSY_APPLYING);
		j->rc = apply_set_io(w->conn, &j->req, &j->res);
	}
	set_busy(w, NULL);
	w->last_call = mono_clock_s();
}

static struct virt_job *next_job(struct virt_worker *w, bool *stop)
{
	pthread_mutex_lock(&w->lock);
	struct virt_job *j = w->todo;
	if (j)
		w->todo = j->next;
	*stop = w->stop;
	pthread_mutex_unlock(&w->lock);
	return j;
}

static void *worker_main(void *arg)
{
	struct virt_worker *w = arg;
	bool stop = false;

	while (!stop) {
		struct virt_job *j = next_job(w, &stop);
		if (stop) {
			free(j);   /* not taken back: the agent is stopping */
			break;
		}
		if (!j) {
			virEventRunDefaultImpl();   /* events, keepalive; returns each tick */
			keep_connected(w);
			ping(w);
			continue;
		}
		run_job(w, j);
		pthread_mutex_lock(&w->lock);
		struct virt_job **p = &w->done;   /* handed back in the order done */
		while (*p)
			p = &(*p)->next;
		j->next = NULL;
		*p = j;
		pthread_mutex_unlock(&w->lock);
	}
	return NULL;
}

struct virt_worker *virt_worker_start(const char *uri, char *err, size_t errlen)
{
	struct virt_worker *w = xcalloc(1, sizeof(*w));

	w->uri = uri && *uri ? xstrdup(uri) : NULL;
	w->lifecycle_cb = -1;
	w->backoff = 1;
	pthread_mutex_init(&w->lock, NULL);
	virt_init();
	if (virEventRegisterDefaultImpl() < 0) {
		snprintf(err, errlen, "cannot start libvirt's event loop: %s", virt_last_error());
		goto fail;
	}
	w->tick = virEventAddTimeout(LOOP_TICK_MS, noop_tick, NULL, NULL);
	if (connect_now(w) < 0) {
		snprintf(err, errlen, "cannot connect to libvirt at %s: %s",
			 uri && *uri ? uri : "(default URI)", virt_last_error());
		goto fail;
	}
	if (pthread_create(&w->thread, NULL, worker_main, w)) {
		snprintf(err, errlen, "cannot start the libvirt thread");
		disconnect(w);
		goto fail;
	}
	return w;
fail:
	if (w->tick >= 0)
		virEventRemoveTimeout(w->tick);
	free(w->uri);
	free(w);
	return NULL;
}

static void free_jobs(struct virt_job *j)
{
	while (j) {
		struct virt_job *next = j->next;
		disk_list_free(&j->disks);
		free(j);
		j = next;
	}
}

/* A worker stuck in a call to a hung libvirtd is not waited for: the
 * process is leaving, and its connection goes with it. */
void virt_worker_stop(struct virt_worker *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	bool stuck = w->busy_since && mono_clock_s() - w->busy_since > VIRT_HUNG_S;
	pthread_mutex_unlock(&w->lock);
	if (stuck) {
		pthread_detach(w->thread);
		return;
	}
	pthread_join(w->thread, NULL);
	disconnect(w);
	if (w->tick >= 0)
		virEventRemoveTimeout(w->tick);
	free_jobs(w->todo);
	free_jobs(w->done);
	pthread_mutex_destroy(&w->lock);
	free(w->uri);
	free(w);
}

void virt_worker_submit(struct virt_worker *w, struct virt_job *j)
{
	j->next = NULL;
	pthread_mutex_lock(&w->lock);
	struct virt_job **p = &w->todo;
	while (*p)
		p = &(*p)->next;
	*p = j;
	pthread_mutex_unlock(&w->lock);
}

struct virt_job *virt_worker_done(struct virt_worker *w)
{
	pthread_mutex_lock(&w->lock);
	struct virt_job *j = w->done;
	if (j)
		w->done = j->next;
	pthread_mutex_unlock(&w->lock);
	return j;
}

enum virt_state virt_worker_state(struct virt_worker *w, char *detail, size_t len)
{
	enum virt_state s;

	pthread_mutex_lock(&w->lock);
	double busy = w->busy_since ? mono_clock_s() - w->busy_since : 0;
	if (busy > w->busy_limit) {
		s = VIRT_HUNG;
		snprintf(detail, len, "libvirtd has not answered for %.0f s (%s)", busy, w->busy_what);
	} else if (!w->connected) {
		s = VIRT_DOWN;
		snprintf(detail, len, "not connected to libvirt (%s)", w->last_error);
	} else {
		s = VIRT_UP;
		snprintf(detail, len, "libvirt answers");
	}
	pthread_mutex_unlock(&w->lock);
	return s;
}

bool virt_worker_take_change(struct virt_worker *w)
{
	pthread_mutex_lock(&w->lock);
	bool c = w->changed;
	w->changed = false;
	pthread_mutex_unlock(&w->lock);
	return c;
}
