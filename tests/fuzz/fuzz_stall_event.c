// SPDX-License-Identifier: GPL-2.0-only
/* The decoder of ring buffer records: any bytes, any size. Invariants: a
 * decoded stall has a NUL-terminated thread name and a known syscall. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../user/observer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct observer_stall s;
	int type = observer_decode_event(data, size, 0, &s);

	if (type < 0)
		return 0;
	if (type != OBS_EVENT_STALL && type != OBS_EVENT_NEW_FILE)
		abort();
	if (!memchr(s.thread, '\0', sizeof(s.thread)))
		abort();
	if (s.syscall >= OBS_SC_COUNT || !obs_syscall_name(s.syscall))
		abort();
	return 0;
}
