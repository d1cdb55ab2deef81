/* SPDX-License-Identifier: GPL-2.0-only */
/* Serves /metrics through libmicrohttpd in its own thread. The agent loop
 * publishes a finished text each interval; a request only copies the latest
 * one under a lock, so slow or hostile clients never block observation. */
#ifndef AIOGUARD_METRICS_HTTP_H
#define AIOGUARD_METRICS_HTTP_H

#include <stddef.h>

struct metrics_http;

/* listen: "ADDR:PORT" or "[V6ADDR]:PORT"; web: TLS and basic auth
 * (webconfig.h), kept by the caller until metrics_http_stop and used by
 * the server's thread alone meanwhile, or NULL for
 * plain HTTP without authentication. NULL with err set on failure. */
struct web_config;
struct metrics_http *metrics_http_start(const char *listen, struct web_config *web,
					char *err, size_t errlen);
/* The port bound (useful with port 0: any free port). */
unsigned metrics_http_port(const struct metrics_http *m);
/* Replace the served text (copied). */
void metrics_http_publish(struct metrics_http *m, const char *text, size_t len);
void metrics_http_stop(struct metrics_http *m);

/* Parse "ADDR:PORT" / "[V6]:PORT" into a sockaddr; 0 or -1. Pure. */
struct sockaddr_storage;
int metrics_parse_listen(const char *listen, struct sockaddr_storage *out);

#endif
