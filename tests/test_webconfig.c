// SPDX-License-Identifier: GPL-2.0-only
/* The web config (exporter-toolkit's format) read from real files in a
 * temporary directory: certificates and keys made by openssl, bcrypt
 * hashes made by libxcrypt. Bad files: one cmocka test per row, each
 * checking the "FILE:LINE: what" the agent would print at start. */
#include <crypt.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "row_tests.h"
#include "webconfig.h"

static char dir[64];
static char hash_y[128], hash_b[128];   /* "alice-pw" as $2y$, "bob-pw" as $2b$ */

static char *path_in_dir(const char *name)
{
	char *p;
	assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

static char *read_text(const char *name)
{
	char *p = path_in_dir(name), *text = NULL;
	size_t len = 0;
	FILE *f = fopen(p, "r");
	assert_non_null(f);
	assert_true(getdelim(&text, &len, '\0', f) > 0);
	fclose(f);
	free(p);
	return text;
}

/* Writes web.yml with @H@ replaced by alice's hash; returns its path. */
static char *write_config(const char *yaml)
{
	char *p = path_in_dir("web.yml");
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	for (const char *s = yaml; *s; s++) {
		if (!strncmp(s, "@H@", 3)) {
			fputs(hash_y, f);
			s += 2;
		} else
			fputc(*s, f);
	}
	assert_int_equal(fclose(f), 0);
	return p;
}

static void make_hash(const char *prefix, const char *password, char *out, size_t size)
{
	struct crypt_data cd = {0};
	const char *salt = crypt_gensalt_rn(prefix, 4, NULL, 0, cd.setting, sizeof(cd.setting));
	assert_non_null(salt);
	const char *h = crypt_r(password, salt, &cd);
	assert_non_null(h);
	assert_int_equal(strlen(h), 60);
	snprintf(out, size, "%s", h);
}

static int openssl(const char *args)
{
	char *cmd;
	if (asprintf(&cmd, "cd '%s' && openssl %s >/dev/null 2>&1", dir, args) < 0)
		return -1;
	int rc = system(cmd);
	free(cmd);
	return rc;
}

/* A CA, a server certificate it signs, a key of another pair, a file that
 * is no PEM at all. */
static int make_files(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/aioguard-webconfig-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	if (openssl("req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 1 -subj /CN=ca") ||
	    openssl("req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=server") ||
	    openssl("x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 1") ||
	    openssl("genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out other.key"))
		return -1;
	char *g = path_in_dir("garbage.pem");
	FILE *f = fopen(g, "w");
	free(g);
	if (!f)
		return -1;
	fputs("this is not PEM\n", f);
	fclose(f);
	make_hash("$2y$", "alice-pw", hash_y, sizeof(hash_y));
	make_hash("$2b$", "bob-pw", hash_b, sizeof(hash_b));
	return 0;
}

static int remove_files(void **state)
{
	char *cmd;
	if (asprintf(&cmd, "rm -rf '%s'", dir) > 0) {
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
		free(cmd);
	}
	return 0;
}

static void full_config_reads_every_file(void **state)
{
	char yaml[1024], err[512] = "";
	char *key = path_in_dir("server.key");
	snprintf(yaml, sizeof(yaml),
		 "# node_exporter's format\n"
		 "tls_server_config:\n"
		 "  cert_file: server.crt\n"
		 "  key_file: %s\n"
		 "  client_auth_type: \"RequireAndVerifyClientCert\"\n"
		 "  client_ca_file: ca.crt\n"
		 "  min_version: TLS13\n"
		 "basic_auth_users:\n"
		 "  alice: @H@\n"
		 "  bob: '%s'\n", key, hash_b);
	char *path = write_config(yaml);
	struct web_config wc;
	assert_int_equal(web_config_load(&wc, path, err, sizeof(err)), 0);
	char *cert = read_text("server.crt"), *k = read_text("server.key"), *ca = read_text("ca.crt");
	assert_string_equal(wc.cert_pem, cert);
	assert_string_equal(wc.key_pem, k);
	assert_string_equal(wc.client_ca_pem, ca);
	assert_int_equal(wc.client_auth, WEB_CLIENT_REQUIRE_AND_VERIFY);
	assert_true(wc.tls13_only);
	assert_int_equal(wc.nusers, 2);
	assert_string_equal(wc.users[0].name, "alice");
	assert_string_equal(wc.users[1].hash, hash_b);
	web_config_free(&wc);
	assert_null(wc.cert_pem);
	free(cert), free(k), free(ca), free(key), free(path);
}

static void empty_files_ask_for_nothing(void **state)
{
	static const char *const texts[] = {
		"", "# nothing\n", "---\n", "tls_server_config:\n", "basic_auth_users: {}\n",
		"tls_server_config:\n  cert_file: ''\n  key_file: ''\n",
	};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		char *path = write_config(texts[i]), err[512] = "";
		struct web_config wc;
		if (web_config_load(&wc, path, err, sizeof(err)) != 0)
			fail_msg("'%s' refused: %s", texts[i], err);
		assert_null(wc.cert_pem);
		assert_null(wc.client_ca_pem);
		assert_int_equal(wc.nusers, 0);
		web_config_free(&wc);
		free(path);
	}
}

