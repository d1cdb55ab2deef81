// SPDX-License-Identifier: GPL-2.0-only
/* aioguard set-io: one disk's <driver io=…>, changed through apply.c. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "apply.h"
#include "commands.h"
#include "config.h"
#include "util.h"
#include "virt.h"

#define DEFAULT_BACKUP_DIR AIOGUARD_STATE_DIR "/backups"
#define DEFAULT_TIMEOUT_S 120

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: aioguard set-io [OPTIONS] DOMAIN TARGET native|threads|io_uring\n"
		"\n"
		"Sets <driver io=…> of the disk of DOMAIN whose <target dev=…> is TARGET\n"
		"(e.g. vda). The persistent XML is read fresh and rewritten: only that\n"
		"attribute changes (a missing <driver> is added). The change is printed\n"
		"as a unified diff; then the old XML is backed up, the new one is defined\n"
		"with libvirt's schema validation and read back. If any step fails, the\n"
		"old XML is defined again. io='native' is refused unless the disk has\n"
		"cache='none' or 'directsync': it needs O_DIRECT.\n"
		"\n"
		"Options:\n"
		"  -c, --connect URI     libvirt URI (default: libvirt's default)\n"
		"  -a, --apply WHEN      next-boot (default): change the persistent XML;\n"
		"                        a running guest gets it at its next cold boot.\n"
		"                        save-restore: also now; the running guest is saved\n"
		"                        to a file in the backup directory and restored\n"
		"                        with the new io (it pauses while its RAM is\n"
		"                        written and read back). If it does not restore\n"
		"                        with the new XML, it is restored as it was and\n"
		"                        the old persistent XML is defined again. A domain\n"
		"                        that is not running gets next-boot. libvirtd\n"
		"                        writes the save file: use a local URI.\n"
		"                        live: also now, without a save or restart: each\n"
		"                        file node of the disk's chain is replaced in the\n"
		"                        running QEMU by one with the new aio (a growing\n"
		"                        image, qcow2 on a file, with the guest paused for\n"
		"                        the swap, tens of ms: the message says), through\n"
		"                        libvirt's QMP passthrough (libvirt then marks the\n"
		"                        domain tainted 'custom-monitor'). Needs QEMU >= 6.1\n"
		"                        and libvirt in -blockdev mode, and aioguard on the\n"
		"                        hypervisor; refused otherwise, before any change.\n"
		"                        A refused step puts the node back and the old\n"
		"                        persistent XML is defined again. libvirt's live\n"
		"                        XML keeps the old io: the mode QEMU runs is kept\n"
		"                        in the state directory ('aioguard advise' shows it).\n"
		"  -b, --backup-dir DIR  where backups go, created 0700 if missing\n"
		"                        (default " DEFAULT_BACKUP_DIR "); each is\n"
		"                        DOMAIN-UUID-YYYYmmddTHHMMSS-NNN.xml (UTC), 0600.\n"
		"                        No backup, no change.\n"
		"  -s, --state-dir DIR   where the live mode is recorded (default\n"
		"                        " AIOGUARD_STATE_DIR "; the agent's state-dir)\n"
		"  -n, --dry-run         print the diff; change nothing, write no backup\n"
		"  -t, --timeout S       give up when libvirt has not finished within S\n"
		"                        seconds (default %d), saying what that left: before\n"
		"                        the define nothing was changed; after it, where the\n"
		"                        backup is\n"
		"  -h, --help            this text\n"
		"\n"
		"Exit status: 0 done or nothing to do; 1 failed (nothing changed, or\n"
		"rolled back, as the message says; or libvirt did not answer in time);\n"
		"2 usage error.\n", DEFAULT_TIMEOUT_S);
}

/* 0 when argv holds a complete request, else the exit code. */
static int parse_args(int argc, char **argv, struct apply_request *req, const char **uri,
		      double *timeout_s)
{
	static const struct option opts[] = {
		{"connect", required_argument, NULL, 'c'},
		{"apply", required_argument, NULL, 'a'},
		{"backup-dir", required_argument, NULL, 'b'},
		{"state-dir", required_argument, NULL, 's'},
		{"dry-run", no_argument, NULL, 'n'},
		{"timeout", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int opt;

	log_set_command("set-io");
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":c:a:b:s:nt:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			*uri = optarg;
			break;
		case 'a':
			if (!apply_strategy_parse(optarg, &req->strategy))
				return usage_error("--apply takes next-boot, save-restore or live, "
						   "not '%s'", optarg);
			break;
		case 'b':
			req->backup_dir = optarg;
			break;
		case 's':
			req->state_dir = optarg;
			break;
		case 'n':
			req->dry_run = true;
			break;
		case 't': {
			char *end;
			errno = 0;
			*timeout_s = strtod(optarg, &end);
			if (errno || end == optarg || *end || !isfinite(*timeout_s) || *timeout_s < 1)
				return usage_error("--timeout takes seconds >= 1, not '%s'", optarg);
			break;
		}
		case 'h':
			usage(stdout);
			return -1;
		default:
			return option_error(opt, argv);
		}
	}
	if (argc - optind != 3)
		return usage_error("expected DOMAIN TARGET MODE");
	req->domain = argv[optind];
	req->target = argv[optind + 1];
	if (!io_mode_parse(argv[optind + 2], &req->io))
		return usage_error("unknown io mode '%s': use native, threads or io_uring",
				   argv[optind + 2]);
	return 0;
}

