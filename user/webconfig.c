// SPDX-License-Identifier: GPL-2.0-only
#include "webconfig.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <yaml.h>

#include "util.h"

#define WEB_CONFIG_MAX_BYTES (1 << 20)
#define PEM_MAX_BYTES (1 << 20)

/* Where parsing stands: the document, the file's name and directory, the
 * first error (the rest is not looked at). */
struct parse {
	yaml_document_t *doc;
	const char *name, *dir;
	char *err;
	size_t errlen;
	bool failed;
	struct web_config out;
	/* what the TLS block named, with the line of each for messages */
	char *cert_file, *key_file, *ca_file;
	unsigned cert_line, key_line, ca_line, auth_line;
	bool auth_given;
};

__attribute__((format(printf, 3, 4)))
static void fail_at(struct parse *p, unsigned line, const char *fmt, ...)
{
	if (p->failed)
		return;
	p->failed = true;
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (char *c = msg; *c; c++)   /* a key may hold a newline: one line */
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = ' ';
	if (line)
		snprintf(p->err, p->errlen, "%s:%u: %s", p->name, line, msg);
	else
		snprintf(p->err, p->errlen, "%s: %s", p->name, msg);
}

static unsigned line_of(const yaml_node_t *n)
{
	return (unsigned)n->start_mark.line + 1;
}

/* YAML's null: an empty or ~/null plain scalar ("key:" with nothing after). */
static bool is_null(const yaml_node_t *n)
{
	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	const char *v = (const char *)n->data.scalar.value;
	return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
	       !strcmp(v, "NULL");
}

