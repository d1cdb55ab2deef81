#!/usr/bin/env bash
# The metrics endpoint off loopback, the exporter way: `aioguard run
# --web-config` (exporter-toolkit's format) serves /metrics over TLS with
# basic auth, and a real Prometheus scrapes it with `scheme: https`, the
# CA and a password (then a client certificate too). Certificates are made
# here with openssl, the bcrypt hash with libxcrypt (python3's crypt).
# Checks: the target is up and aioguard's metrics are stored; a wrong or
# missing password gets 401 (and Prometheus' target with a wrong password is
# down, saying 401); plain HTTP to the TLS port gets no HTTP answer;
# RequireAndVerifyClientCert refuses a client without a certificate, or with
# one the CA did not sign; a bad web config stops the agent at start with
# the line at fault.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

command -v prometheus >/dev/null || fail "prometheus not installed (tools/install-deps)"
command -v openssl >/dev/null || fail "openssl not installed (tools/install-deps)"
command -v curl >/dev/null || fail "curl not installed (tools/install-deps)"
need_root
make_workdir
loopfs_make ext4 256
libvirtd_start
source "$(dirname "$0")/agent_lib.sh"

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
diag() {
	echo "--- agent stderr"; tail -c 4000 "$WORKDIR/agent.err"
	echo "--- prometheus log"; tail -20 "$WORKDIR/prometheus.log" 2>/dev/null || true
}

say "certificates (openssl) and a bcrypt hash (libxcrypt)"
T=$WORKDIR/tls
mkdir -p "$T"
(
	cd "$T"
	ssl() { openssl "$@" >/dev/null 2>&1 || fail "openssl $*"; }
	ssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 1 -subj "/CN=aioguard test CA"
	ssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=127.0.0.1"
	printf 'subjectAltName=IP:127.0.0.1\n' >server.ext
	ssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 1 -extfile server.ext
	ssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj "/CN=prometheus"
	ssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 1
	# a client certificate the CA did not sign
	ssl req -x509 -newkey rsa:2048 -nodes -keyout rogue.key -out rogue.crt -days 1 -subj "/CN=rogue"
)
HASH=$(python3 -W ignore -c 'import crypt; print(crypt.crypt("scrape-pw", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1024)))')
[[ $HASH == \$2b\$10\$* ]] || fail "no bcrypt hash from python3's crypt: $HASH"
printf 'scrape-pw' >"$T/password"
printf 'not-the-pw' >"$T/wrong-password"

# relative paths: to the web config's directory, as in exporter-toolkit
cat >"$T/web.yml" <<EOF
tls_server_config:
  cert_file: server.crt
  key_file: server.key
basic_auth_users:
  prometheus: $HASH
EOF
cat >"$T/web-mtls.yml" <<EOF
tls_server_config:
  cert_file: server.crt
  key_file: server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.crt
basic_auth_users:
  prometheus: '$HASH'
EOF

say "a bad web config stops the agent at start, naming the line"
printf 'tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_ca_file: ca.crt\n' >"$T/bad.yml"
rc=0
timeout 60 "$AIOGUARD" run -c "$URI" --listen 127.0.0.1:0 --web-config "$T/bad.yml" \
	--state-dir "$WORKDIR/state" >"$WORKDIR/bad.out" 2>"$WORKDIR/bad.err" || rc=$?
cat "$WORKDIR/bad.err"
[ "$rc" -eq 1 ] || fail "a bad web config: exit $rc, want 1"
grep -qx "aioguard: run: web-config $T/bad.yml:4: client_ca_file without client_auth_type (VerifyClientCertIfGiven or RequireAndVerifyClientCert)" \
	"$WORKDIR/bad.err" || fail "the error does not name bad.yml:4"
! grep -q "^aioguard: attached\|^aioguard: running" "$WORKDIR/bad.err" || fail "BPF attached before the web config was read"

