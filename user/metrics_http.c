// SPDX-License-Identifier: GPL-2.0-only
#include "metrics_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <gnutls/gnutls.h>
#include <microhttpd.h>

#include "util.h"
#include "webconfig.h"

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* One published text, shared by every response that serves it: a client
 * holds a reference, not a copy, so a slow reader costs no memory of its
 * own and a request holds the lock only to take its reference. */
struct snapshot {
	unsigned refs;            /* atomic: released from libmicrohttpd's thread */
	size_t len;
	char text[];
};

struct metrics_http {
	struct MHD_Daemon *daemon;
	pthread_mutex_t lock;
	struct snapshot *snap;    /* the latest; NULL before the first publish */
	unsigned conns;           /* open connections (libmicrohttpd's thread) */
	struct web_config *web;   /* TLS and users; NULL: plain, open */
};

/* Connections in all and per client address. */
#define MAX_CONNECTIONS 64
#define MAX_CONNECTIONS_PER_ADDR 16

/* At its own MHD_OPTION_CONNECTION_LIMIT libmicrohttpd stops accepting:
 * clients past it would wait in the listen backlog, a scrape among them,
 * until an idle one times out. Its limit is set above ours instead, and
 * past ours a new client is accepted and closed at once. */
static enum MHD_Result accept_policy(void *cls, const struct sockaddr *addr, socklen_t len)
{
	const struct metrics_http *m = cls;
	(void)addr;
	(void)len;
	return __atomic_load_n(&m->conns, __ATOMIC_RELAXED) < MAX_CONNECTIONS ? MHD_YES : MHD_NO;
}

static void count_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			     enum MHD_ConnectionNotificationCode code)
{
	struct metrics_http *m = cls;
	(void)c;
	(void)socket_context;
	if (code == MHD_CONNECTION_NOTIFY_STARTED)
		__atomic_add_fetch(&m->conns, 1, __ATOMIC_RELAXED);
	else if (code == MHD_CONNECTION_NOTIFY_CLOSED)
		__atomic_sub_fetch(&m->conns, 1, __ATOMIC_RELAXED);
}

static void snapshot_unref(void *cls)
{
	struct snapshot *s = cls;
	if (s && __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) == 0)
		free(s);
}

int metrics_parse_listen(const char *listen, struct sockaddr_storage *out)
{
	char host[128];
	const char *colon = strrchr(listen, ':');
	if (!colon || colon == listen || (size_t)(colon - listen) >= sizeof(host))
		return -1;
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end || end == colon + 1 || port < 0 || port > 65535)   /* 0: any free port */
		return -1;
	memcpy(host, listen, (size_t)(colon - listen));
	host[colon - listen] = '\0';

	memset(out, 0, sizeof(*out));
	size_t hl = strlen(host);
	if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)out;
		host[hl - 1] = '\0';
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		return inet_pton(AF_INET6, host + 1, &a6->sin6_addr) == 1 ? 0 : -1;
	}
	struct sockaddr_in *a4 = (struct sockaddr_in *)out;
	a4->sin_family = AF_INET;
	a4->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, host, &a4->sin_addr) == 1 ? 0 : -1;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *body,
			     size_t len, const char *type)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body,
								 MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", type);
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* client_auth_type, checked against client_ca_file by gnutls: the
 * handshake asked for a certificate (libmicrohttpd requests one when given
 * a trust list) but lets a client without one through, so it is judged here. */
static bool client_cert_ok(const struct metrics_http *m, struct MHD_Connection *c)
{
	if (!m->web || m->web->client_auth == WEB_CLIENT_NONE)
		return true;
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (!ci || !ci->tls_session)
		return false;
	unsigned status = 0;
	int r = gnutls_certificate_verify_peers2((gnutls_session_t)ci->tls_session, &status);
	if (r == GNUTLS_E_NO_CERTIFICATE_FOUND)
		return m->web->client_auth == WEB_CLIENT_VERIFY_IF_GIVEN;
	return r == GNUTLS_E_SUCCESS && status == 0;
}

/* Called from libmicrohttpd's one thread only: web_config_password_ok's
 * memory of accepted passwords needs no lock. */
static bool password_ok(struct metrics_http *m, struct MHD_Connection *c)
{
	if (!m->web || !m->web->nusers)
		return true;
	char *password = NULL;
	char *user = MHD_basic_auth_get_username_password(c, &password);
	bool ok = user && password && web_config_password_ok(m->web, user, password);
	if (password)
		explicit_bzero(password, strlen(password));
	MHD_free(user);
	MHD_free(password);
	return ok;
}