static const char *scalar(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

/* A string value: a scalar without a NUL inside; NULL (and an error) else. */
static const char *string_value(struct parse *p, const char *key, const yaml_node_t *v)
{
	if (v->type != YAML_SCALAR_NODE) {
		fail_at(p, line_of(v), "%s: expected a string", key);
		return NULL;
	}
	if (strlen(scalar(v)) != v->data.scalar.length) {
		fail_at(p, line_of(v), "%s: contains a NUL byte", key);
		return NULL;
	}
	return scalar(v);
}

/* Calls each(p, key, key_node, value_node) for every pair of a mapping,
 * refusing a key given twice. A null value counts as an empty mapping. */
typedef void (*pair_fn)(struct parse *p, const char *key, const yaml_node_t *k,
			const yaml_node_t *v);

static void each_pair(struct parse *p, const char *what, const yaml_node_t *map, pair_fn each)
{
	if (is_null(map))
		return;
	if (map->type != YAML_MAPPING_NODE) {
		fail_at(p, line_of(map), "%s: expected a mapping of keys to values", what);
		return;
	}
	for (yaml_node_pair_t *a = map->data.mapping.pairs.start;
	     a < map->data.mapping.pairs.top && !p->failed; a++) {
		const yaml_node_t *k = yaml_document_get_node(p->doc, a->key);
		const yaml_node_t *v = yaml_document_get_node(p->doc, a->value);
		if (k->type != YAML_SCALAR_NODE) {
			fail_at(p, line_of(k), "%s: a key must be a string", what);
			return;
		}
		for (yaml_node_pair_t *b = map->data.mapping.pairs.start; b < a; b++)
			if (!strcmp(scalar(yaml_document_get_node(p->doc, b->key)), scalar(k))) {
				fail_at(p, line_of(k), "%s: '%s' given twice", what, scalar(k));
				return;
			}
		each(p, scalar(k), k, v);
	}
}

/* Keys of exporter-toolkit that aioguard does not serve: refused by name,
 * so the operator knows the setting exists but is not applied here. */
static bool toolkit_key(const char *key, const char *const *known)
{
	for (; *known; known++)
		if (!strcmp(key, *known))
			return true;
	return false;
}

static void set_path(struct parse *p, const char *key, const yaml_node_t *v, char **dst,
		     unsigned *line)
{
	const char *s = string_value(p, key, v);
	if (!s)
		return;
	free(*dst);
	*dst = *s ? xstrdup(s) : NULL;   /* "" as in the toolkit: not given */
	*line = line_of(v);
}

static void set_client_auth(struct parse *p, const yaml_node_t *v)
{
	const char *s = string_value(p, "client_auth_type", v);
	if (!s)
		return;
	p->auth_line = line_of(v);
	p->auth_given = *s != '\0';
	if (!*s || !strcmp(s, "NoClientCert"))
		p->out.client_auth = WEB_CLIENT_NONE;
	else if (!strcmp(s, "VerifyClientCertIfGiven"))
		p->out.client_auth = WEB_CLIENT_VERIFY_IF_GIVEN;
	else if (!strcmp(s, "RequireAndVerifyClientCert"))
		p->out.client_auth = WEB_CLIENT_REQUIRE_AND_VERIFY;
	else if (!strcmp(s, "RequestClientCert") || !strcmp(s, "RequireAnyClientCert") ||
		 !strcmp(s, "RequireClientCert"))
		fail_at(p, line_of(v), "client_auth_type: %s (a client certificate nobody verifies) "
			"is not supported by aioguard: use VerifyClientCertIfGiven or "
			"RequireAndVerifyClientCert with client_ca_file", s);
	else
		fail_at(p, line_of(v), "client_auth_type: '%s' is not NoClientCert, "
			"VerifyClientCertIfGiven or RequireAndVerifyClientCert", s);
}

static void set_min_version(struct parse *p, const yaml_node_t *v)
{
	const char *s = string_value(p, "min_version", v);
	if (!s)
		return;
	if (!*s || !strcmp(s, "TLS12"))
		p->out.tls13_only = false;
	else if (!strcmp(s, "TLS13"))
		p->out.tls13_only = true;
	else if (!strcmp(s, "TLS10") || !strcmp(s, "TLS11"))
		fail_at(p, line_of(v), "min_version: %s is not offered by aioguard (TLS 1.2 at least)", s);
	else
		fail_at(p, line_of(v), "min_version: '%s' is not TLS12 or TLS13", s);
}

static void tls_pair(struct parse *p, const char *key, const yaml_node_t *k, const yaml_node_t *v)
{
	static const char *const not_served[] = {
		"cert", "key", "client_ca", "max_version", "cipher_suites", "curve_preferences",
		"prefer_server_cipher_suites", "client_allowed_sans", NULL,
	};
	if (!strcmp(key, "cert_file"))
		set_path(p, key, v, &p->cert_file, &p->cert_line);
	else if (!strcmp(key, "key_file"))
		set_path(p, key, v, &p->key_file, &p->key_line);
	else if (!strcmp(key, "client_ca_file"))
		set_path(p, key, v, &p->ca_file, &p->ca_line);
	else if (!strcmp(key, "client_auth_type"))
		set_client_auth(p, v);
	else if (!strcmp(key, "min_version"))
		set_min_version(p, v);
	else if (toolkit_key(key, not_served))
		fail_at(p, line_of(k), "tls_server_config: %s is not supported by aioguard", key);
	else
		fail_at(p, line_of(k), "tls_server_config: unknown key '%s'", key);
}

/* bcrypt as crypt(3) writes it: $2a$, $2b$ or $2y$, a two-digit cost from
 * 04 to 31, 53 characters of bcrypt's base64. */
static bool is_bcrypt(const char *h)
{
	static const char b64[] = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	if (strlen(h) != 60 || h[0] != '$' || h[1] != '2' || !strchr("aby", h[2]) || h[3] != '$' ||
	    h[6] != '$' || h[4] < '0' || h[4] > '3' || h[5] < '0' || h[5] > '9')
		return false;
	int cost = (h[4] - '0') * 10 + (h[5] - '0');
	if (cost < 4 || cost > 31)
		return false;
	return strspn(h + 7, b64) == 53 && crypt_checksalt(h) == CRYPT_SALT_OK;
}

static void user_pair(struct parse *p, const char *key, const yaml_node_t *k, const yaml_node_t *v)
{
	if (!*key || strchr(key, ':')) {
		fail_at(p, line_of(k), "basic_auth_users: '%s' cannot be a user name (empty or with ':')",
			key);
		return;
	}
	const char *hash = string_value(p, key, v);
	if (!hash)
		return;
	if (!is_bcrypt(hash)) {
		fail_at(p, line_of(v), "basic_auth_users: %s: not a bcrypt hash ($2y$ or $2b$, cost "
			"04-31, 60 characters), e.g. from 'mkpasswd -m bcrypt' or 'htpasswd -nbB'", key);
		return;
	}
	struct web_config *o = &p->out;
	o->users = xrealloc(o->users, (o->nusers + 1) * sizeof(*o->users));
	o->users[o->nusers++] = (struct web_user){.name = xstrdup(key), .hash = xstrdup(hash)};
}

static void top_pair(struct parse *p, const char *key, const yaml_node_t *k, const yaml_node_t *v)
{
	if (!strcmp(key, "tls_server_config"))
		each_pair(p, key, v, tls_pair);
	else if (!strcmp(key, "basic_auth_users"))
		each_pair(p, key, v, user_pair);
	else if (!strcmp(key, "http_server_config"))
		fail_at(p, line_of(k), "http_server_config is not supported by aioguard "
			"(HTTP/1.1 only, its own headers)");
	else
		fail_at(p, line_of(k), "unknown key '%s' (tls_server_config, basic_auth_users)", key);
}

/* The file a TLS setting names, whole, relative to the config's directory. */
static char *read_named_file(struct parse *p, const char *key, const char *path, unsigned line)
{
	char *full = path[0] == '/' ? xstrdup(path) : xasprintf("%s/%s", p->dir, path);
	char *text = NULL;
	struct stat st;
	int fd = open(full, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		fail_at(p, line, "%s %s: %s", key, full, strerror(errno));
	else if (!S_ISREG(st.st_mode) || st.st_size > PEM_MAX_BYTES || st.st_size == 0)
		fail_at(p, line, "%s %s: not a regular file of 1 byte to 1 MiB", key, full);
	else {
		text = xcalloc(1, (size_t)st.st_size + 1);
		if (read(fd, text, (size_t)st.st_size) != st.st_size) {
			fail_at(p, line, "%s %s: short read", key, full);
			free(text);
			text = NULL;
		}
	}
	if (fd >= 0)
		close(fd);
	free(full);
	return text;
}

/* What libmicrohttpd will hand gnutls, checked now so that a bad
 * certificate or key is refused at start with the line that named it. */
static void check_pem(struct parse *p)
{
	gnutls_certificate_credentials_t cred;
	if (gnutls_certificate_allocate_credentials(&cred) < 0) {
		fail_at(p, 0, "gnutls: cannot allocate credentials");
		return;
	}
	gnutls_datum_t cert = {(unsigned char *)p->out.cert_pem, (unsigned)strlen(p->out.cert_pem)};
	gnutls_datum_t key = {(unsigned char *)p->out.key_pem, (unsigned)strlen(p->out.key_pem)};
	int r = gnutls_certificate_set_x509_key_mem2(cred, &cert, &key, GNUTLS_X509_FMT_PEM, NULL, 0);
	if (r < 0)
		fail_at(p, p->key_line, "cert_file and key_file: %s (PEM certificate and the "
			"unencrypted PEM key that goes with it)", gnutls_strerror(r));
	if (p->out.client_ca_pem) {
		gnutls_datum_t ca = {(unsigned char *)p->out.client_ca_pem,
				     (unsigned)strlen(p->out.client_ca_pem)};
		r = gnutls_certificate_set_x509_trust_mem(cred, &ca, GNUTLS_X509_FMT_PEM);
		if (r <= 0)
			fail_at(p, p->ca_line, "client_ca_file: %s", r < 0 ? gnutls_strerror(r) :
				"no PEM certificate in it");
	}
	gnutls_certificate_free_credentials(cred);
}

/* The toolkit's rules between the TLS keys, then the files they name. */
static void finish_tls(struct parse *p)
{
	if (!p->cert_file && !p->key_file) {
		if (p->ca_file || p->out.client_auth != WEB_CLIENT_NONE)
			fail_at(p, p->ca_file ? p->ca_line : p->auth_line,
				"client certificates need TLS: cert_file and key_file are missing");
		return;
	}
	if (!p->cert_file || !p->key_file) {
		fail_at(p, p->cert_file ? p->cert_line : p->key_line,
			"tls_server_config: %s is missing", p->cert_file ? "key_file" : "cert_file");
		return;
	}
	if (p->ca_file && p->out.client_auth == WEB_CLIENT_NONE) {
		fail_at(p, p->ca_line, "client_ca_file without client_auth_type "
			"(VerifyClientCertIfGiven or RequireAndVerifyClientCert)");
		return;
	}
	if (!p->ca_file && p->out.client_auth != WEB_CLIENT_NONE) {
		fail_at(p, p->auth_line, "client_auth_type needs client_ca_file (the CA that "
			"signs the clients' certificates)");
		return;
	}
	p->out.cert_pem = read_named_file(p, "cert_file", p->cert_file, p->cert_line);
	if (!p->failed)
		p->out.key_pem = read_named_file(p, "key_file", p->key_file, p->key_line);
	if (!p->failed && p->ca_file)
		p->out.client_ca_pem = read_named_file(p, "client_ca_file", p->ca_file, p->ca_line);
	if (!p->failed)
		check_pem(p);
}

/* One YAML document, a mapping at the top (an empty file: no TLS, no auth). */
static void parse_document(struct parse *p, yaml_parser_t *parser)
{
	yaml_document_t doc;
	if (!yaml_parser_load(parser, &doc)) {
		fail_at(p, (unsigned)parser->problem_mark.line + 1, "not YAML: %s%s%s",
			parser->problem ? parser->problem : "unreadable",
			parser->context ? " " : "", parser->context ? parser->context : "");
		return;
	}
	p->doc = &doc;
	const yaml_node_t *root = yaml_document_get_root_node(&doc);
	if (root)
		each_pair(p, "the file", root, top_pair);
	yaml_document_delete(&doc);
	if (p->failed || !root)
		return;
	yaml_document_t next;
	if (!yaml_parser_load(parser, &next))
		fail_at(p, (unsigned)parser->problem_mark.line + 1, "not YAML: %s",
			parser->problem ? parser->problem : "unreadable");
	else {
		if (yaml_document_get_root_node(&next))
			fail_at(p, (unsigned)yaml_document_get_root_node(&next)->start_mark.line + 1,
				"a second YAML document: one is expected");
		yaml_document_delete(&next);
	}
}

int web_config_parse(struct web_config *wc, const char *text, size_t len, const char *name,
		     const char *dir, char *err, size_t errlen)
{
	struct parse p = {.name = name, .dir = dir, .err = err, .errlen = errlen};
	yaml_parser_t parser;

	if (memchr(text, '\0', len))
		fail_at(&p, 0, "contains a NUL byte");
	else if (!yaml_parser_initialize(&parser))
		fail_at(&p, 0, "cannot start the YAML parser");
	else {
		yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
		parse_document(&p, &parser);
		yaml_parser_delete(&parser);
	}
	if (!p.failed)
		finish_tls(&p);
	free(p.cert_file);
	free(p.key_file);
	free(p.ca_file);
	if (p.failed) {
		web_config_free(&p.out);
		return -1;
	}
	*wc = p.out;
	return 0;
}

int web_config_load(struct web_config *wc, const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf = NULL;
	int rc = -1;

	if (fd < 0 || fstat(fd, &st) < 0)
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
	else if (!S_ISREG(st.st_mode) || st.st_size > WEB_CONFIG_MAX_BYTES)
		snprintf(err, errlen, "%s: not a regular file of at most 1 MiB", path);
	else {
		buf = xcalloc(1, (size_t)st.st_size + 1);
		if (read(fd, buf, (size_t)st.st_size) != st.st_size)
			snprintf(err, errlen, "%s: short read", path);
		else {
			char *slash = strrchr(path, '/');
			char *dir = slash ? xasprintf("%.*s", (int)(slash - path), path) : xstrdup(".");
			if (slash == path)
				dir[0] = '/', dir[1] = '\0';
			rc = web_config_parse(wc, buf, (size_t)st.st_size, path, dir, err, errlen);
			free(dir);
		}
	}
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}

void web_config_free(struct web_config *wc)
{
	free(wc->cert_pem);
	free(wc->key_pem);
	free(wc->client_ca_pem);
	for (size_t i = 0; i < wc->nusers; i++) {
		free(wc->users[i].name);
		free(wc->users[i].hash);
	}
	free(wc->users);
	*wc = (struct web_config){0};
}

/* Equal strings, in a time that depends on the stored hash's length only. */
static bool same_secret(const char *given, const char *stored)
{
	size_t n = strlen(stored), g = strlen(given);
	unsigned char diff = (unsigned char)(g != n);
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)(stored[i] ^ (i < g ? given[i] : 0));
	return diff == 0;
}

/* SHA-256 of the stored hash and a password: what is remembered of a
 * password once accepted. */
static void accepted_digest(const char *hash, const char *password, unsigned char out[32])
{
	size_t hl = strlen(hash), pl = strlen(password);
	char *buf = xcalloc(1, hl + 1 + pl);
	memcpy(buf, hash, hl);
	memcpy(buf + hl + 1, password, pl);
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, buf, hl + 1 + pl, out) < 0)
		memset(out, 0, 32);
	explicit_bzero(buf, hl + 1 + pl);
	free(buf);
}

