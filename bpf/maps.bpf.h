/* SPDX-License-Identifier: GPL-2.0-only */
/* Map idioms, in the way of libbpf-tools' maps.bpf.h. */
#ifndef AIOGUARD_MAPS_BPF_H
#define AIOGUARD_MAPS_BPF_H

#include <bpf/bpf_helpers.h>

enum slot_claim {
	SLOT_NONE,    /* no slot free */
	SLOT_KNOWN,   /* key had one */
	SLOT_NEW,     /* key got one just now */
};

/* Lookup-or-init for keys that index an array by a slot: the slot of key
 * in the hash `slots`, or one popped from the queue `free` and recorded
 * there and in the array `owner` (slot -> key). A CPU that loses a race to
 * record the same key gives its slot back and takes the winner's. */
static __always_inline enum slot_claim slot_lookup_or_claim(void *slots, void *free, void *owner,
							    const void *key, __u32 *slot)
{
	__u32 *known = bpf_map_lookup_elem(slots, key);

	if (!known) {
		if (bpf_map_pop_elem(free, slot))
			return SLOT_NONE;
		bpf_map_update_elem(owner, slot, key, BPF_ANY);
		if (!bpf_map_update_elem(slots, key, slot, BPF_NOEXIST))
			return SLOT_NEW;
		bpf_map_push_elem(free, slot, 0);
		known = bpf_map_lookup_elem(slots, key);
		if (!known)
			return SLOT_NONE;
	}
	*slot = *known;
	return SLOT_KNOWN;
}

#endif