static void basic_auth_without_tls(void **state)
{
	char *path = write_config("basic_auth_users:\n  alice: @H@\n"), err[512] = "";
	struct web_config wc;
	assert_int_equal(web_config_load(&wc, path, err, sizeof(err)), 0);
	assert_null(wc.cert_pem);
	assert_int_equal(wc.nusers, 1);
	web_config_free(&wc);
	free(path);
}

static void passwords_checked_by_bcrypt(void **state)
{
	struct web_user users[] = {{.name = "alice", .hash = hash_y}, {.name = "bob", .hash = hash_b}};
	struct web_config wc = {.users = users, .nusers = 2};
	assert_false(users[0].has_accepted);
	assert_true(web_config_password_ok(&wc, "alice", "alice-pw"));
	assert_true(users[0].has_accepted);
	/* remembered: accepted again, and nothing else is */
	assert_true(web_config_password_ok(&wc, "alice", "alice-pw"));
	assert_true(web_config_password_ok(&wc, "bob", "bob-pw"));
	assert_false(web_config_password_ok(&wc, "alice", "bob-pw"));
	assert_false(web_config_password_ok(&wc, "bob", "alice-pw"));
	assert_false(web_config_password_ok(&wc, "alice", "alice-pw "));
	assert_false(web_config_password_ok(&wc, "alice", ""));
	assert_false(web_config_password_ok(&wc, "alic", "alice-pw"));
	assert_false(web_config_password_ok(&wc, "", "alice-pw"));
	assert_false(web_config_password_ok(&wc, "carol", "alice-pw"));
	/* the stored hash itself is no password */
	assert_false(web_config_password_ok(&wc, "alice", hash_y));
}

static void error_leaves_the_config_alone(void **state)
{
	char *path = write_config("basic_auth_users:\n  alice: nope\n"), err[512] = "";
	struct web_config wc = {.nusers = 7};
	assert_int_equal(web_config_load(&wc, path, err, sizeof(err)), -1);
	assert_int_equal(wc.nusers, 7);
	assert_null(wc.users);
	free(path);
}