static bool same_digest(const unsigned char *a, const unsigned char *b)
{
	unsigned char diff = 0;
	for (size_t i = 0; i < 32; i++)
		diff |= a[i] ^ b[i];
	return diff == 0;
}

bool web_config_password_ok(struct web_config *wc, const char *user, const char *password)
{
	/* A valid hash of no password anyone has, cost 10 as the usual ones:
	 * an unknown user is checked against it, as long as a known one. */
	static const char dummy[] = "$2y$10$KgqAVJ17KQ6Zr.IXwsVsxOhtxoA5emF8rCvzkwXCyBxc/.JMf8cO6";
	struct web_user *u = NULL;
	for (size_t i = 0; i < wc->nusers; i++)
		if (!strcmp(wc->users[i].name, user))
			u = &wc->users[i];
	const char *hash = u ? u->hash : dummy;
	unsigned char digest[32];
	accepted_digest(hash, password, digest);
	if (u && u->has_accepted && same_digest(digest, u->accepted))
		return true;
	struct crypt_data *cd = xcalloc(1, sizeof(*cd));   /* 32 KiB: not on the stack */
	const char *got = crypt_r(password, hash, cd);
	bool ok = got && got[0] != '*' && same_secret(got, hash) && u;
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	if (ok) {
		memcpy(u->accepted, digest, sizeof(digest));
		u->has_accepted = true;
	}
	return ok;
}
