// SPDX-License-Identifier: GPL-2.0-only
/* Order matters: everything that can be checked is checked before the
 * backup, and nothing is changed before the backup is on disk. */
#include "apply.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <libvirt/virterror.h>

#include "config.h"
#include "live.h"
#include "live_state.h"
#include "textdiff.h"
#include "util.h"
#include "virt.h"
#include "xmledit.h"

#define PERSISTENT_FLAGS (VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE)
#define LIVE_FLAGS VIR_DOMAIN_XML_SECURE

struct apply {
	virConnectPtr conn;
	virDomainPtr dom;
	const struct apply_request *req;
	struct apply_result *res;
	char uuid[VIR_UUID_STRING_BUFLEN];
	char *old_xml;             /* persistent, as libvirt wrote it */
	char *old_def;             /* the same, as libvirt holds it (whitespace in
	                              attribute values kept: xml_keep_attr_whitespace);
	                              the text that is edited, backed up, defined back */
	char *new_xml;             /* old_def with the new io */
	bool live_change;          /* save-restore or live, and the running domain needs it */
	enum io_mode live_old_io;  /* what the running QEMU has (live: recorded) */
	enum io_mode live_xml_io;  /* what libvirt's live XML says */
	char repaired[256];        /* what live_repair put back first, or "" */
	char *live_source;         /* the disk's top image in the live XML */
	bool not_running;          /* save-restore asked, but nothing runs */
};

/* Set the one-line message; returns -1 so that failures can return say(…). */
__attribute__((format(printf, 2, 3)))
static int say(struct apply_result *res, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(res->message, sizeof(res->message), fmt, ap);
	va_end(ap);
	return -1;
}

static const char *io_str(enum io_mode m)
{
	return io_mode_name(m) ? io_mode_name(m) : "default";
}

static const char *state_dir(const struct apply *a)
{
	return a->req->state_dir ? a->req->state_dir : AIOGUARD_STATE_DIR;
}

/* The aio QEMU runs: no io attribute is QEMU's default, threads. */
static bool same_aio(enum io_mode x, enum io_mode y)
{
	return (x == IO_MODE_UNSET ? IO_MODE_THREADS : x) == (y == IO_MODE_UNSET ? IO_MODE_THREADS : y);
}

static bool persistent_changes(const struct apply *a)
{
	return strcmp(a->old_def, a->new_xml) != 0;
}

static int open_domain(struct apply *a)
{
	const char *name = a->req->domain;
	int persistent;

	a->dom = virDomainLookupByName(a->conn, name);
	if (!a->dom) {
		if (virGetLastErrorCode() == VIR_ERR_NO_DOMAIN)
			return say(a->res, "no domain named '%s'", name);
		return say(a->res, "cannot look up domain '%s': %s", name, virt_last_error());
	}
	persistent = virDomainIsPersistent(a->dom);
	if (persistent < 0)
		return say(a->res, "%s: %s", name, virt_last_error());
	/* Defining it would quietly make a transient domain persistent. */
	if (!persistent)
		return say(a->res, "%s is transient: it has no persistent XML to change", name);
	if (virDomainGetUUIDString(a->dom, a->uuid) < 0)
		return say(a->res, "%s: %s", name, virt_last_error());
	a->old_xml = virDomainGetXMLDesc(a->dom, PERSISTENT_FLAGS);
	if (!a->old_xml)
		return say(a->res, "cannot read the XML of %s: %s", name, virt_last_error());
	a->old_def = xml_keep_attr_whitespace(a->old_xml);
	return 0;
}

/* Rewrite one XML, refusing io='native' where the cache mode has no O_DIRECT.
 * which names the XML in messages: "" for the persistent one, " (live XML)"… */
static char *rewrite_xml(struct apply *a, const char *xml, const char *which,
			 enum io_mode *old_io)
{
	const struct apply_request *req = a->req;
	struct xml_driver drv;
	char err[256];
	char *out;

	out = xmledit_set_io(xml, req->target, req->io, &drv, err, sizeof(err));
	if (!out) {
		say(a->res, "%s%s: %s", req->domain, which, err);
		return NULL;
	}
	if (req->io == IO_MODE_NATIVE && !cache_allows_native(drv.cache)) {
		if (drv.cache)
			say(a->res, "%s: io='native' needs cache='none' or 'directsync', but the disk has cache='%s'",
			    req->target, drv.cache);
		else
			say(a->res, "%s: io='native' needs cache='none' or 'directsync', but the disk sets no cache (QEMU's default is writeback)",
			    req->target);
		free(out);
		out = NULL;
	}
	*old_io = drv.io;
	xml_driver_free(&drv);
	return out;
}

