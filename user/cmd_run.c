// SPDX-License-Identifier: GPL-2.0-only
/* aioguard run: the long-running agent. The main thread polls the BPF ring
 * buffer, closes a window each interval and publishes the metrics; every
 * libvirt call runs in the libvirt thread (virt_worker.c), so a hung
 * libvirtd holds decisions, never observation. */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include "agent.h"
#include "inventory.h"
#include "commands.h"
#include "config.h"
#include "events.h"
#include "metrics_http.h"
#include "privs.h"
#include "util.h"
#include "virt.h"
#include "webconfig.h"

#define POLL_MS 200

static volatile sig_atomic_t stop_requested, reload_requested;

static void on_stop(int sig)
{
	stop_requested = 1;
}

static void on_hup(int sig)
{
	reload_requested = 1;
}

struct run {
	struct agent a;
	int argc;
	char **argv;
	const char *config_path;
	const char *events_path;
	struct metrics_http *http;
	struct web_config web;    /* read at start, served until the end */
	enum virt_state libvirt;  /* as last said in the log */
};

static void usage(FILE *out)
{
	struct agent_config d;
	config_defaults(&d);
	fprintf(out,
		"Usage: aioguard run [OPTIONS]\n"
		"\n"
		"The agent: watches the QEMU of every running libvirt domain with eBPF,\n"
		"keeps per-disk windows of stalls, and switches a sparse or growing disk\n"
		"that keeps stalling on io='native' to the --target mode (and, if enabled,\n"
		"back once its image is fully allocated). A stall is a call of the\n"
		"syscall that submits the guest's I/O in the disk's mode (io_submit for\n"
		"native, io_uring_enter for io_uring, the pool's reads and writes for\n"
		"threads) taking the threshold or longer; waits of QEMU's worker pool\n"
		"(fdatasync, fallocate, …) are pool waits and never count. Every decision\n"
		"is one JSON line in the audit log and a line in syslog. Dry-run by default.\n"
		"\n"
		"Options (each also a config file key without the dashes):\n"
		"      --config FILE            settings file, e.g. " AIOGUARD_CONFIG_FILE ";\n"
		"                               flags win over it; SIGHUP reloads it and\n"
		"                               applies all but connect, web-config and\n"
		"                               bpf-slots\n"
		"  -c, --connect URI            libvirt URI (default: libvirt's default)\n"
		"      --dry-run                decide and log only (default)\n"
		"      --enforce                apply decisions, as 'aioguard set-io' does:\n"
		"                               backup, validated define, rollback on failure\n"
		"      --apply live|next-boot|save-restore\n"
		"                               live (default): also the running QEMU, without\n"
		"                               pausing the guest (its file nodes swapped through\n"
		"                               QMP; libvirt taints the domain 'custom-monitor');\n"
		"                               next-boot: persistent XML only;\n"
		"                               save-restore: also the running QEMU (pauses the guest)\n"
		"      --live-fallback next-boot|save-restore\n"
		"                               where a domain cannot be switched live (QEMU < 6.1,\n"
		"                               libvirt not in -blockdev mode, a hot-plugged disk,\n"
		"                               a block job under way) (default next-boot)\n"
		"      --interval S             window length (default %u)\n"
		"      --threshold-us N         a submission this long is a stall (default %u)\n"
		"      --target threads|io_uring|auto\n"
		"                               where a stalling native disk goes (default %s):\n"
		"                               threads; io_uring (advice only where io_uring is\n"
		"                               found unusable here); auto: io_uring where QEMU,\n"
		"                               libvirt and the kernel here run it and it was\n"
		"                               measured ahead of threads for the image on this\n"
		"                               kernel series (ext4/xfs; 6.18: growing and sparse,\n"
		"                               6.12: sparse, 6.1: neither: docs/AIO-MODES.md),\n"
		"                               else threads\n"
		"      --stalls-per-window N    a window is bad with N stalls (default %u)…\n"
		"      --stalled-ms-per-s N     …or N ms stalled per second (default %u)\n"
		"      --bad-windows M          switch when M of the last…  (default %u)\n"
		"      --history-windows K      …K windows are bad (default %u)\n"
		"      --cooldown S             no second change of a disk within S (default %u)\n"
		"      --max-changes-per-hour N all disks together (default %u)\n"
		"      --switch-back yes|no     threads or io_uring -> native once allocated\n"
		"                               (default no)\n"
		"      --switch-back-quiet S    …and no stall for S seconds (default %u)\n"
		"      --bpf-slots N            kernel counting slots: a busy disk takes one per\n"
		"                               syscall QEMU uses on it, ~2.5 (default %u, for\n"
		"                               ~400 busy disks); each costs 344 bytes per CPU\n"
		"                               of kernel memory (the start says how much)\n"
		"      --include GLOB           only domains matching (repeatable)\n"
		"      --exclude GLOB           never these domains (repeatable)\n"
		"      --state-dir DIR          backups and audit log (default %s)\n"
		"      --audit-log FILE         default STATE_DIR/audit.jsonl; '-' = stdout\n"
		"      --listen ADDR:PORT       Prometheus /metrics (default %s); 'off' = none\n"
		"      --metrics-detail yes|no  every syscall's series with 31 log2 buckets (default\n"
		"                               no: ~20 series per busy disk, see aioguard(8))\n"
		"      --web-config FILE        TLS and basic auth for /metrics, in the format of\n"
		"                               Prometheus' exporter-toolkit (web-config.yml)\n"
		"      --events FILE            also write stall and decision JSON lines here ('-' = stdout)\n"
		"  -v, --verbose                say more\n"
		"  -h, --help                   this text\n"
		"\n"
		"A domain opts out in its own XML:\n"
		"  virsh metadata DOM urn:aioguard:policy:1 --key aioguard --set '<policy mode=\"off\"/>'\n"
		"or one disk: '<policy><disk target=\"vdb\" mode=\"off\"/></policy>'.\n"
		"SIGTERM/SIGINT detach cleanly. Needs root (BPF).\n",
		d.interval_s, d.threshold_us, adapt_target_name(d.adapt.target),
		d.adapt.stalls_per_window, d.adapt.stalled_ms_per_s, d.adapt.bad_windows,
		d.adapt.history_windows, d.adapt.cooldown_s, d.adapt.max_changes_per_hour,
		d.adapt.switch_back_quiet_s, d.bpf_slots, d.state_dir, d.listen);
}

