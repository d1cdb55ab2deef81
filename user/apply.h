/* SPDX-License-Identifier: GPL-2.0-only */
/* The only writer of domain XML. One disk's io mode changes as: read fresh
 * XML -> rewrite (xmledit) -> diff -> backup -> define with validation ->
 * read back: every disk as before but for that io -> (save/restore) ->
 * verify; any failure after the backup rolls back. Every XML read from
 * libvirt goes through xml_keep_attr_whitespace() first, so what is edited,
 * backed up and defined is what libvirt holds. */
#ifndef AIOGUARD_APPLY_H
#define AIOGUARD_APPLY_H

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <libvirt/libvirt.h>

#include "../policy/facts.h"
#include "apply_strategy.h"

struct apply_request {
	const char *domain;        /* libvirt name */
	const char *target;        /* <target dev=…> */
	enum io_mode io;           /* the mode to set */
	enum apply_strategy strategy;
	bool live_fallback;        /* APPLY_LIVE where the domain cannot: use
	                              fallback instead of refusing */
	enum apply_strategy fallback;
	const char *backup_dir;    /* created 0700 if missing; save files go here too */
	const char *state_dir;     /* live records (APPLY_LIVE); NULL: the default */
	bool dry_run;              /* print the diff, change nothing */
	FILE *diff_out;            /* unified diff of the persistent XML; NULL: none */
};

/* How far apply_set_io has got: a caller that gives up waiting on a hung
 * libvirtd says what that left (set with __atomic stores: read from
 * another thread). */
enum apply_stage {
	APPLY_STAGE_READING,   /* reading XML, backing up: nothing changed yet */
	APPLY_STAGE_DEFINING,  /* define, read back or rollback sent */
	APPLY_STAGE_LIVE,      /* the running domain: save-restore or live swap */
};

struct apply_result {
	int stage;                 /* enum apply_stage */
	bool changed;              /* the domain's XML (persistent or live) changed */
	bool live;                 /* the running domain now uses the new mode */
	enum io_mode old_io, new_io;
	char backup_path[PATH_MAX];  /* "" when no backup was written */
	enum apply_strategy strategy;  /* the one used (live_fallback: maybe fallback) */
	char live_detail[512];         /* APPLY_LIVE: the swap's steps; after a
	                                  fallback: why live could not be used */     /* APPLY_LIVE: the swap's QMP steps and times */
	char message[1024];        /* one line: the outcome, or what failed and
	                              what was rolled back */
};

/* 0 when done (also: dry run, nothing to change), -1 on failure. Either way
 * res->message says what happened. conn must be read-write. */
int apply_set_io(virConnectPtr conn, const struct apply_request *req,
		 struct apply_result *res);

#endif