APORT=$(free_port)
MPORT=$(free_port)
PPORT=$(free_port)
[ "$APORT" != "$MPORT" ] && [ "$APORT" != "$PPORT" ] && [ "$MPORT" != "$PPORT" ] || fail "ports collide, run again"
PROM=http://127.0.0.1:$PPORT
URL=https://127.0.0.1:$APORT/metrics

say "a domain, the agent on https://127.0.0.1:$APORT with basic auth"
new_domain
KNOBS=(--interval 2 --threshold-us 200)
run_agent --dry-run --listen "127.0.0.1:$APORT" --web-config "$T/web.yml"
grep -q "^aioguard: metrics on $URL (basic auth)$" "$WORKDIR/agent.err" || { diag; fail "no https line"; }

mkdir -p "$WORKDIR/prometheus-data"
cat >"$WORKDIR/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: aioguard
    scheme: https
    tls_config:
      ca_file: $T/ca.crt
    basic_auth:
      username: prometheus
      password_file: $T/password
    static_configs:
      - targets: ['127.0.0.1:$APORT']
  - job_name: wrong-password
    scheme: https
    tls_config:
      ca_file: $T/ca.crt
    basic_auth:
      username: prometheus
      password_file: $T/wrong-password
    static_configs:
      - targets: ['127.0.0.1:$APORT']
  - job_name: mtls
    scheme: https
    tls_config:
      ca_file: $T/ca.crt
      cert_file: $T/client.crt
      key_file: $T/client.key
    basic_auth:
      username: prometheus
      password_file: $T/password
    static_configs:
      - targets: ['127.0.0.1:$MPORT']
EOF
prometheus --config.file="$WORKDIR/prometheus.yml" --storage.tsdb.path="$WORKDIR/prometheus-data" \
	--web.listen-address="127.0.0.1:$PPORT" --log.level=warn >"$WORKDIR/prometheus.log" 2>&1 &
PROM_PID=$!
at_exit "stop_pid $PROM_PID"

cat >"$WORKDIR/pq.py" <<'PY'
import json, os, sys, time, urllib.parse, urllib.request

PROM = os.environ["PROM"]
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

def query(q):
    with _opener.open(PROM + "/api/v1/query?" + urllib.parse.urlencode({"query": q}), timeout=10) as r:
        body = json.load(r)
    assert body["status"] == "success", body
    return body["data"]["result"]

def targets(job):
    with _opener.open(PROM + "/api/v1/targets", timeout=10) as r:
        return [t for t in json.load(r)["data"]["activeTargets"] if t["labels"]["job"] == job]

def wait_for(what, fn, seconds):
    end, v = time.monotonic() + seconds, None
    while time.monotonic() < end:
        try:
            v = fn()
            if v:
                return v
        except OSError:
            pass
        time.sleep(0.5)
    sys.exit("timed out after %ds waiting for %s (last: %r)" % (seconds, what, v))
PY
pq() { PROM=$PROM PYTHONPATH=$WORKDIR python3 - "$@"; }

say "Prometheus scrapes https + basic auth: up, aioguard's metrics stored"
pq "$DOM" "$("$AIOGUARD" --version)" <<'PY' || { diag; fail "Prometheus over https"; }
import sys, pq
dom, version = sys.argv[1], sys.argv[2]
pq.wait_for("up{job='aioguard'} == 1", lambda: pq.query('up{job="aioguard"} == 1'), 60)
info = pq.wait_for("aioguard_build_info", lambda: pq.query('aioguard_build_info{job="aioguard"}'), 30)
assert info[0]["metric"]["version"] in version, info
rec = pq.wait_for("the domain's recommendations",
                  lambda: pq.query('aioguard_recommended_io_mode{job="aioguard",domain="%s"}' % dom), 30)
assert {r["metric"]["target"] for r in rec} == {"vda", "vdb"}, rec
assert pq.query('aioguard_libvirt_up{job="aioguard"}')[0]["value"][1] == "1"
t = pq.targets("aioguard")[0]
assert t["scrapeUrl"].startswith("https://") and t["health"] == "up", t
print("target %s: %s; aioguard_build_info %s; recommendations for %s: %s" % (
    t["scrapeUrl"], t["health"], info[0]["metric"]["version"], dom,
    ", ".join("%s->%s" % (r["metric"]["target"], r["metric"]["recommended"]) for r in rec)))
