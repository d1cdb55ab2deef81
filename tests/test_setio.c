// SPDX-License-Identifier: GPL-2.0-only
/* apply_set_io() against libvirt's test driver, and the aioguard binary (env
 * AIOGUARD) for what its command line promises. Every connection to a node
 * file is a fresh in-memory hypervisor, so each test starts from
 * tests/data/testnode.xml. The test driver refuses restore with changed XML,
 * which exercises the save-restore rollback for real.
 *
 * The "paths libvirt reads differently" group runs on the test driver, and
 * on the libvirt of AIOGUARD_TEST_URI when that is set (libvirt_e2e.sh sets
 * qemu:///system): a domain of its own, undefined afterwards. */
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "apply.h"
#include "util.h"
#include "virt.h"

extern char **environ;

#define VDA_NATIVE "<driver name='qemu' type='raw' cache='none' io='native'/>\n" \
		   "      <source file='/var/lib/libvirt/images/sparse.raw'/>"
#define VDA_THREADS "<driver name='qemu' type='raw' cache='none' io='threads'/>\n" \
		    "      <source file='/var/lib/libvirt/images/sparse.raw'/>"

struct fixture {
	char uri[PATH_MAX + 16];  /* test:///…/testnode.xml */
	char dir[64];             /* scratch, removed afterwards */
	char backups[128];        /* dir/backups, created only by a backup */
	virConnectPtr conn;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	const char *srcdir = getenv("AIOGUARD_SRCDIR");
	char *rel = srcdir ? xasprintf("%s/tests/data/testnode.xml", srcdir)
			   : xstrdup("data/testnode.xml");  /* meson runs us in tests/ */
	char *node = realpath(rel, NULL);