enum { OPT_CONFIG = 1000, OPT_DRY_RUN, OPT_ENFORCE, OPT_EVENTS, OPT_KEY_BASE = 2000 };

static struct option *long_options(void)
{
	static const struct option fixed[] = {
		{"config", required_argument, NULL, OPT_CONFIG},
		{"dry-run", no_argument, NULL, OPT_DRY_RUN},
		{"enforce", no_argument, NULL, OPT_ENFORCE},
		{"events", required_argument, NULL, OPT_EVENTS},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
	};
	size_t nkeys = 0, nfixed = sizeof(fixed) / sizeof(fixed[0]);
	while (config_keys[nkeys])
		nkeys++;
	struct option *o = xcalloc(nfixed + nkeys + 1, sizeof(*o));
	memcpy(o, fixed, sizeof(fixed));
	for (size_t i = 0; i < nkeys; i++)
		o[nfixed + i] = (struct option){config_keys[i], required_argument, NULL,
						(int)(OPT_KEY_BASE + i)};
	return o;
}

/* Settings: defaults, then the file, then the flags. Also used by SIGHUP.
 * Returns 0, 1 (--help shown) or -1 (said why). */
static int load_settings(struct run *r, struct agent_config *c)
{
	struct option *opts = long_options();
	char err[512];
	int ch, rc = 0;

	config_defaults(c);
	optind = 1;
	opterr = 0;
	r->config_path = NULL;
	while ((ch = getopt_long(r->argc, r->argv, ":c:vh", opts, NULL)) != -1 && !rc) {
		if (ch == OPT_CONFIG)
			r->config_path = optarg;
		else if (ch == 'h')
			rc = 1;
		else if (ch == '?' || ch == ':')
			rc = -option_error(ch, r->argv) / 2;
	}
	if (!rc && r->config_path && config_load_file(c, r->config_path, err, sizeof(err)) < 0) {
		log_err("%s", err);
		rc = -1;
	}
	optind = 1;
	while (!rc && (ch = getopt_long(r->argc, r->argv, ":c:vh", opts, NULL)) != -1) {
		const char *key = ch >= OPT_KEY_BASE ? config_keys[ch - OPT_KEY_BASE] : NULL;
		if (ch == 'c')
			key = "connect";
		if (ch == OPT_DRY_RUN || ch == OPT_ENFORCE)
			rc = config_set(c, "mode", ch == OPT_ENFORCE ? "enforce" : "dry-run", err, sizeof(err));
		else if (ch == OPT_EVENTS)
			r->events_path = optarg;
		else if (ch == 'v')
			log_verbose = true;
		else if (key)
			rc = config_set(c, key, optarg, err, sizeof(err));
		if (rc < 0)
			usage_error("--%s", err);
	}
	if (!rc && optind < r->argc)
		rc = -usage_error("unexpected argument '%s'", r->argv[optind]) / 2;
	struct sockaddr_storage addr;
	if (!rc && c->listen[0] && strcmp(c->listen, "off") &&
	    metrics_parse_listen(c->listen, &addr) < 0)   /* said before anything is loaded */
		rc = -usage_error("listen: '%s' is not ADDR:PORT ([::1]:PORT for IPv6) or 'off'",
				  c->listen) / 2;
	const char *bad = rc ? NULL : adapt_config_check(&c->adapt);
	if (bad)
		rc = -usage_error("%s", bad) / 2;
	free(opts);
	return rc;
}