# the same target with a wrong password: down, and Prometheus says 401
w = pq.wait_for("the wrong-password target to be scraped",
                lambda: [t for t in pq.targets("wrong-password") if t["lastError"]], 30)[0]
assert w["health"] == "down" and "401" in w["lastError"], w
print("wrong-password target: %s (%s)" % (w["health"], w["lastError"]))
PY

say "curl: right password 200, wrong or missing 401, plain HTTP no answer"
code() { curl -s -o "$WORKDIR/body" -w '%{http_code}' --cacert "$T/ca.crt" "$@" "$URL" || true; }
c=$(code -u prometheus:scrape-pw); [ "$c" = 200 ] || fail "right password: $c"
grep -q '^aioguard_build_info{' "$WORKDIR/body" || fail "no metrics in the 200 answer"
c=$(code -u prometheus:wrong); [ "$c" = 401 ] || fail "wrong password: $c"
c=$(code -u nobody:scrape-pw); [ "$c" = 401 ] || fail "unknown user: $c"
c=$(code); [ "$c" = 401 ] || fail "no password: $c"
! grep -q aioguard_ "$WORKDIR/body" || fail "a 401 answer carries metrics"
hdr=$(curl -s -D - -o /dev/null --cacert "$T/ca.crt" "$URL")
grep -qi '^WWW-Authenticate: Basic realm="aioguard"' <<<"$hdr" || fail "401 without the Basic challenge: $hdr"
echo "right password 200; wrong password, unknown user, no password: 401 with WWW-Authenticate"
python3 - "$APORT" <<'PY' || fail "plain HTTP to the TLS port"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
data = b""
try:
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
except (ConnectionResetError, socket.timeout):
    pass
assert not data.startswith(b"HTTP/") and b"aioguard_" not in data, data[:200]
print("plain HTTP to the TLS port: %d bytes back, no HTTP answer" % len(data))
PY
rc=0
curl -s -o /dev/null "http://127.0.0.1:$APORT/metrics" || rc=$?
[ "$rc" -ne 0 ] || fail "curl over plain HTTP succeeded"
echo "curl http://…: exit $rc"
stop_agent

say "RequireAndVerifyClientCert: no certificate or a rogue one refused; Prometheus with its certificate up"
MURL=https://127.0.0.1:$MPORT/metrics
run_agent --dry-run --listen "127.0.0.1:$MPORT" --web-config "$T/web-mtls.yml"
mcode() { curl -s -o "$WORKDIR/body" -w '%{http_code}' --cacert "$T/ca.crt" -u prometheus:scrape-pw "$@" "$MURL" || true; }
c=$(mcode); [ "$c" = 403 ] || fail "no client certificate: $c"
! grep -q aioguard_ "$WORKDIR/body" || fail "metrics served without a client certificate"
c=$(mcode --cert "$T/rogue.crt" --key "$T/rogue.key"); [ "$c" = 403 ] || fail "a rogue client certificate: $c"
c=$(mcode --cert "$T/client.crt" --key "$T/client.key"); [ "$c" = 200 ] || fail "the client certificate: $c"
c=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$T/ca.crt" --cert "$T/client.crt" --key "$T/client.key" "$MURL" || true)
[ "$c" = 401 ] || fail "a client certificate without the password: $c"
echo "no client certificate 403, rogue certificate 403, signed certificate 200 (without password 401)"
pq <<'PY' || { diag; fail "Prometheus with a client certificate"; }
import pq
pq.wait_for("up{job='mtls'} == 1", lambda: pq.query('up{job="mtls"} == 1'), 60)
pq.wait_for("aioguard_build_info via mtls", lambda: pq.query('aioguard_build_info{job="mtls"}'), 30)
t = pq.targets("mtls")[0]
print("mtls target %s: %s" % (t["scrapeUrl"], t["health"]))
PY
stop_agent
echo "PASS"