	if (!node)
		fail_msg("cannot find %s: set AIOGUARD_SRCDIR", rel);
	snprintf(f->uri, sizeof(f->uri), "test://%s", node);
	snprintf(f->dir, sizeof(f->dir), "/tmp/aioguard-setio-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->backups, sizeof(f->backups), "%s/backups", f->dir);
	virt_init();
	f->conn = virConnectOpen(f->uri);
	assert_non_null(f->conn);
	free(node);
	free(rel);
	*state = f;
	return 0;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	virConnectClose(f->conn);
	nftw(f->dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static char *domain_xml(virConnectPtr conn, const char *name, unsigned int flags)
{
	virDomainPtr dom = virDomainLookupByName(conn, name);
	char *xml;

	assert_non_null(dom);
	xml = virDomainGetXMLDesc(dom, flags);
	assert_non_null(xml);
	virDomainFree(dom);
	return xml;
}

static char *persistent_xml(virConnectPtr conn, const char *name)
{
	return domain_xml(conn, name, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE);
}

/* text with its one occurrence of from replaced by to. */
static char *replace_once(const char *text, const char *from, const char *to)
{
	const char *at = strstr(text, from);

	assert_non_null(at);
	assert_null(strstr(at + 1, from));
	return xasprintf("%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t cap = 0;
	ssize_t n;

	assert_non_null(f);
	n = getdelim(&buf, &cap, '\0', f);
	fclose(f);
	if (n < 0) {
		free(buf);
		return xstrdup("");
	}
	return buf;
}

static int count_files(const char *dir)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, NULL), files = 0;

	for (int i = 0; i < n; i++) {
		files += names[i]->d_name[0] != '.';
		free(names[i]);
	}
	free(names);
	return n < 0 ? -1 : files;
}

static bool exists(const char *path)
{
	return access(path, F_OK) == 0;
}

static void assert_contains(const char *text, const char *part)
{
	if (!strstr(text, part))
		fail_msg("'%s' does not contain '%s'", text, part);
}

static struct apply_request request(const struct fixture *f, const char *domain,
				    const char *target, enum io_mode io)
{
	return (struct apply_request){
		.domain = domain, .target = target, .io = io,
		.strategy = APPLY_NEXT_BOOT, .backup_dir = f->backups,
	};
}

static void next_boot_changes_only_io(void **state)
{
	struct fixture *f = *state;
	struct apply_request req = request(f, "multi", "vda", IO_MODE_THREADS);
	struct apply_result res;
	char *before = persistent_xml(f->conn, "multi");
	char *expected = replace_once(before, VDA_NATIVE, VDA_THREADS);
	char *diff, *after, *backup;
	size_t diff_len;
	struct stat st;

	req.diff_out = open_memstream(&diff, &diff_len);
	assert_int_equal(apply_set_io(f->conn, &req, &res), 0);
	fclose(req.diff_out);
	after = persistent_xml(f->conn, "multi");
	assert_string_equal(after, expected);
	assert_true(res.changed);
	assert_false(res.live);
	assert_int_equal(res.old_io, IO_MODE_NATIVE);
	assert_int_equal(res.new_io, IO_MODE_THREADS);
	assert_contains(res.message, "vda: io native → threads (next boot); backup: ");
	assert_contains(diff, "--- multi.xml (current)\n+++ multi.xml (io=threads)\n");
	assert_contains(diff, "\n-      <driver name='qemu' type='raw' cache='none' io='native'/>\n"
			      "+      <driver name='qemu' type='raw' cache='none' io='threads'/>\n");

	assert_int_equal(stat(f->backups, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(lstat(res.backup_path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(strncmp(res.backup_path, f->dir, strlen(f->dir)), 0);
	assert_contains(res.backup_path, "/multi-4dea22b3-1d52-d8f3-2516-782e98ab3fa0-");
	backup = slurp(res.backup_path);
	assert_string_equal(backup, before);
	free(backup);
	free(diff);
	free(after);
	free(expected);
	free(before);
}

static void disk_without_driver_gets_one(void **state)
{
	struct fixture *f = *state;
	struct apply_request req = request(f, "test", "vda", IO_MODE_THREADS);
	virConnectPtr conn = virConnectOpen("test:///default");
	struct apply_result res;
	char *before, *after, *expected;

	assert_non_null(conn);
	before = persistent_xml(conn, "test");
	expected = replace_once(before, "      <source file='/guest/diskimage1'/>\n",
				"      <driver name='qemu' io='threads'/>\n"
				"      <source file='/guest/diskimage1'/>\n");
	assert_int_equal(apply_set_io(conn, &req, &res), 0);
	assert_int_equal(res.old_io, IO_MODE_UNSET);
	assert_contains(res.message, "vda: io default → threads (next boot)");
	after = persistent_xml(conn, "test");
	assert_string_equal(after, expected);
	free(expected);
	free(after);
	free(before);
	virConnectClose(conn);
}

static void dry_run_changes_nothing(void **state)
{
	struct fixture *f = *state;
	struct apply_request req = request(f, "multi", "vda", IO_MODE_IO_URING);
	struct apply_result res;
	char *before = persistent_xml(f->conn, "multi");
	char *after, *diff;
	size_t diff_len;

	req.dry_run = true;
	req.diff_out = open_memstream(&diff, &diff_len);
	assert_int_equal(apply_set_io(f->conn, &req, &res), 0);
	fclose(req.diff_out);
	assert_false(res.changed);
	assert_string_equal(res.backup_path, "");
	assert_string_equal(res.message, "vda: io native → io_uring (dry run: nothing changed)");
	assert_contains(diff, "+      <driver name='qemu' type='raw' cache='none' io='io_uring'/>\n");
	assert_false(exists(f->backups));
	after = persistent_xml(f->conn, "multi");
	assert_string_equal(after, before);
	free(after);
	free(diff);
	free(before);
}

static void same_mode_is_nothing_to_do(void **state)
{
	struct fixture *f = *state;
	struct apply_request req = request(f, "multi", "vdc", IO_MODE_NATIVE);
	struct apply_result res;

	assert_int_equal(apply_set_io(f->conn, &req, &res), 0);
	assert_false(res.changed);
	assert_string_equal(res.message, "vdc: io is already native; nothing to do");
	assert_false(exists(f->backups));
}

/* A refusal before the backup: no change, no backup directory. */
static void assert_refused(struct fixture *f, const char *domain, const char *target,
			   enum io_mode io, const char *message)
{
	struct apply_request req = request(f, domain, target, io);
	struct apply_result res;
	char *before = persistent_xml(f->conn, "multi");
	char *after;

	assert_int_equal(apply_set_io(f->conn, &req, &res), -1);
	assert_string_equal(res.message, message);
	assert_false(res.changed);
	assert_false(exists(f->backups));
	after = persistent_xml(f->conn, "multi");
	assert_string_equal(after, before);
	free(after);
	free(before);
}

static void native_needs_o_direct_cache(void **state)
{
	assert_refused(*state, "multi", "vde", IO_MODE_NATIVE,
		       "vde: io='native' needs cache='none' or 'directsync', but the disk has cache='writeback'");
	assert_refused(*state, "multi", "sda", IO_MODE_NATIVE,
		       "sda: io='native' needs cache='none' or 'directsync', but the disk sets no cache (QEMU's default is writeback)");
}

static void unknown_domain_or_target(void **state)
{
	assert_refused(*state, "nope", "vda", IO_MODE_THREADS, "no domain named 'nope'");
	assert_refused(*state, "multi", "vdz", IO_MODE_THREADS,
		       "multi: no disk with target dev='vdz'");
}

static void transient_domain_refused(void **state)
{
	struct fixture *f = *state;
	struct apply_request req = request(f, "transient", "vda", IO_MODE_THREADS);
	struct apply_result res;
	virDomainPtr dom = virDomainCreateXML(f->conn,
		"<domain type='test'><name>transient</name><memory>1024</memory>"
		"<os><type>hvm</type></os><devices><disk type='file' device='disk'>"
		"<source file='/x.raw'/><target dev='vda'/></disk></devices></domain>", 0);

	assert_non_null(dom);
	assert_int_equal(apply_set_io(f->conn, &req, &res), -1);
	assert_string_equal(res.message,
			    "transient is transient: it has no persistent XML to change");
	assert_int_equal(virDomainIsPersistent(dom), 0);
	virDomainFree(dom);
}

/* libvirt's own validation rejects io on a vhostuser disk. */
static void rejected_define_keeps_original(void **state)
{
	struct fixture *f = *state;
	struct apply_request req = request(f, "multi", "vdf", IO_MODE_THREADS);
	struct apply_result res;
	char *before = persistent_xml(f->conn, "multi");
	char *after, *backup;

	assert_int_equal(apply_set_io(f->conn, &req, &res), -1);
	assert_contains(res.message, "libvirt rejected the new XML of multi: ");
	assert_contains(res.message, "io is not supported with vhostuser disk");
	assert_contains(res.message, "; persistent XML unchanged");
	assert_false(res.changed);
	after = persistent_xml(f->conn, "multi");
	assert_string_equal(after, before);
	backup = slurp(res.backup_path);
	assert_string_equal(backup, before);
	free(backup);
	free(after);
	free(before);
}

/* Defined, saved, then the restore with the new XML fails: the domain runs
 * again as it was and the old persistent XML is defined back. */
static void failed_restore_rolls_back(void **state)
{
	struct fixture *f = *state;
	struct apply_request req = request(f, "multi", "vda", IO_MODE_THREADS);
	struct apply_result res;
	char *before = persistent_xml(f->conn, "multi");
	char *after, *live_after;
	virDomainPtr dom;

	req.strategy = APPLY_SAVE_RESTORE;
	assert_int_equal(apply_set_io(f->conn, &req, &res), -1);
	assert_contains(res.message, "restoring multi with the new XML failed (");
	assert_contains(res.message, "it runs again with the old one; persistent XML restored from ");
	assert_false(res.changed);
	assert_false(res.live);
	dom = virDomainLookupByName(f->conn, "multi");
	assert_int_equal(virDomainIsActive(dom), 1);
	virDomainFree(dom);
	after = persistent_xml(f->conn, "multi");
	assert_string_equal(after, before);
	live_after = domain_xml(f->conn, "multi", VIR_DOMAIN_XML_SECURE);
	assert_contains(live_after, VDA_NATIVE);
	assert_int_equal(count_files(f->backups), 1);   /* the backup, no save file */
	free(live_after);
	free(after);
	free(before);
}

static void save_restore_of_stopped_domain_is_next_boot(void **state)
{
	struct fixture *f = *state;
	struct apply_request req = request(f, "stopped", "vda", IO_MODE_NATIVE);
	struct apply_result res;
	char *after;

	req.strategy = APPLY_SAVE_RESTORE;
	assert_int_equal(apply_set_io(f->conn, &req, &res), 0);
	assert_true(res.changed);
	assert_false(res.live);
	assert_contains(res.message,
			"vda: io threads → native (next boot; domain not running, nothing to restart)");
	after = persistent_xml(f->conn, "stopped");
	assert_contains(after, "<driver name='qemu' type='raw' cache='none' io='native'/>");
	free(after);
}

static void backup_failure_aborts_before_change(void **state)
{
	struct fixture *f = *state;
	struct apply_request req = request(f, "multi", "vda", IO_MODE_THREADS);
	struct apply_result res;
	char *file = xasprintf("%s/file", f->dir);
	char *dir = xasprintf("%s/backups", file);  /* below a regular file */
	char *before = persistent_xml(f->conn, "multi");
	char *after;
	FILE *fp = fopen(file, "w");

	assert_non_null(fp);
	fclose(fp);
	req.backup_dir = dir;
	assert_int_equal(apply_set_io(f->conn, &req, &res), -1);
	assert_contains(res.message, "cannot use backup directory ");
	assert_contains(res.message, "Not a directory; nothing changed");
	assert_false(res.changed);
	assert_string_equal(res.backup_path, "");
	after = persistent_xml(f->conn, "multi");
	assert_string_equal(after, before);
	free(after);
	free(before);
	free(dir);
	free(file);
}

/* A stream for the diff that defines the domain while apply is between its
 * read and its define, as a concurrent `virsh edit` would. */
struct intruder {
	virConnectPtr conn;
	const char *xml;
};

static ssize_t intrude(void *cookie, const char *buf, size_t size)
{
	struct intruder *in = cookie;
	virDomainPtr dom = in->xml ? virDomainDefineXML(in->conn, in->xml) : NULL;

	if (dom)
		virDomainFree(dom);
	in->xml = NULL;
	return (ssize_t)size;
}

static void concurrent_define_is_not_overwritten(void **state)
{
	struct fixture *f = *state;
	struct apply_request req = request(f, "multi", "vda", IO_MODE_THREADS);
	struct apply_result res;
	char *before = persistent_xml(f->conn, "multi");
	char *theirs = replace_once(before, "type='qcow2' cache='none'/>",
				    "type='qcow2' cache='directsync'/>");
	struct intruder in = {f->conn, theirs};
	char *after;

	req.diff_out = fopencookie(&in, "w", (cookie_io_functions_t){.write = intrude});
	assert_int_equal(apply_set_io(f->conn, &req, &res), -1);
	fclose(req.diff_out);
	assert_string_equal(res.message, "the XML of multi changed while aioguard worked on it; "
					 "nothing changed, run again");
	assert_false(res.changed);
	assert_string_equal(res.backup_path, "");
	assert_int_equal(count_files(f->backups), 0);
	after = persistent_xml(f->conn, "multi");
	assert_string_equal(after, theirs);
	free(after);
	free(theirs);
	free(before);
}

/* ---- paths libvirt reads differently -------------------------------- */

/* apply.c's define, interposed (the static core library resolves to this
 * definition first): with define_from set, every define_from in the XML is
 * sent as define_to, so libvirt defines something other than what apply.c
 * wrote, e.g. a newline's character reference turned back into a raw
 * newline, as aioguard sent it before it kept them. */
static const char *define_from, *define_to;

virDomainPtr virDomainDefineXMLFlags(virConnectPtr conn, const char *xml, unsigned int flags)
{
	static virDomainPtr (*real)(virConnectPtr, const char *, unsigned int);
	char *sent = xstrdup(xml), *at;
	virDomainPtr dom;

	if (!real)
		real = (virDomainPtr (*)(virConnectPtr, const char *, unsigned int))
			dlsym(RTLD_NEXT, "virDomainDefineXMLFlags");
	while (define_from && (at = strstr(sent, define_from))) {
		char *next = xasprintf("%.*s%s%s", (int)(at - sent), sent, define_to,
				       at + strlen(define_from));
		free(sent);
		sent = next;
	}
	dom = real(conn, sent, flags);
	free(sent);
	return dom;
}

struct nl_fixture {
	struct fixture f;
	char name[64];
	char path[128];           /* the source path, with a newline */
};

/* A domain whose vda path holds a newline, defined as libvirt takes it
 * from a client that escaped it (virsh define does not validate). */
static int nl_setup(void **state)
{
	const char *uri = getenv("AIOGUARD_TEST_URI");
	struct nl_fixture *n;
	virDomainPtr dom;
	char *xml;

	setup(state);
	n = xrealloc(*state, sizeof(*n));
	*state = n;
	if (uri) {
		virConnectClose(n->f.conn);
		n->f.conn = virConnectOpen(uri);
		assert_non_null(n->f.conn);
	}
	snprintf(n->name, sizeof(n->name), "aioguard-nl-%d", (int)getpid());
	snprintf(n->path, sizeof(n->path), "%s/a\nb.raw", n->f.dir);
	xml = xasprintf("<domain type='%s'><name>%s</name><memory unit='MiB'>64</memory>"
			"<os><type arch='x86_64'>hvm</type></os><devices>"
			"<disk type='file' device='disk'><driver name='qemu' type='raw' cache='none' io='native'/>"
			"<source file='%s/a&#10;b.raw'/><target dev='vda' bus='virtio'/></disk>"
			"</devices></domain>",
			strcmp(virConnectGetType(n->f.conn), "Test") ? "qemu" : "test", n->name, n->f.dir);
	dom = virDomainDefineXML(n->f.conn, xml);
	if (!dom)
		fail_msg("define %s: %s", n->name, virt_last_error());
	virDomainFree(dom);
	free(xml);
	return 0;
}

static int nl_teardown(void **state)
{
	struct nl_fixture *n = *state;
	virDomainPtr dom = virDomainLookupByName(n->f.conn, n->name);

	define_from = define_to = NULL;
	if (dom) {
		virDomainUndefine(dom);
		virDomainFree(dom);
	}
	return teardown(state);
}

/* libvirt's own text of the path: the newline raw. */
static void assert_path_intact(const struct nl_fixture *n)
{
	char *xml = persistent_xml(n->f.conn, n->name);
	char *want = xasprintf("<source file='%s'/>", n->path);

	assert_contains(xml, want);
	free(want);
	free(xml);
}

/* Escaped, the path is what libvirt holds, and libvirt's schema refuses a
 * newline in it: the validated define fails and nothing changes, in one
 * line that says why. Before, the raw newline went out, libvirt read a
 * space, and vda pointed at another file. */
static void newline_path_refused_not_moved(void **state)
{
	struct nl_fixture *n = *state;
	struct apply_request req = request(&n->f, n->name, "vda", IO_MODE_THREADS);
	struct apply_result res;
	char *before = persistent_xml(n->f.conn, n->name), *after, *diff, *backup;
	size_t diff_len;

	req.diff_out = open_memstream(&diff, &diff_len);
	assert_int_equal(apply_set_io(n->f.conn, &req, &res), -1);
	fclose(req.diff_out);
	assert_contains(res.message, "libvirt rejected the new XML of aioguard-nl-");
	assert_contains(res.message, " (an attribute of it, a path perhaps, holds a tab or "
				     "newline, which libvirt's schema refuses): ");
	assert_contains(res.message, "; persistent XML unchanged");
	assert_contains(diff, "\n-      <driver name='qemu' type='raw' cache='none' io='native'/>\n"
			      "+      <driver name='qemu' type='raw' cache='none' io='threads'/>\n");
	assert_contains(diff, "a&#10;b.raw");          /* the path as libvirt holds it */
	after = persistent_xml(n->f.conn, n->name);
	assert_string_equal(after, before);
	backup = slurp(res.backup_path);               /* 'virsh define' gives the newline back */
	assert_contains(backup, "/a&#10;b.raw'/>");
	assert_path_intact(n);
	free(backup);
	free(after);
	free(diff);
	free(before);
}

/* libvirt defines something other than what was written (here: the path
 * with a space, from the raw newline of the old aioguard): read back, seen
 * and rolled back, the path as it was. */
static void define_that_moves_a_path_rolls_back(void **state)
{
	struct nl_fixture *n = *state;
	struct apply_request req = request(&n->f, n->name, "vda", IO_MODE_THREADS);
	struct apply_result res;
	char *before = persistent_xml(n->f.conn, n->name), *after;
	char *moved = xasprintf("<source> file='%s/a\\nb.raw' became '%s/a b.raw'", n->f.dir, n->f.dir);

	define_from = "&#10;";
	define_to = "\n";
	assert_int_equal(apply_set_io(n->f.conn, &req, &res), -1);
	define_from = NULL;
	print_message("%s\n", res.message);
	assert_contains(res.message, "as libvirt defined it differs from what aioguard wrote "
				     "(only vda's io changed there): disk vda: ");
	assert_contains(res.message, moved);
	assert_contains(res.message, "; persistent XML restored from ");
	assert_null(strchr(res.message, '\n'));
	assert_false(res.changed);
	after = persistent_xml(n->f.conn, n->name);
	assert_string_equal(after, before);
	assert_path_intact(n);
	free(moved);
	free(after);
	free(before);
}

/* Any other difference counts as much as a path: another disk's cache. */
static void define_that_changes_another_disk_rolls_back(void **state)
{
	struct fixture *f = *state;
	struct apply_request req = request(f, "multi", "vda", IO_MODE_THREADS);
	struct apply_result res;
	char *before = persistent_xml(f->conn, "multi"), *after;

	define_from = "type='qcow2' cache='none'/>";
	define_to = "type='qcow2' cache='directsync'/>";
	assert_int_equal(apply_set_io(f->conn, &req, &res), -1);
	define_from = NULL;
	assert_contains(res.message, "multi as libvirt defined it differs from what aioguard wrote "
				     "(only vda's io changed there): disk vdb: <driver> cache='none' "
				     "became 'directsync'; persistent XML restored from ");
	assert_false(res.changed);
	after = persistent_xml(f->conn, "multi");
	assert_string_equal(after, before);
	free(after);
	free(before);
}

/* aioguard ARGS…: exit status; stdout and stderr in *out and *err. */
static int run_cli(const struct fixture *f, const char *const *args, char **out, char **err)
{
	const char *aioguard = getenv("AIOGUARD");
	char *out_path = xasprintf("%s/stdout", f->dir), *err_path = xasprintf("%s/stderr", f->dir);
	const char *argv[16] = {aioguard};
	posix_spawn_file_actions_t fa;
	int status, n = 1;
	pid_t pid;

	while (*args && n < 15)
		argv[n++] = *args++;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_int_equal(posix_spawn(&pid, aioguard, &fa, NULL, (char *const *)argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	*out = slurp(out_path);
	*err = slurp(err_path);
	free(err_path);
	free(out_path);
	return WEXITSTATUS(status);
}

static void skip_without_binary(void)
{
	if (!getenv("AIOGUARD"))
		skip();
}

static void cli_help(void **state)
{
	const char *args[] = {"set-io", "--help", NULL};
	char *out, *err;

	skip_without_binary();
	assert_int_equal(run_cli(*state, args, &out, &err), 0);
	assert_string_equal(err, "");
	assert_contains(out, "Usage: aioguard set-io [OPTIONS] DOMAIN TARGET native|threads|io_uring\n");
	for (const char *const *o = (const char *const[]){"--connect", "--apply", "next-boot",
			"save-restore", "--backup-dir", "--dry-run", "backed up", "validation",
			"defined again", "0600", NULL}; *o; o++)
		assert_contains(out, *o);
	free(out);
	free(err);
}

/* Fails with exit status and exactly one line on stderr, nothing on stdout. */
static void assert_cli_fails(struct fixture *f, int status, const char *const *args,
			     const char *line)
{
	char *out, *err;

	assert_int_equal(run_cli(f, args, &out, &err), status);
	assert_string_equal(out, "");
	assert_string_equal(err, line);
	free(out);
	free(err);
}

static void cli_usage_errors(void **state)
{
	struct fixture *f = *state;

	skip_without_binary();
	assert_cli_fails(f, 2, (const char *[]){"set-io", NULL},
		"aioguard: set-io: expected DOMAIN TARGET MODE (try 'aioguard set-io --help')\n");
	assert_cli_fails(f, 2, (const char *[]){"set-io", "multi", "vda", "fast", NULL},
		"aioguard: set-io: unknown io mode 'fast': use native, threads or io_uring (try 'aioguard set-io --help')\n");
	assert_cli_fails(f, 2, (const char *[]){"set-io", "--apply", "later", "m", "vda", "native", NULL},
		"aioguard: set-io: --apply takes next-boot, save-restore or live, not 'later' (try 'aioguard set-io --help')\n");
	assert_cli_fails(f, 2, (const char *[]){"set-io", "--frob", "m", "vda", "native", NULL},
		"aioguard: set-io: unknown option --frob (try 'aioguard set-io --help')\n");
	assert_cli_fails(f, 2, (const char *[]){"set-io", "m", "vda", "native", "-b", NULL},
		"aioguard: set-io: option -b needs a value (try 'aioguard set-io --help')\n");
}

static void cli_failures(void **state)
{
	struct fixture *f = *state;

	skip_without_binary();
	assert_cli_fails(f, 1, (const char *[]){"set-io", "-c", f->uri, "nope", "vda", "native", NULL},
		"aioguard: set-io: no domain named 'nope'\n");
	assert_cli_fails(f, 1, (const char *[]){"set-io", "-c", f->uri, "multi", "vdz", "native", NULL},
		"aioguard: set-io: multi: no disk with target dev='vdz'\n");
	assert_cli_fails(f, 1, (const char *[]){"set-io", "-c", f->uri, "multi", "vde", "native", NULL},
		"aioguard: set-io: vde: io='native' needs cache='none' or 'directsync', but the disk has cache='writeback'\n");
	assert_cli_fails(f, 1, (const char *[]){"set-io", "-c", "test+unix:///default?socket=/nonexistent",
						"multi", "vda", "native", NULL},
		"aioguard: set-io: cannot connect to libvirt at test+unix:///default?socket=/nonexistent: "
		"Failed to connect socket to '/nonexistent': No such file or directory\n");
}

static void cli_dry_run_then_apply(void **state)
{
	struct fixture *f = *state;
	const char *dry[] = {"set-io", "-c", f->uri, "--dry-run", "-b", f->backups,
			     "multi", "vda", "threads", NULL};
	const char *apply[] = {"set-io", "-c", f->uri, "multi", "vda", "threads",
			       "--backup-dir", f->backups, "--apply", "next-boot", NULL};
	char *out, *err, *line;
	struct stat st;

	skip_without_binary();
	assert_int_equal(run_cli(f, dry, &out, &err), 0);
	assert_string_equal(err, "");
	assert_contains(out, "@@ -19,7 +19,7 @@\n");
	assert_contains(out, "\n+      <driver name='qemu' type='raw' cache='none' io='threads'/>\n");
	assert_contains(out, " </disk>\nvda: io native → threads (dry run: nothing changed)\n");
	assert_false(exists(f->backups));
	free(out);
	free(err);

	assert_int_equal(run_cli(f, apply, &out, &err), 0);
	assert_string_equal(err, "");
	line = xasprintf("\nvda: io native → threads (next boot); backup: %s/multi-"
			 "4dea22b3-1d52-d8f3-2516-782e98ab3fa0-", f->backups);
	assert_contains(out, line);
	assert_int_equal(count_files(f->backups), 1);
	*strchr(strstr(out, "backup: "), '\n') = '\0';
	assert_int_equal(stat(strstr(out, "backup: ") + strlen("backup: "), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	free(line);
	free(out);
	free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(next_boot_changes_only_io, setup, teardown),
		cmocka_unit_test_setup_teardown(disk_without_driver_gets_one, setup, teardown),
		cmocka_unit_test_setup_teardown(dry_run_changes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(same_mode_is_nothing_to_do, setup, teardown),
		cmocka_unit_test_setup_teardown(native_needs_o_direct_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(unknown_domain_or_target, setup, teardown),
		cmocka_unit_test_setup_teardown(transient_domain_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(rejected_define_keeps_original, setup, teardown),
		cmocka_unit_test_setup_teardown(failed_restore_rolls_back, setup, teardown),
		cmocka_unit_test_setup_teardown(save_restore_of_stopped_domain_is_next_boot, setup, teardown),
		cmocka_unit_test_setup_teardown(backup_failure_aborts_before_change, setup, teardown),
		cmocka_unit_test_setup_teardown(concurrent_define_is_not_overwritten, setup, teardown),
		cmocka_unit_test_setup_teardown(define_that_changes_another_disk_rolls_back, setup, teardown),
		cmocka_unit_test_setup_teardown(cli_help, setup, teardown),
		cmocka_unit_test_setup_teardown(cli_usage_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(cli_failures, setup, teardown),
		cmocka_unit_test_setup_teardown(cli_dry_run_then_apply, setup, teardown),
	};
	const struct CMUnitTest newline[] = {
		cmocka_unit_test_setup_teardown(newline_path_refused_not_moved, nl_setup, nl_teardown),
		cmocka_unit_test_setup_teardown(define_that_moves_a_path_rolls_back, nl_setup, nl_teardown),
	};
	int failed = 0;

	if (!getenv("AIOGUARD_TEST_URI"))
		failed += cmocka_run_group_tests(tests, NULL, NULL);
	failed += cmocka_run_group_tests_name("paths libvirt reads differently", newline, NULL, NULL);
	return failed;
}