static void missing_config_file(void **state)
{
	char *path = path_in_dir("absent.yml"), err[512] = "", want[300];
	struct web_config wc;
	assert_int_equal(web_config_load(&wc, path, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: No such file or directory", path);
	assert_string_equal(err, want);
	free(path);
}

static void nul_byte_refused(void **state)
{
	static const char text[] = "basic_auth_users:\n  a\0b: x\n";
	char err[512] = "";
	struct web_config wc;
	assert_int_equal(web_config_parse(&wc, text, sizeof(text) - 1, "w.yml", ".", err, sizeof(err)), -1);
	assert_string_equal(err, "w.yml: contains a NUL byte");
}

/* A bad file and the message after "DIR/web.yml:" (LINE: what). */
struct bad_row {
	const char *name, *yaml, *want;
};

static const struct bad_row bad_rows[] = {
	{"unknown_top_key", "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nlisten: x\n",
	 "4: unknown key 'listen' (tls_server_config, basic_auth_users)"},
	{"misspelt_tls_key", "tls_server_config:\n  cert_file: a\n  certfile: b\n",
	 "3: tls_server_config: unknown key 'certfile'"},
	{"toolkit_key_not_served", "tls_server_config:\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n",
	 "2: tls_server_config: cipher_suites is not supported by aioguard"},
	{"http_server_config", "http_server_config:\n  http2: false\n",
	 "1: http_server_config is not supported by aioguard (HTTP/1.1 only, its own headers)"},
	{"user_twice", "basic_auth_users:\n  alice: @H@\n  alice: @H@\n",
	 "3: basic_auth_users: 'alice' given twice"},
	{"section_twice", "basic_auth_users:\n  alice: @H@\nbasic_auth_users:\n  bob: @H@\n",
	 "3: the file: 'basic_auth_users' given twice"},
	{"unclosed_flow", "basic_auth_users:\n  alice: @H@\ntls_server_config: {cert_file: a\n",
	 "4: not YAML: did not find expected ',' or '}' while parsing a flow mapping"},
	{"tab_indent", "tls_server_config:\n\tcert_file: server.crt\n",
	 "2: not YAML: found character that cannot start any token while scanning for the next token"},
	{"plain_password", "basic_auth_users:\n  alice: secret\n",
	 "2: basic_auth_users: alice: not a bcrypt hash ($2y$ or $2b$, cost 04-31, 60 characters), "
	 "e.g. from 'mkpasswd -m bcrypt' or 'htpasswd -nbB'"},
	{"md5_crypt_hash", "basic_auth_users:\n  alice: $1$abcdefgh$abcdefghijklmnopqrstuv\n",
	 "2: basic_auth_users: alice: not a bcrypt hash"},
	{"truncated_bcrypt", "basic_auth_users:\n  alice: $2y$10$abc\n",
	 "2: basic_auth_users: alice: not a bcrypt hash"},
	{"user_with_colon", "basic_auth_users:\n  'a:b': @H@\n",
	 "2: basic_auth_users: 'a:b' cannot be a user name (empty or with ':')"},
	{"users_as_list", "basic_auth_users:\n  - alice\n",
	 "2: basic_auth_users: expected a mapping of keys to values"},
	{"top_level_list", "- tls_server_config\n",
	 "1: the file: expected a mapping of keys to values"},
	{"tls_as_string", "tls_server_config: yes\n",
	 "1: tls_server_config: expected a mapping of keys to values"},
	{"path_as_mapping", "tls_server_config:\n  cert_file:\n    path: a\n",
	 "3: cert_file: expected a string"},
	{"cert_without_key", "tls_server_config:\n  cert_file: server.crt\n",
	 "2: tls_server_config: key_file is missing"},
	{"key_without_cert", "tls_server_config:\n  key_file: server.key\n",
	 "2: tls_server_config: cert_file is missing"},
	{"cert_file_absent", "tls_server_config:\n  cert_file: absent.crt\n  key_file: server.key\n",
	 "2: cert_file @D@/absent.crt: No such file or directory"},
	{"cert_file_a_directory", "tls_server_config:\n  cert_file: .\n  key_file: server.key\n",
	 "2: cert_file @D@/.: not a regular file of 1 byte to 1 MiB"},
	{"key_of_another_pair", "tls_server_config:\n  cert_file: server.crt\n  key_file: other.key\n",
	 "3: cert_file and key_file: The certificate and the given key do not match."},
	{"cert_not_pem", "tls_server_config:\n  cert_file: garbage.pem\n  key_file: server.key\n",
	 "3: cert_file and key_file: "},
	{"ca_not_pem", "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
	 "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: garbage.pem\n",
	 "5: client_ca_file: "},
	{"ca_without_auth_type", "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
	 "  client_ca_file: ca.crt\n",
	 "4: client_ca_file without client_auth_type (VerifyClientCertIfGiven or RequireAndVerifyClientCert)"},
	{"auth_type_without_ca", "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
	 "  client_auth_type: VerifyClientCertIfGiven\n",
	 "4: client_auth_type needs client_ca_file (the CA that signs the clients' certificates)"},
	{"client_cert_without_tls", "tls_server_config:\n  client_auth_type: RequireAndVerifyClientCert\n"
	 "  client_ca_file: ca.crt\n",
	 "3: client certificates need TLS: cert_file and key_file are missing"},
	{"unverified_client_cert", "tls_server_config:\n  client_auth_type: RequireAnyClientCert\n",
	 "2: client_auth_type: RequireAnyClientCert (a client certificate nobody verifies) is not supported"},
	{"unknown_auth_type", "tls_server_config:\n  client_auth_type: Always\n",
	 "2: client_auth_type: 'Always' is not NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert"},
	{"tls11", "tls_server_config:\n  min_version: TLS11\n",
	 "2: min_version: TLS11 is not offered by aioguard (TLS 1.2 at least)"},
	{"two_documents", "basic_auth_users:\n  alice: @H@\n---\nbasic_auth_users: {}\n",
	 "4: a second YAML document: one is expected"},
};

static void bad_row(void **state)
{
	const struct bad_row *r = *state;
	char *path = write_config(r->yaml), err[1024] = "", want[1024];
	struct web_config wc;
	assert_int_equal(web_config_load(&wc, path, err, sizeof(err)), -1);
	/* @D@: the directory the config is in */
	const char *d = strstr(r->want, "@D@");
	int n = d ? snprintf(want, sizeof(want), "%s:%.*s%s%s", path, (int)(d - r->want), r->want, dir, d + 3)
		  : snprintf(want, sizeof(want), "%s:%s", path, r->want);
	assert_true(n > 0 && (size_t)n < sizeof(want));
	if (strncmp(err, want, strlen(want)))
		fail_msg("got  '%s'\nwant '%s…'", err, want);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(full_config_reads_every_file),
		cmocka_unit_test(empty_files_ask_for_nothing),
		cmocka_unit_test(basic_auth_without_tls),
		cmocka_unit_test(passwords_checked_by_bcrypt),
		cmocka_unit_test(error_leaves_the_config_alone),
		cmocka_unit_test(missing_config_file),
		cmocka_unit_test(nul_byte_refused),
	};
	void *st = NULL;
	if (make_files(&st) < 0) {
		fprintf(stderr, "cannot make certificates with openssl in %s\n", dir);
		remove_files(&st);
		return 1;
	}
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	failed += RUN_ROW_TESTS("bad web configs", bad_row, bad_rows);
	remove_files(&st);
	return failed;
}