/* 401 with the challenge, so that a browser or curl asks for a password. */
static enum MHD_Result ask_password(struct MHD_Connection *c)
{
	static const char body[] = "Unauthorized\n";
	struct MHD_Response *r = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body,
								 MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "text/plain");
	enum MHD_Result ret = MHD_queue_basic_auth_fail_response(c, "aioguard", r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result serve(void *cls, struct MHD_Connection *c, const char *url,
			     const char *method, const char *version, const char *upload,
			     size_t *upload_size, void **con_cls)
{
	struct metrics_http *m = cls;
	static const char not_found[] = "aioguard serves /metrics only\n";
	static const char bad_method[] = "only GET and HEAD\n";
	static const char no_cert[] = "a client certificate signed by client_ca_file is needed\n";

	if (!client_cert_ok(m, c))
		return reply(c, MHD_HTTP_FORBIDDEN, no_cert, sizeof(no_cert) - 1, "text/plain");
	if (!password_ok(m, c))
		return ask_password(c);
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, bad_method, sizeof(bad_method) - 1,
			     "text/plain");
	if (*upload_size)   /* a GET with a body: refuse rather than buffer it */
		return reply(c, MHD_HTTP_BAD_REQUEST, "", 0, "text/plain");
	if (strcmp(url, "/metrics"))
		return reply(c, MHD_HTTP_NOT_FOUND, not_found, sizeof(not_found) - 1, "text/plain");

	pthread_mutex_lock(&m->lock);
	struct snapshot *snap = m->snap;
	if (snap)
		__atomic_add_fetch(&snap->refs, 1, __ATOMIC_ACQ_REL);
	pthread_mutex_unlock(&m->lock);
	if (!snap)
		return reply(c, MHD_HTTP_OK, "", 0, CONTENT_TYPE);
	struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback_cls(
		snap->len, snap->text, snapshot_unref, snap);
	if (!r) {
		snapshot_unref(snap);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", CONTENT_TYPE);
	enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* libmicrohttpd's TLS options for a web config; the end marker alone
 * without TLS. The strings stay the web config's. */
static void tls_options(const struct web_config *web, struct MHD_OptionItem *o, unsigned *flags)
{
	size_t n = 0;
	if (web && web->cert_pem) {
		*flags |= MHD_USE_TLS;
		o[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, web->cert_pem};
		o[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, web->key_pem};
		/* exporter-toolkit's default: TLS 1.2 at least */
		o[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
			web->tls13_only ? "NORMAL:-VERS-ALL:+VERS-TLS1.3"
					: "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"};
		if (web->client_ca_pem)
			o[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0,
							 web->client_ca_pem};
	}
	o[n] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
}

struct metrics_http *metrics_http_start(const char *listen, struct web_config *web,
					char *err, size_t errlen)
{
	struct sockaddr_storage addr;
	if (metrics_parse_listen(listen, &addr) < 0) {
		snprintf(err, errlen, "--listen '%s': expected ADDR:PORT or [ADDR]:PORT", listen);
		return NULL;
	}
	struct metrics_http *m = xcalloc(1, sizeof(*m));
	pthread_mutex_init(&m->lock, NULL);
	m->web = web;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL;
	if (addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	struct MHD_OptionItem tls[5];
	tls_options(web, tls, &flags);
	/* Small limits: /metrics needs no big headers, long connections or many
	 * clients. Beyond them libmicrohttpd answers 4xx or drops the client. */
	m->daemon = MHD_start_daemon(flags, 0, accept_policy, m, serve, m,
				     MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
				     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
				     MHD_OPTION_NOTIFY_CONNECTION, count_connection, m,
				     MHD_OPTION_CONNECTION_LIMIT, (unsigned)(MAX_CONNECTIONS + 1),
				     MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)MAX_CONNECTIONS_PER_ADDR,
				     MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024),
				     MHD_OPTION_ARRAY, tls,
				     MHD_OPTION_END);
	if (!m->daemon) {
		snprintf(err, errlen, "cannot listen on %s: %s", listen, strerror(errno ? errno : EADDRINUSE));
		pthread_mutex_destroy(&m->lock);
		free(m);
		return NULL;
	}
	return m;
}

unsigned metrics_http_port(const struct metrics_http *m)
{
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(m->daemon, MHD_DAEMON_INFO_BIND_PORT);
	return info ? info->port : 0;
}

void metrics_http_publish(struct metrics_http *m, const char *text, size_t len)
{
	struct snapshot *snap = xcalloc(1, sizeof(*snap) + len + 1);
	snap->refs = 1;   /* m->snap's own */
	snap->len = len;
	memcpy(snap->text, text, len);
	pthread_mutex_lock(&m->lock);
	struct snapshot *old = m->snap;
	m->snap = snap;
	pthread_mutex_unlock(&m->lock);
	snapshot_unref(old);   /* freed once the last response serving it is gone */
}

void metrics_http_stop(struct metrics_http *m)
{
	if (!m)
		return;
	MHD_stop_daemon(m->daemon);   /* destroys the responses: their references go */
	pthread_mutex_destroy(&m->lock);
	snapshot_unref(m->snap);
	free(m);
}