/* Whether the running domain needs the change; its XML is rewritten up
 * front so that a live-only problem stops us before any change. */
static int prepare_live(struct apply *a)
{
	char *raw = NULL, *live_xml = NULL, *live_new_xml = NULL;
	int active, ret = -1;

	active = virDomainIsActive(a->dom);
	if (active < 0)
		return say(a->res, "%s: %s", a->req->domain, virt_last_error());
	if (!active) {
		a->not_running = true;
		return 0;
	}
	raw = virDomainGetXMLDesc(a->dom, LIVE_FLAGS);
	if (!raw) {
		say(a->res, "cannot read the live XML of %s: %s", a->req->domain, virt_last_error());
		goto out;
	}
	live_xml = xml_keep_attr_whitespace(raw);
	live_new_xml = rewrite_xml(a, live_xml, " (live XML)", &a->live_old_io);
	a->live_xml_io = a->live_old_io;
	a->live_source = xmledit_get_source(live_xml, a->req->target);
	if (!live_new_xml)
		goto out;
	a->live_change = strcmp(live_xml, live_new_xml) != 0;
	ret = 0;
out:
	free(live_new_xml);
	free(live_xml);
	free(raw);
	return ret;
}

/* The domain cannot be switched live: refuse, or use the fallback (the
 * agent's), saying why. */
static int live_unsupported(struct apply *a, const char *why)
{
	if (!a->req->live_fallback)
		return say(a->res, "%s: cannot switch live: %s; nothing changed (--apply save-restore or next-boot work)",
			   a->req->domain, why);
	a->res->strategy = a->req->fallback;
	snprintf(a->res->live_detail, sizeof(a->res->live_detail), "not live (%.400s)", why);
	if (a->res->strategy == APPLY_NEXT_BOOT)
		a->live_change = false;
	return 0;
}

/* --apply live: a swap a killed aioguard left half done is put back first,
 * then the domain must support the swap at all; the mode QEMU runs is the
 * recorded one (libvirt's live XML keeps what QEMU started with). */
static int prepare_live_swap(struct apply *a)
{
	char why[512];

	if (prepare_live(a) < 0 || a->not_running)
		return a->not_running ? 0 : -1;
	int repaired = live_repair(a->dom, state_dir(a), why, sizeof(why));

	if (repaired < 0)
		return say(a->res, "%s: a live switch left half done could not be put back: %s; nothing changed",
			   a->req->domain, why);
	if (repaired > 0)
		snprintf(a->repaired, sizeof(a->repaired), "%.200s; ", why);
	if (live_probe(a->dom, a->req->target, why, sizeof(why)) < 0)
		return live_unsupported(a, why);
	live_state_get_io(state_dir(a), a->dom, a->req->target, a->live_source, &a->live_old_io);
	a->live_change = !same_aio(a->live_old_io, a->req->io);
	return 0;
}

static void print_diff(const struct apply *a)
{
	char *old_label, *new_label, *diff;

	if (!a->req->diff_out)
		return;
	old_label = xasprintf("%s.xml (current)", a->req->domain);
	new_label = xasprintf("%s.xml (io=%s)", a->req->domain, io_mode_name(a->req->io));
	diff = textdiff_unified(a->old_def, a->new_xml, old_label, new_label);
	fputs(diff, a->req->diff_out);
	fflush(a->req->diff_out);
	free(diff);
	free(new_label);
	free(old_label);
}

/* mkdir -p: every missing component is created with mode. */
static int mkdir_p(const char *path, mode_t mode)
{
	char *p = xstrdup(path);
	int ret = 0, saved;

	for (char *s = p + (*p == '/');; s++) {
		char c = *s;

		if (c != '/' && c)
			continue;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST) {
			ret = -1;
			break;
		}
		*s = c;
		if (!c)
			break;
	}
	saved = errno;
	free(p);
	errno = saved;
	return ret;
}

