// SPDX-License-Identifier: GPL-2.0-only
#include "virt.h"

#include <libvirt/virterror.h>

#include "util.h"

static void quiet_error(void *opaque, virErrorPtr err)
{
	(void)opaque;
	(void)err;
}

void virt_init(void)
{
	virInitialize();
	virSetErrorFunc(NULL, quiet_error);
}

virConnectPtr virt_open(const char *uri)
{
	virt_init();
	virConnectPtr conn = virConnectOpen(uri);
	if (!conn)
		log_err("cannot connect to libvirt at %s: %s", uri ? uri : "(default URI)",
			virt_last_error());
	return conn;
}

const char *virt_last_error(void)
{
	virErrorPtr e = virGetLastError();
	return e && e->message ? e->message : "unknown error";
}