/* ---- libvirt: its state, said when it changes --------------------------- */

/* true when the state changed (the metrics say so at once) */
static bool watch_libvirt(struct run *r)
{
	char why[512];
	enum virt_state st = virt_worker_state(r->a.vw, why, sizeof(why));

	r->a.libvirt_up = st == VIRT_UP;
	if (st == r->libvirt)
		return false;
	if (st == VIRT_UP)
		log_err("libvirt answers again: decisions resume on a fresh inventory");
	else if (st == VIRT_HUNG)
		log_err("%s: decisions wait; windows, stall counting and metrics go on", why);
	r->libvirt = st;
	if (st == VIRT_UP)
		agent_request_inventory(&r->a);
	return true;
}

/* ---- start, loop, stop ------------------------------------------------------ */

/* The state directory and the audit log in it (or where audit-log says). */
static struct audit_log *open_audit(const struct agent_config *c)
{
	char err[512], *path;
	struct audit_log *log;

	if (mkdir(c->state_dir, 0700) < 0 && errno != EEXIST) {
		log_err("state directory %s: %s", c->state_dir, strerror(errno));
		return NULL;
	}
	path = c->audit_log[0] ? xstrdup(c->audit_log) : xasprintf("%s/audit.jsonl", c->state_dir);
	log = audit_log_open(path, err, sizeof(err));
	free(path);
	if (!log)
		log_err("%s", err);
	return log;
}

static int open_outputs(struct run *r)
{
	r->a.audit = open_audit(&r->a.cfg);
	if (!r->a.audit)
		return -1;
	if (r->events_path) {
		r->a.events = strcmp(r->events_path, "-") ? fopen(r->events_path, "ae") : stdout;
		if (!r->a.events)
			return log_err("--events %s: %s", r->events_path, strerror(errno)), -1;
	}
	return 0;
}

/* After privileges are dropped: the server's thread gets none of them. */
static int start_metrics(struct run *r)
{
	const char *listen = r->a.cfg.listen;
	char err[512];

	if (!listen[0] || !strcmp(listen, "off"))
		return 0;
	r->http = metrics_http_start(listen, &r->web, err, sizeof(err));
	if (!r->http)
		return log_err("%s", err), -1;
	fprintf(stderr, "aioguard: metrics on %s://%.*s:%u/metrics%s\n",
		r->web.cert_pem ? "https" : "http", (int)(strrchr(listen, ':') - listen), listen,
		metrics_http_port(r->http), r->web.nusers ? " (basic auth)" : "");
	return 0;
}

/* Before anything is attached: a bad web config stops the start. */
static int load_web_config(struct run *r)
{
	char err[600];
	if (!r->a.cfg.web_config[0])
		return 0;
	if (web_config_load(&r->web, r->a.cfg.web_config, err, sizeof(err)) < 0)
		return log_err("web-config %s", err), -1;
	return 0;
}

/* A target io_uring this host cannot run is said at start and on reload:
 * its decisions will be advice only. */
static void warn_target(const struct agent *a)
{
	if (a->cfg.adapt.target == ADAPT_TARGET_IO_URING && a->iou.known && !a->iou.usable)
		log_err("target io_uring: io_uring is not usable here (%s): stalling native disks "
			"will be advised, not switched (target threads or auto would switch to threads)",
			a->iou.why);
	else if (a->cfg.adapt.target == ADAPT_TARGET_IO_URING && !a->iou.known)
		log_info("target io_uring: io_uring support could not be checked here (%s)",
			 a->iou.why);
}

#define FIRST_INVENTORY_S 30.0

/* The first inventory, before anything is observed: waited for up to
 * FIRST_INVENTORY_S (a hung libvirtd at start: the agent starts watching
 * nothing and picks the domains up once libvirt answers). */
