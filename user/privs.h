/* SPDX-License-Identifier: GPL-2.0-only */
/* Least privilege: once the BPF programs are loaded and attached, their
 * file descriptors are all the agent needs of the kernel, so every
 * capability but CAP_DAC_READ_SEARCH goes (it reads image headers and
 * extent maps of files owned by libvirt-qemu). */
#ifndef AIOGUARD_PRIVS_H
#define AIOGUARD_PRIVS_H

/* Drop all capabilities but CAP_DAC_READ_SEARCH from the effective,
 * permitted, inheritable, ambient and bounding sets, and set no_new_privs.
 * 0, or -1 with the reason said. */
int privs_drop_after_attach(void);

#endif
