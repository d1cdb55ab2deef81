// SPDX-License-Identifier: GPL-2.0-only
/* /init of the guest tools/bench-live-switch boots: loads the virtio block
 * modules, then writes /dev/vda with O_DIRECT, 64 KiB at a time, without
 * end, and after every completed write prints its number on the serial
 * console. The host timestamps the lines as they arrive: the longest gap
 * between two is the I/O pause the guest saw, in the host's time (a saved
 * guest's own clock stops with it, so only the host can see that pause).
 * Built static (no libc in the initramfs). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CHUNK (64 * 1024)
#define WRAP (512LL * 1024 * 1024)   /* then write over what is allocated */

static int console = 2;

static void say(const char *fmt, const char *arg)
{
	dprintf(console, fmt, arg);
}

/* modules in /mods/order, each after its dependencies */
static void load_modules(void)
{
	FILE *order = fopen("/mods/order", "r");
	char name[256], path[300];

	while (order && fgets(name, sizeof(name), order)) {
		name[strcspn(name, "\n")] = '\0';
		snprintf(path, sizeof(path), "/mods/%s", name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || syscall(SYS_finit_module, fd, "", 0) < 0)
			if (errno != EEXIST)
				say("bench-guest: cannot load %s\n", name);
		if (fd >= 0)
			close(fd);
	}
	if (order)
		fclose(order);
}

static int open_disk(void)
{
	for (int i = 0; i < 600; i++) {
		int fd = open("/dev/vda", O_RDWR | O_DIRECT);
		if (fd >= 0)
			return fd;
		usleep(100000);
	}
	say("bench-guest: no /dev/vda%s\n", "");
	return -1;
}

int main(void)
{
	static char buf[CHUNK] __attribute__((aligned(4096)));
	unsigned long n = 0;
	long long off = 0;
	int fd;

	mkdir("/dev", 0755);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	console = open("/dev/ttyS0", O_WRONLY | O_NOCTTY);
	if (console < 0)
		console = 2;
	load_modules();
	fd = open_disk();
	if (fd < 0)
		for (;;)
			pause();
	memset(buf, 0x5a, sizeof(buf));
	say("bench-guest: writing%s\n", "");
	for (;;) {
		if (pwrite(fd, buf, CHUNK, off) != CHUNK)
			say("bench-guest: write failed: %s\n", strerror(errno));
		off = (off + CHUNK) % WRAP;
		dprintf(console, "%lu\n", ++n);
	}
}