static void first_inventory(struct run *r)
{
	double until = mono_clock_s() + FIRST_INVENTORY_S;

	agent_request_inventory(&r->a);
	while (r->a.inventory_asked && mono_clock_s() < until && !stop_requested) {
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
		agent_take_done(&r->a);
	}
	if (r->a.inventory_asked)
		log_err("libvirt has not listed the domains within %.0f s; watching none until it does",
			FIRST_INVENTORY_S);
}

static int start(struct run *r)
{
	struct observer_options oo = {.stall_threshold_ns = (uint64_t)r->a.cfg.threshold_us * 1000,
				      .slots = r->a.cfg.bpf_slots};
	char err[512];

	if (load_web_config(r) < 0 || open_outputs(r) < 0)
		return -1;
	if (session_open(&r->a.s, &oo, true) < 0)
		return -1;
	inventory_set_state_dir(r->a.cfg.state_dir);
	/* capabilities are per thread: drop them before any thread starts */
	if (privs_drop_after_attach() < 0)
		return -1;
	r->a.vw = virt_worker_start(r->a.cfg.uri, err, sizeof(err));
	if (!r->a.vw)
		return log_err("%s", err), -1;
	r->a.libvirt_up = true;
	agent_repair_live(&r->a);
	first_inventory(r);
	session_read(&r->a.s, &r->a.prev);
	if (start_metrics(r) < 0)
		return -1;
	fprintf(stderr, "aioguard: running (%s, apply %s, target %s), %zu disks watched, %u counting slots "
		"(%.1f MiB of kernel memory); attached: %s\n",
		r->a.cfg.enforce ? "enforce" : "dry-run",
		apply_strategy_name(r->a.cfg.apply),
		adapt_target_name(r->a.cfg.adapt.target), r->a.ndisks, session_slots_total(&r->a.s),
		observer_slots_kernel_bytes(r->a.s.obs) / 1048576.0, observer_hooks(r->a.s.obs));
	warn_target(&r->a);
	return 0;
}

static void publish_metrics(struct run *r)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	if (!r->http || !(f = open_memstream(&buf, &len)))
		return;
	agent_write_metrics(&r->a, f);
	fclose(f);
	metrics_http_publish(r->http, buf, len);
	free(buf);
}

static void on_stall(const struct observer_stall *s, void *ctx)
{
	agent_on_stall(ctx, s);
}

/* SIGHUP: reapply what can change while observing. Each of these is put in
 * place before the old one goes, so a failure keeps the running one. */
static void reapply_threshold(struct run *r, struct agent_config *c, char *done, size_t len)
{
	if (c->threshold_us == r->a.cfg.threshold_us)
		return;
	observer_set_stall_threshold(r->a.s.obs, (uint64_t)c->threshold_us * 1000);
	snprintf(done + strlen(done), len - strlen(done), " threshold-us %u;", c->threshold_us);
}

static void reapply_audit(struct run *r, struct agent_config *c, char *done, size_t len)
{
	if (!strcmp(c->state_dir, r->a.cfg.state_dir) && !strcmp(c->audit_log, r->a.cfg.audit_log))
		return;
	struct audit_log *log = open_audit(c);
	if (!log) {
		log_err("SIGHUP: keeping state-dir %s and audit-log %s", r->a.cfg.state_dir,
			r->a.cfg.audit_log[0] ? r->a.cfg.audit_log : "(in it)");
		memcpy(c->state_dir, r->a.cfg.state_dir, sizeof(c->state_dir));
		memcpy(c->audit_log, r->a.cfg.audit_log, sizeof(c->audit_log));
		return;
	}
	audit_log_close(r->a.audit);
	r->a.audit = log;
	snprintf(done + strlen(done), len - strlen(done), " state-dir %s, audit-log %s;",
		 c->state_dir, c->audit_log[0] ? c->audit_log : "(in it)");
}

static void reapply_listen(struct run *r, struct agent_config *c, char *done, size_t len)
{
	struct agent_config old = r->a.cfg;
	struct metrics_http *was = r->http;

	if (!strcmp(c->listen, old.listen))
		return;
	/* the new one first; the old address may be the one wanted back */
	memcpy(r->a.cfg.listen, c->listen, sizeof(c->listen));
	r->http = NULL;
	if (start_metrics(r) < 0) {
		log_err("SIGHUP: keeping listen %s", old.listen);
		memcpy(c->listen, old.listen, sizeof(c->listen));
		memcpy(r->a.cfg.listen, old.listen, sizeof(old.listen));
		r->http = was;
		return;
	}
	metrics_http_stop(was);
	publish_metrics(r);
	snprintf(done + strlen(done), len - strlen(done), " listen %s;", c->listen);
}