/* The libvirt side runs in a thread of its own: a hung libvirtd blocks a
 * call with no timeout of its own (keepalive does not end it), so the
 * command waits for that thread with one. */
struct setio_run {
	const char *uri;
	struct apply_request req;
	struct apply_result res;
	int rc;
	bool done;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

static void *setio_thread(void *arg)
{
	struct setio_run *r = arg;
	virConnectPtr conn = virt_open(r->uri);
	int rc = conn ? apply_set_io(conn, &r->req, &r->res) : -1;

	if (conn)
		virConnectClose(conn);
	pthread_mutex_lock(&r->lock);
	r->rc = conn ? rc : -2;
	r->done = true;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* What giving up leaves, by how far apply.c got. */
static void say_gave_up(const struct setio_run *r, double timeout_s)
{
	int stage = __atomic_load_n(&r->res.stage, __ATOMIC_SEQ_CST);

	if (stage == APPLY_STAGE_READING)
		log_err("libvirt did not answer within %.0f s; nothing was changed", timeout_s);
	else
		log_err("libvirt did not answer within %.0f s while %s %s; it may apply "
			"the change once it answers. The old XML is in %s: check with 'virsh dumpxml "
			"--inactive %s' and put it back with 'virsh define %s' if needed",
			timeout_s, stage == APPLY_STAGE_LIVE ? "changing the running" : "defining the new XML of",
			r->req.domain, r->res.backup_path, r->req.domain, r->res.backup_path);
}

int cmd_set_io(int argc, char **argv)
{
	struct apply_request req = {
		.strategy = APPLY_NEXT_BOOT,
		.backup_dir = DEFAULT_BACKUP_DIR,
		.diff_out = stdout,
	};
	struct setio_run r = {.lock = PTHREAD_MUTEX_INITIALIZER};
	double timeout_s = DEFAULT_TIMEOUT_S;
	pthread_condattr_t ca;
	pthread_t t;
	int ret;

	ret = parse_args(argc, argv, &req, &r.uri, &timeout_s);
	if (ret)
		return ret < 0 ? 0 : ret;
	r.req = req;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r.cond, &ca);
	virt_init();
	if (pthread_create(&t, NULL, setio_thread, &r))
		return log_err("cannot start a thread"), 1;

	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += (time_t)timeout_s;
	pthread_mutex_lock(&r.lock);
	while (!r.done && pthread_cond_timedwait(&r.cond, &r.lock, &until) != ETIMEDOUT)
		;
	bool done = r.done;
	pthread_mutex_unlock(&r.lock);
	if (!done) {
		say_gave_up(&r, timeout_s);
		fflush(stdout);
		_exit(1);   /* the thread is stuck inside libvirt: leave it there */
	}
	pthread_join(t, NULL);
	if (r.rc == -2)
		return 1;   /* virt_open said why */
	if (r.rc < 0) {
		log_err("%s", r.res.message);
		return 1;
	}
	printf("%s\n", r.res.message);
	return 0;
}
