// SPDX-License-Identifier: GPL-2.0-only
/* Load and attach every program of a BPF object; print "attached"; hold
 * them until SIGINT/SIGTERM. For tools/bench-floor only. */
#include <bpf/libbpf.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static void on_signal(int s) { (void)s; stop = 1; }

int main(int argc, char **argv)
{
	struct bpf_object *o;
	struct bpf_program *p;

	if (argc != 2) {
		fprintf(stderr, "usage: %s OBJECT\n", argv[0]);
		return 2;
	}
	o = bpf_object__open_file(argv[1], NULL);
	if (!o || bpf_object__load(o)) {
		fprintf(stderr, "cannot load %s\n", argv[1]);
		return 1;
	}
	bpf_object__for_each_program(p, o)
		if (!bpf_program__attach(p)) {
			fprintf(stderr, "cannot attach %s\n", bpf_program__name(p));
			return 1;
		}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	printf("attached\n");
	fflush(stdout);
	while (!stop)
		pause();
	return 0;
}