static void reload(struct run *r)
{
	struct agent_config c;
	char done[1024] = "", restart[256] = "";

	reload_requested = 0;
	if (load_settings(r, &c) != 0) {
		log_err("SIGHUP: settings not reloaded, keeping the running ones");
		return;
	}
	reapply_threshold(r, &c, done, sizeof(done));
	reapply_audit(r, &c, done, sizeof(done));
	reapply_listen(r, &c, done, sizeof(done));
	/* the libvirt connection and the TLS set-up are made once */
	if (strcmp(c.uri, r->a.cfg.uri))
		strcat(restart, " connect");
	if (strcmp(c.web_config, r->a.cfg.web_config))
		strcat(restart, " web-config");
	if (c.bpf_slots != r->a.cfg.bpf_slots)
		strcat(restart, " bpf-slots");   /* the kernel's maps are sized at load */
	c.bpf_slots = r->a.cfg.bpf_slots;
	memcpy(c.uri, r->a.cfg.uri, sizeof(c.uri));
	memcpy(c.web_config, r->a.cfg.web_config, sizeof(c.web_config));
	r->a.cfg = c;
	agent_request_inventory(&r->a);   /* the scope may have changed */
	log_err("SIGHUP: settings reloaded (%s), target %s%s%s", c.enforce ? "enforce" : "dry-run",
		adapt_target_name(c.adapt.target), done[0] ? "; changed now:" : "", done);
	if (restart[0])
		log_err("SIGHUP:%s take effect at restart; the running ones stay", restart);
	warn_target(&r->a);
}

/* Until SIGTERM/SIGINT (0), or until the stall events cannot be read (-1). */
static int loop(struct run *r)
{
	const struct observer_callbacks cb = {.stall = on_stall, .ctx = &r->a};
	double next = mono_clock_s() + r->a.cfg.interval_s;

	publish_metrics(r);
	while (!stop_requested) {
		int n = observer_poll(r->a.s.obs, POLL_MS, &cb);
		if (n < 0 && n != -EINTR) {
			log_err("reading stall events failed: %s", strerror(-n));
			return -1;
		}
		double now = mono_clock_s();
		if (watch_libvirt(r))
			publish_metrics(r);
		if (virt_worker_take_change(r->a.vw))
			agent_request_inventory(&r->a);
		if (reload_requested)
			reload(r);
		agent_take_done(&r->a);
		agent_check_open_windows(&r->a);
		if (now >= next) {
			agent_close_window(&r->a);
			publish_metrics(r);
			next += r->a.cfg.interval_s * ceil((now - next) / r->a.cfg.interval_s + 1e-9);
		}
	}
	return 0;
}

static void cleanup(struct run *r)
{
	metrics_http_stop(r->http);
	web_config_free(&r->web);
	virt_worker_stop(r->a.vw);
	session_close(&r->a.s);
	if (r->a.events && r->a.events != stdout)
		fclose(r->a.events);
	audit_log_close(r->a.audit);
	agent_free(&r->a);
}

int cmd_run(int argc, char **argv)
{
	struct run r = {.argc = argc, .argv = argv};
	struct agent_config cfg;
	struct sigaction stop = {.sa_handler = on_stop}, hup = {.sa_handler = on_hup};

	/* A fixed mmap threshold: the metrics page (0.2 MB at 1000 idle
	 * disks, 1.8 MB once they all did I/O) is built and copied every
	 * window. glibc's dynamic threshold rises to the size of
	 * the first such buffer freed, after which each copy comes from the
	 * heap and the freed ones stay there; mmapped, they go back to the
	 * kernel when freed (docs/BENCHMARKS.md, "Idle cost"). */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	log_set_command("run");
	int rc = load_settings(&r, &cfg);
	if (rc) {
		if (rc > 0)
			usage(stdout);
		return rc > 0 ? 0 : 2;
	}
	agent_init(&r.a, &cfg);
	sigaction(SIGINT, &stop, NULL);
	sigaction(SIGTERM, &stop, NULL);
	sigaction(SIGHUP, &hup, NULL);
	signal(SIGPIPE, SIG_IGN);
	json_c_set_serialization_double_format("%.3f", JSON_C_OPTION_GLOBAL);
	rc = start(&r) < 0 ? 1 : 0;
	if (rc == 0) {
		rc = loop(&r) < 0 ? 1 : 0;   /* 1: systemd's Restart=on-failure restarts it */
		fprintf(stderr, "aioguard: stopping; %lu stall events lost\n",
			(unsigned long)observer_lost_events(r.a.s.obs));
	}
	cleanup(&r);
	return rc;
}
