/* SPDX-License-Identifier: GPL-2.0-only */
/* The metrics endpoint's web configuration, in the format of Prometheus'
 * exporter-toolkit (the --web.config.file of node_exporter and the other
 * exporters), so one file serves every exporter on a host:
 *
 *   tls_server_config:
 *     cert_file: server.crt          # relative paths: to the file's directory
 *     key_file: server.key
 *     client_auth_type: RequireAndVerifyClientCert
 *     client_ca_file: ca.crt
 *     min_version: TLS12             # TLS12 (default) or TLS13
 *   basic_auth_users:
 *     prometheus: $2y$10$…           # bcrypt hashes only
 *
 * Every key the toolkit knows and aioguard does not serve, and every key
 * it does not know, is refused: a setting silently ignored would be a
 * security setting not applied. */
#ifndef AIOGUARD_WEBCONFIG_H
#define AIOGUARD_WEBCONFIG_H

#include <stdbool.h>
#include <stddef.h>

enum web_client_auth {
	WEB_CLIENT_NONE,                /* NoClientCert (the default) */
	WEB_CLIENT_VERIFY_IF_GIVEN,     /* VerifyClientCertIfGiven */
	WEB_CLIENT_REQUIRE_AND_VERIFY,  /* RequireAndVerifyClientCert */
};

struct web_user {
	char *name, *hash;              /* hash: bcrypt, $2a$/$2b$/$2y$ */
	/* SHA-256 of hash and the password last accepted: a scrape every few
	 * seconds then costs no bcrypt run (~110 ms at cost 10 here) */
	unsigned char accepted[32];
	bool has_accepted;
};

struct web_config {
	/* TLS: all NULL when the file asks for none (plain HTTP). The PEM
	 * texts are read at load: privileges are dropped before serving. */
	char *cert_pem, *key_pem, *client_ca_pem;
	enum web_client_auth client_auth;
	bool tls13_only;                /* min_version: TLS13 */
	struct web_user *users;         /* basic_auth_users; none: no auth */
	size_t nusers;
};

/* Parse the YAML text of a web config file named name (for messages),
 * whose relative paths resolve against dir, and read the files it names.
 * 0, or -1 with "NAME:LINE: what" in err and *wc untouched. */
int web_config_parse(struct web_config *wc, const char *text, size_t len, const char *name,
		     const char *dir, char *err, size_t errlen);

/* Read and parse the file at path; as web_config_parse. */
int web_config_load(struct web_config *wc, const char *path, char *err, size_t errlen);

void web_config_free(struct web_config *wc);

/* Does user/password match an entry of basic_auth_users? bcrypt through
 * libxcrypt, compared in constant time; an unknown user costs a bcrypt
 * run all the same, so timing tells no user names. The password a user
 * was last accepted with is remembered (as a digest) and accepted again
 * without bcrypt. Not thread-safe: one caller at a time. */
bool web_config_password_ok(struct web_config *wc, const char *user, const char *password);

#endif