static int write_all(int fd, const char *s, size_t len)
{
	while (len) {
		ssize_t n = write(fd, s, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

/* O_EXCL, never through a symlink, named to sort by time (UTC):
 * DOMAIN-UUID-YYYYmmddTHHMMSS-NNN.xml, NNN counting within one second. */
static int create_backup_file(const struct apply *a, int dirfd, char *name, size_t size)
{
	char stamp[32], domain[129];
	time_t now = time(NULL);
	struct tm tm;
	int fd = -1;

	/* libvirt forbids '/' in names; do not rely on it for a path. */
	snprintf(domain, sizeof(domain), "%s", a->req->domain);
	for (char *c = domain; *c; c++)
		if (*c == '/')
			*c = '_';
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", gmtime_r(&now, &tm));
	for (int n = 0; n < 1000; n++) {
		snprintf(name, size, "%s-%s-%s-%03d.xml", domain, a->uuid, stamp, n);
		fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0 || errno != EEXIST)
			break;
	}
	return fd;
}

/* The old persistent XML, durable before anything changes, in the form
 * that 'virsh define' turns back into what libvirt held. The directory is
 * made absolute: libvirtd resolves the save file path, not us. */
static int write_backup(struct apply *a)
{
	const char *dir = a->req->backup_dir;
	char name[NAME_MAX + 1];
	char *abs = NULL;
	int dirfd = -1, fd, err = 0, ret = -1;

	if (mkdir_p(dir, 0700) < 0 || !(abs = realpath(dir, NULL)) ||
	    (dirfd = open(abs, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		say(a->res, "cannot use backup directory %s: %s; nothing changed", dir, strerror(errno));
		goto out;
	}
	fd = create_backup_file(a, dirfd, name, sizeof(name));
	if (fd < 0) {
		say(a->res, "cannot create a backup in %s: %s; nothing changed", abs, strerror(errno));
		goto out;
	}
	if (write_all(fd, a->old_def, strlen(a->old_def)) < 0 || fsync(fd) < 0)
		err = errno;
	if (close(fd) < 0 && !err)
		err = errno;
	if (!err && fsync(dirfd) < 0)
		err = errno;
	if (!err && (size_t)snprintf(a->res->backup_path, sizeof(a->res->backup_path), "%s/%s",
				     abs, name) >= sizeof(a->res->backup_path))
		err = ENAMETOOLONG;
	if (err) {
		unlinkat(dirfd, name, 0);
		a->res->backup_path[0] = '\0';
		say(a->res, "cannot write backup %s/%s: %s; nothing changed", abs, name, strerror(err));
		goto out;
	}
	ret = 0;
out:
	if (dirfd >= 0)
		close(dirfd);
	free(abs);
	return ret;
}

/* NULL when the domain's XML (persistent or live, by flags) now has the
 * requested io; otherwise why not. With `written`, every disk must also
 * read back exactly as written there, i.e. as before but for that one io
 * (xmledit checked the edit): libvirt defines what it parses, which need
 * not be what it was sent (a raw newline in a path turns into a space),
 * and the diff the operator saw showed only the io. */
static char *check_io(const struct apply *a, unsigned int flags, const char *written)
{
	char *raw = virDomainGetXMLDesc(a->dom, flags);
	char *xml = raw ? xml_keep_attr_whitespace(raw) : NULL;
	struct xml_driver drv;
	char err[512];
	char *why = NULL;

	if (!xml)
		return xasprintf("cannot read back the XML of %s: %s", a->req->domain,
				 virt_last_error());
	if (xmledit_get_driver(xml, a->req->target, &drv, err, sizeof(err)) < 0)
		why = xasprintf("%s: %s", a->req->domain, err);
	else if (drv.io != a->req->io)
		why = xasprintf("%s reads back as io='%s'", a->req->target, io_str(drv.io));
	else if (written && xmledit_compare_disks(written, xml, NULL, err, sizeof(err)))
		why = xasprintf("%s as libvirt defined it differs from what aioguard wrote (only %s's io changed there): %s",
				a->req->domain, a->req->target, err);
	xml_driver_free(&drv);
	free(xml);
	free(raw);
	return why;
}

/* After a rollback: NULL when the persistent XML reads back as it was
 * (its disks at least), else what differs. */
static char *check_restored(const struct apply *a)
{
	char *raw = virDomainGetXMLDesc(a->dom, PERSISTENT_FLAGS);
	char *xml = raw ? xml_keep_attr_whitespace(raw) : NULL;
	char diff[512];
	char *why = NULL;

	if (!xml)
		why = xasprintf("cannot read it back: %s", virt_last_error());
	else if (strcmp(raw, a->old_xml) &&
		 xmledit_compare_disks(a->old_def, xml, NULL, diff, sizeof(diff)))
		why = xstrdup(diff);
	free(xml);
	free(raw);
	return why;
}

/* Put the persistent XML back unless it still is the original. Returns -1;
 * the message says why we got here and how the rollback went. */
static int rollback(struct apply *a, const char *why)
{
	char *now = virDomainGetXMLDesc(a->dom, PERSISTENT_FLAGS);
	char *differs = NULL;
	virDomainPtr dom;

	a->res->changed = false;
	if (now && !strcmp(now, a->old_xml)) {
		say(a->res, "%s; persistent XML unchanged", why);
	} else if ((dom = virDomainDefineXML(a->conn, a->old_def))) {
		virDomainFree(dom);
		differs = check_restored(a);
		a->res->changed = differs != NULL;
		if (differs)
			say(a->res, "%s; persistent XML defined again from %s, but it does not read back as it was (%s): check 'virsh dumpxml --inactive %s'",
			    why, a->res->backup_path, differs, a->req->domain);
		else
			say(a->res, "%s; persistent XML restored from %s", why, a->res->backup_path);
	} else {
		a->res->changed = true;
		say(a->res, "%s; ROLLBACK FAILED (%s): run 'virsh define %s'", why,
		    virt_last_error(), a->res->backup_path);
	}
	free(differs);
	free(now);
	return -1;
}

static int define_new(struct apply *a)
{
	char *now = virDomainGetXMLDesc(a->dom, PERSISTENT_FLAGS);
	virDomainPtr dom = NULL;
	char *why = NULL;
	int ret = -1;

	/* libvirtd went away after the backup: nothing was defined. Name the
	 * backup all the same: it is the XML as it was before we started. */
	if (!now) {
		say(a->res, "cannot re-read the XML of %s: %s; nothing changed; its XML as read is saved in %s ('virsh define %s' restores it)",
		    a->req->domain, virt_last_error(), a->res->backup_path, a->res->backup_path);
		goto out;
	}
	/* virsh edit or another tool defined it since we read it: our edit
	 * would silently undo theirs. The backup is of a stale XML. */
	if (strcmp(now, a->old_xml)) {
		unlink(a->res->backup_path);
		a->res->backup_path[0] = '\0';
		say(a->res, "the XML of %s changed while aioguard worked on it; nothing changed, run again",
		    a->req->domain);
		goto out;
	}
	if (!persistent_changes(a)) {
		ret = 0;
		goto out;
	}
	dom = virDomainDefineXMLFlags(a->conn, a->new_xml, VIR_DOMAIN_DEFINE_VALIDATE);
	if (!dom) {
		/* Its schema refuses a tab or newline in a path; libvirt only
		 * has one because something defined it without validation. */
		why = xasprintf("libvirt rejected the new XML of %s%s: %s", a->req->domain,
				strcmp(a->old_xml, a->old_def) ? " (an attribute of it, a path perhaps, "
				"holds a tab or newline, which libvirt's schema refuses)" : "",
				virt_last_error());
		goto out;
	}
	a->res->changed = true;
	why = check_io(a, PERSISTENT_FLAGS, a->new_xml);
	ret = why ? -1 : 0;
out:
	if (why)
		rollback(a, why);
	if (dom)
		virDomainFree(dom);
	free(why);
	free(now);
	return ret;
}

/* The XML to restore the image with: the one it was saved with, whose ABI
 * the restore checks (the live XML differs in defaults), io rewritten.
 * NULL with *why set on failure. */
static char *image_xml_with_io(struct apply *a, const char *save, char **why)
{
	char *raw = virDomainSaveImageGetXMLDesc(a->conn, save, VIR_DOMAIN_SAVE_IMAGE_XML_SECURE);
	enum io_mode old_io;
	char *xml, *out;

	if (!raw) {
		*why = xasprintf("cannot read its XML: %s", virt_last_error());
		return NULL;
	}
	xml = xml_keep_attr_whitespace(raw);
	out = rewrite_xml(a, xml, " (saved image)", &old_io);
	if (!out)
		*why = xstrdup(a->res->message);
	free(xml);
	free(raw);
	return out;
}

/* The new XML did not restore: bring the domain back as it was saved. */
static char *restore_old(const struct apply *a, const char *save, const char *err)
{
	if (virDomainRestoreFlags(a->conn, save, NULL, 0) == 0) {
		unlink(save);
		return xasprintf("restoring %s with the new XML failed (%s); it runs again with the old one",
				 a->req->domain, err);
	}
	return xasprintf("restoring %s failed with the new XML (%s) and with the old (%s); it stays saved: 'virsh restore %s' resumes it",
			 a->req->domain, err, virt_last_error(), save);
}

/* Stop the guest to a file next to the backup and start it again with the
 * new io; the guest sees a pause, its state survives. */
static int save_restore(struct apply *a)
{
	const char *backup = a->res->backup_path;
	char *save = xasprintf("%.*s.save", (int)(strlen(backup) - strlen(".xml")), backup);
	char *image_xml = NULL, *err = NULL, *why = NULL;
	int ret = -1;

	if (virDomainSaveFlags(a->dom, save, NULL, 0) < 0) {
		why = xasprintf("cannot save %s to %s (it keeps running): %s", a->req->domain, save,
				virt_last_error());
		unlink(save);
		rollback(a, why);
		goto out;
	}
	image_xml = image_xml_with_io(a, save, &err);
	if (image_xml && virDomainRestoreFlags(a->conn, save, image_xml, 0) < 0)
		err = xstrdup(virt_last_error());
	if (err) {
		why = restore_old(a, save, err);
		rollback(a, why);
		goto out;
	}
	unlink(save);
	a->res->changed = true;
	a->res->live = true;
	/* Restored is restored: report a mismatch, another save would not help. */
	why = check_io(a, LIVE_FLAGS, NULL);
	if (why) {
		say(a->res, "%s restored, but %s; backup: %s", a->req->domain, why, backup);
		goto out;
	}
	ret = 0;
out:
	free(why);
	free(err);
	free(image_xml);
	free(save);
	return ret;
}

/* The running QEMU's file nodes swapped; refused: the persistent XML too
 * goes back, so that the disk is as it was. */
static int live_switch(struct apply *a)
{
	char why[512];

	if (live_swap(a->dom, a->req->target, a->req->io, a->live_xml_io, state_dir(a),
		      why, sizeof(why)) < 0) {
		char *msg = xasprintf("live switch of %s failed: %s", a->req->target, why);
		rollback(a, msg);
		free(msg);
		return -1;
	}
	snprintf(a->res->live_detail, sizeof(a->res->live_detail), "%s", why);
	a->res->changed = true;
	a->res->live = true;
	return 0;
}

static int apply_live_change(struct apply *a)
{
	if (!a->live_change)
		return 0;
	return a->res->strategy == APPLY_LIVE ? live_switch(a) : save_restore(a);
}

static void say_done(struct apply *a)
{
	struct apply_result *res = a->res;
	bool persistent = persistent_changes(a);
	const char *when = "next boot";

	char *live = NULL;

	if (res->live && res->strategy == APPLY_LIVE)
		when = live = xasprintf("now, live: %s; libvirt's live XML keeps io='%s'%s",
					res->live_detail, io_str(a->live_xml_io),
					persistent ? "; and at next boot" : "");
	else if (res->live)
		when = persistent ? "now via save/restore, and at next boot" : "now via save/restore";
	else if (a->not_running)
		when = "next boot; domain not running, nothing to restart";
	say(res, "%s: io %s → %s (%s%s%s%s); backup: %s", a->req->target, io_str(res->old_io),
	    io_str(a->req->io), a->repaired, when, res->strategy != a->req->strategy ? "; " : "",
	    res->strategy != a->req->strategy ? res->live_detail : "", res->backup_path);
	free(live);
}

/* Always 0, to chain with the steps. */
static int enter(struct apply_result *res, enum apply_stage stage)
{
	__atomic_store_n(&res->stage, stage, __ATOMIC_SEQ_CST);
	return 0;
}

int apply_set_io(virConnectPtr conn, const struct apply_request *req, struct apply_result *res)
{
	struct apply a = {.conn = conn, .req = req, .res = res};
	int ret = -1;

	memset(res, 0, sizeof(*res));
	res->new_io = req->io;
	res->strategy = req->strategy;
	if (open_domain(&a) < 0)
		goto out;
	a.new_xml = rewrite_xml(&a, a.old_def, "", &res->old_io);
	if (!a.new_xml)
		goto out;
	if (req->strategy == APPLY_SAVE_RESTORE && prepare_live(&a) < 0)
		goto out;
	if (req->strategy == APPLY_LIVE && prepare_live_swap(&a) < 0)
		goto out;
	/* Only the running domain lags behind (an earlier next-boot change). */
	if (!persistent_changes(&a) && a.live_change)
		res->old_io = a.live_old_io;
	print_diff(&a);
	if (!persistent_changes(&a) && !a.live_change) {
		say(res, "%s: io is already %s; nothing to do", req->target, io_str(req->io));
		ret = 0;
	} else if (req->dry_run) {
		say(res, "%s: io %s → %s (dry run: nothing changed)", req->target,
		    io_str(res->old_io), io_str(req->io));
		ret = 0;
	} else if (!write_backup(&a) && !enter(res, APPLY_STAGE_DEFINING) && !define_new(&a) &&
		   !enter(res, APPLY_STAGE_LIVE) && !apply_live_change(&a)) {
		say_done(&a);
		ret = 0;
	}
out:
	if (a.dom)
		virDomainFree(a.dom);
	free(a.live_source);
	free(a.new_xml);
	free(a.old_def);
	free(a.old_xml);
	return ret;
}
