#!/usr/bin/env bash
# The dashboard feed end to end: a real Prometheus (own config, storage and
# port in WORKDIR, loopback only) scrapes `aioguard run --listen` while
# extending writes stall the sparse vda of a running QEMU domain. Checks what
# Prometheus stored (stall counter, pool waits apart from stalls, histogram,
# libvirt_up, build info, hooks, recommendation, the per-disk decision),
# evaluates the alert and recording rules, asks every query of the Grafana
# dashboard, lints a real scrape with promtool and counts the busy disk's
# series, checks the JSON-lines stream, and that malformed, hostile or slow
# HTTP clients neither crash the agent nor hold up scrapes or its windows.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
SRCDIR=$(cd "$(dirname "$0")/../.." && pwd)
CONTRIB=$SRCDIR/contrib

command -v prometheus >/dev/null && command -v promtool >/dev/null ||
	fail "prometheus/promtool not installed (tools/install-deps)"

# promtool's checks of the rules and the dashboard's JSON: the contrib test
# (tests/contrib_check.sh); here both rule files run in a real Prometheus and
# every dashboard query is asked of it.
need_root
make_workdir
loopfs_make ext4 1024
libvirtd_start
source "$(dirname "$0")/agent_lib.sh"

# agent_lib.sh's writer, but one whole 64 KiB qcow2 cluster every 256 KiB:
# each write still extends the image (block allocation inside io_submit),
# and the 1 GiB loop filesystem does not fill up during this longer test
# (at most 500 MiB before the offsets wrap).
drive_writes() {
	local off=0
	while [ ! -e "$WORKDIR/stop-writes" ]; do
		qemu_io_if_running "$DOM" 0 "aio_write -P 7 ${off}k 64k" >/dev/null 2>&1 || true
		off=$(((off + 256) % (2000 * 1024)))
	done
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

APORT=$(free_port)
PPORT=$(free_port)
[ "$APORT" != "$PPORT" ] || PPORT=$(free_port)
METRICS=http://127.0.0.1:$APORT/metrics
PROM=http://127.0.0.1:$PPORT

# Python helpers for every check below: Prometheus' HTTP API and raw scrapes.
cat >"$WORKDIR/pq.py" <<'PY'
import json, os, sys, time, urllib.parse, urllib.request

PROM = os.environ["PROM"]
METRICS = os.environ["METRICS"]
DOM = os.environ["DOM"]
# loopback only: never through a proxy from the environment
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

def get(url, timeout=10):
    return _opener.open(url, timeout=timeout)

def query(q, at=None):
    args = {"query": q}
    if at is not None:
        args["time"] = "%.3f" % at
    url = PROM + "/api/v1/query?" + urllib.parse.urlencode(args)
    with get(url) as r:
        body = json.load(r)
    assert body["status"] == "success", body
    return body["data"]["result"]

def scalar(q, at=None):
    r = query(q, at)
    return float(r[0]["value"][1]) if r else None

def wait_for(q, cond, seconds, what):
    end = time.monotonic() + seconds
    v = None
    while time.monotonic() < end:
        v = scalar(q)
        if v is not None and cond(v):
            return v
        time.sleep(0.5)
    sys.exit("timed out after %ds waiting for %s (last: %s = %s)" % (seconds, what, q, v))

def scrape(timeout=5):
    with get(METRICS, timeout) as r:
        assert r.status == 200, r.status
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers
        return r.read().decode()
PY
pq() { PROM=$PROM METRICS=$METRICS DOM=$DOM PYTHONPATH=$WORKDIR python3 - "$@"; }
# what the agent and Prometheus said, for a failure
diag() {
	echo "--- agent stderr"; head -c 6000 "$WORKDIR/agent.err"
	echo "--- audit log"; tail -c 3000 "$WORKDIR/audit.jsonl" 2>/dev/null || true
	echo "--- prometheus log"; tail -20 "$WORKDIR/prometheus.log" 2>/dev/null || true
}

say "a domain with a sparse vda, the agent on 127.0.0.1:$APORT, Prometheus on 127.0.0.1:$PPORT"
new_domain
run_agent --dry-run --include "$DOM" --listen "127.0.0.1:$APORT" --events "$WORKDIR/events.jsonl"
pq <<'PY' || { diag; fail "the agent does not serve /metrics"; }
import time, pq
for _ in range(100):
    try:
        pq.scrape(timeout=2)
        break
    except OSError:
        time.sleep(0.2)
else:
    raise SystemExit("no answer on " + pq.METRICS)
PY

mkdir -p "$WORKDIR/prometheus-data"
cat >"$WORKDIR/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $CONTRIB/aioguard-alerts.yml
  - $CONTRIB/aioguard-rules.yml
scrape_configs:
  - job_name: aioguard
    static_configs:
      - targets: ['127.0.0.1:$APORT']
EOF
prometheus --config.file="$WORKDIR/prometheus.yml" --storage.tsdb.path="$WORKDIR/prometheus-data" \
	--web.listen-address="127.0.0.1:$PPORT" --log.level=warn >"$WORKDIR/prometheus.log" 2>&1 &
PROM_PID=$!
at_exit "stop_pid $PROM_PID"
pq <<'PY' || { diag; fail "Prometheus did not come up or scrape the agent"; }
import time, pq
for _ in range(150):
    try:
        with pq.get(pq.PROM + "/-/ready", timeout=2) as r:
            if r.status == 200:
                break
    except OSError:
        pass
    time.sleep(0.2)
pq.wait_for('up{job="aioguard"}', lambda v: v == 1, 30, "a successful scrape")
PY

say "extending writes into vda: the stall counter must rise in Prometheus"
base=$(pq <<'PY'
import pq
print(pq.scalar('sum(aioguard_stalls_total{domain="%s",target="vda"})' % pq.DOM) or 0)
PY
)
start_writes
pq "$base" <<'PY' || { diag; fail "the stall counter did not rise"; }
import sys, pq
base = float(sys.argv[1])
q = 'sum(aioguard_stalls_total{domain="%s",target="vda"})' % pq.DOM
v = pq.wait_for(q, lambda v: v >= base + 5, 90, "5 more stalls on vda")
print("stalls on %s/vda: %g -> %g" % (pq.DOM, base, v))
pq.wait_for('sum(aioguard_decisions_total{action="switch",result="dry-run"})', lambda v: v >= 1, 60,
            "a dry-run switch decision")
PY

say "what Prometheus stored"
pq "$LOOP_MNT/sparse.qcow2" "$("$AIOGUARD" --version)" <<'PY' || fail "Prometheus' view of the agent"
import json, sys, time, pq
dom, image, version = pq.DOM, sys.argv[1], sys.argv[2]

r = pq.query('increase(aioguard_stalls_total{domain="%s",target="vda"}[30s]) > 0' % dom)
assert r, "no vda series with stalls increasing over 30s"
for s in r:
    m = s["metric"]
    assert m["domain"] == dom and m["target"] == "vda" and m["source"] == image, m
    assert m["io_mode"] == "native" and m["job"] == "aioguard", m
    print("PromQL increase(aioguard_stalls_total{domain=%r,target=\"vda\"}[30s]) > 0 -> %s %s"
          % (dom, m["syscall"], s["value"][1]))
assert not pq.query('aioguard_stalls_total{domain="%s",target="vdb",source!~".*prealloc.raw"}' % dom)

# A stall is one thing: on io=native only io_submit is a stall; the pool's
# fdatasync (qcow2 flushes while the image grows) is a pool wait, apart.
stalls = pq.query('aioguard_stalls_total{domain="%s"}' % dom)
assert stalls and all(s["metric"]["syscall"] == "io_submit" and s["metric"]["guest_blocking"] == "true"
                      for s in stalls), [s["metric"] for s in stalls]
pool = pq.query('aioguard_pool_waits_total{domain="%s",target="vda"}' % dom)
assert all(s["metric"]["guest_blocking"] == "false" and
           s["metric"]["syscall"] not in ("io_submit", "io_uring_enter") for s in pool), pool
assert any(s["metric"]["syscall"] == "fdatasync" for s in pool), \
    "no fdatasync series among the pool waits of the growing vda: %s" % [s["metric"] for s in pool]
print("stalls (io_submit) on vda: %s; pool waits on vda: %s" % (
    sum(float(s["value"][1]) for s in stalls if s["metric"]["target"] == "vda"),
    ", ".join("%s %s" % (s["metric"]["syscall"], s["value"][1]) for s in pool)))
# the README's example queries answer
for q in ('sum by (instance, domain, target) (rate(aioguard_stalls_total{io_mode="native"}[5m]))',
          'histogram_quantile(0.99, sum by (instance, domain, target, le) (rate('
          'aioguard_submit_duration_seconds_bucket{guest_blocking="true"}[5m])))',
          'sum by (instance, domain, target, syscall) (rate(aioguard_pool_waits_total[5m]))'):
    r = [x for x in pq.query(q) if x["metric"].get("domain") == dom and x["metric"].get("target") == "vda"]
    assert r, ("README query has no answer for vda", q)
    print("README query %s… -> %s" % (q[:60], ", ".join(x["value"][1] for x in r)))

# _count == +Inf bucket, buckets cumulative, for every series, at one instant
at = time.time() - 1
key = lambda m: tuple(sorted((k, v) for k, v in m.items() if k not in ("__name__", "le")))
counts = {key(s["metric"]): float(s["value"][1])
          for s in pq.query("aioguard_submit_duration_seconds_count", at)}
buckets = {}
for s in pq.query("aioguard_submit_duration_seconds_bucket", at):
    buckets.setdefault(key(s["metric"]), []).append((float(s["metric"]["le"]), float(s["value"][1])))
assert counts and set(counts) == set(buckets), (len(counts), len(buckets))
for k, c in counts.items():
    b = sorted(buckets[k])
    assert b[-1][0] == float("inf") and b[-1][1] == c, (k, b[-1], c)
    assert all(x[1] <= y[1] for x, y in zip(b, b[1:])), (k, b)
assert any(dict(k).get("domain") == dom and dict(k)["target"] == "vda" and c > 0 for k, c in counts.items())
print("histogram: %d series, _count == +Inf bucket and cumulative in each" % len(counts))
p99 = pq.scalar('histogram_quantile(0.99, sum by (le) (rate(aioguard_submit_duration_seconds_bucket'
                '{domain="%s",target="vda",guest_blocking="true"}[30s])))' % dom)
print("PromQL histogram_quantile(0.99, …guest_blocking on vda…[30s]) -> %s s" % p99)

assert pq.scalar("aioguard_libvirt_up") == 1, "aioguard_libvirt_up is not 1"
info = pq.query("aioguard_build_info")
assert len(info) == 1 and info[0]["metric"]["version"] in version and info[0]["value"][1] == "1", info
print("build info:", info[0]["metric"])

hooks = {s["metric"]["hook"]: s["value"][1] for s in pq.query("aioguard_bpf_programs_attached")}
assert hooks.get("syscalls") == "1" and len(hooks) >= 2, hooks
print("hooks:", hooks)

rec = {s["metric"]["target"]: s["metric"] for s in
       pq.query('aioguard_recommended_io_mode{domain="%s"} == 1' % dom)}
# growing qcow2: io_uring where this host runs it, else threads (README, advise)
assert rec["vda"]["recommended"] in ("io_uring", "threads") and rec["vda"]["io_mode"] == "native", rec
assert rec["vdb"]["recommended"] == "native", rec

with pq.get(pq.PROM + "/api/v1/rules") as r:
    groups = json.load(r)["data"]["groups"]
rules = [x for g in groups for x in g["rules"]]
assert len(rules) >= 5 and all(x["health"] == "ok" for x in rules), [(x["name"], x["health"], x.get("lastError")) for x in rules]
print("alert and recording rules evaluated by Prometheus:", ", ".join("%s=%s" % (x["name"], x.get("state", "recorded")) for x in rules))
PY

say "every query of the dashboard answers; the decision, its annotation and the fleet rows"
pq "$CONTRIB/grafana-dashboard.json" <<'PY' || { diag; fail "dashboard queries"; }
import json, re, sys, time, pq
d = json.load(open(sys.argv[1]))
subst = {"$job": "aioguard", "$instance": ".*", "$domain": pq.DOM, "$target": "vda",
         "$__rate_interval": "30s", "$__range": "5m", "$__interval": "15s"}
def promql(e):
    for k in sorted(subst, key=len, reverse=True):
        e = e.replace(k, subst[k])
    assert "$" not in e, e
    return e

# the fleet's recorded series: evaluated every second here (1 min in production)
pq.wait_for('instance:aioguard_stalling_disks:count{job="aioguard"}', lambda v: v >= 0, 30,
            "the recording rules' first evaluation")

queries = []
for p in d["panels"]:
    for t in p.get("targets", []):
        queries.append((p["title"], t["expr"]))
for v in d["templating"]["list"]:
    if v["type"] == "query":
        m = re.match(r"label_values\((.*), *([a-z_]+)\)$", v["definition"])
        queries.append(("variable " + v["name"], m.group(1)))
for a in d["annotations"]["list"]:
    if not a.get("builtIn"):
        queries.append(("annotation " + a["name"], a["expr"]))
empty = []
for title, e in queries:
    r = pq.query(promql(e))   # asserts status success
    if not r:
        empty.append(title)
print("%d dashboard queries answered; empty now: %s" % (len(queries), ", ".join(empty) or "none"))
# with an agent up, stalls and a dry-run decision, only these may be empty:
# the off-CPU panel (--metrics-detail), a host down, switches this hour > 0
# (recorded once a minute of history exists)
allowed = {"Hosts whose agent is down", "Off-CPU time in I/O syscalls (seconds per second; --metrics-detail)",
           "Switches per hour", "Block allocation time (seconds per second)"}
assert set(empty) <= allowed, set(empty) - allowed

# what the agent did, named per disk: the dry-run switch of vda, at its time
r = pq.query('aioguard_disk_switch_timestamp_seconds{domain="%s"}' % pq.DOM)
assert len(r) == 1 and r[0]["metric"]["target"] == "vda", r   # vdb is allocated: no switch
m, at = r[0]["metric"], float(r[0]["value"][1])
assert (m["from"], m["to"], m["result"]) == ("native", "threads", "dry-run"), m
assert time.time() - 600 < at <= time.time() + 1, at
ann = [a for a in d["annotations"]["list"] if not a.get("builtIn")][0]
r = pq.query(promql(ann["expr"]))
assert any(x["metric"]["target"] == "vda" and abs(float(x["value"][1]) - at * 1000) < 1 for x in r), r
print("switch of %s/vda: %s -> %s (%s) at %.3f; the annotation query marks it" % (
    pq.DOM, m["from"], m["to"], m["result"], at))
assert pq.scalar('instance:aioguard_agent_down:bool{job="aioguard"}') == 0
assert pq.scalar('aioguard_enforcing{job="aioguard"}') == 0
print("fleet: stalling disks on this host %s, agent down %s, enforcing %s" % (
    pq.scalar('instance:aioguard_stalling_disks:count{job="aioguard"}'),
    pq.scalar('instance:aioguard_agent_down:bool{job="aioguard"}'),
    pq.scalar('aioguard_enforcing{job="aioguard"}')))
PY

say "promtool check metrics on a real scrape"
pq >"$WORKDIR/scrape.txt" <<'PY' || fail "scrape"
import pq
print(pq.scrape(), end="")
PY
grep -q "aioguard_stalls_total{domain=\"$DOM\",target=\"vda\"" "$WORKDIR/scrape.txt" || fail "scrape has no vda stalls"
lint=$(promtool check metrics <"$WORKDIR/scrape.txt" 2>&1) || fail "promtool check metrics: $lint"
[ -z "$lint" ] || fail "promtool check metrics: $lint"
grep -E "^aioguard_(stalls_total|pool_waits_total|submit_duration_seconds_(count|bucket)|recommended_io_mode)\{domain=\"$DOM\",target=\"vda\"" \
	"$WORKDIR/scrape.txt" | grep -E 'io_submit|fdatasync|recommended' | grep -vE 'le="[0-9.e-]+"' | head -8
grep -E "^aioguard_(libvirt_up|build_info|bpf_programs_attached)" "$WORKDIR/scrape.txt" | head -4

say "what a disk costs: series of the busy vda in the scrape (default: <= 20)"
python3 - "$WORKDIR/scrape.txt" "$DOM" <<'PY' || fail "series per disk"
import collections, re, sys
text, dom = open(sys.argv[1]).read(), sys.argv[2]
per_disk = collections.Counter()
families = collections.Counter()
for line in text.splitlines():
    m = re.match(r'(aioguard_[a-z_]+)\{domain="([^"]*)",target="([^"]*)"', line)
    if m:
        per_disk[(m.group(2), m.group(3))] += 1
        if m.group(2) == dom and m.group(3) == "vda":
            families[m.group(1)] += 1
n = per_disk[(dom, "vda")]
print("%s/vda: %d series (%s)" % (dom, n, ", ".join("%s %d" % kv for kv in sorted(families.items()))))
assert 15 <= n <= 20, ("series of the busy vda", n)
assert families["aioguard_disk_switch_timestamp_seconds"] == 1, families
for (d, t), k in sorted(per_disk.items()):
    assert k <= 20, ("series of", d, t, k)
PY

say "the JSON-lines stream (--events)"
python3 - "$WORKDIR/events.jsonl" "$DOM" <<'PY' || fail "--events stream"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
stalls = [l for l in lines if l["type"] == "stall" and l["domain"] == sys.argv[2] and l["target"] == "vda"]
pool = [l for l in lines if l["type"] == "pool_wait" and l["domain"] == sys.argv[2] and l["target"] == "vda"]
decisions = [l for l in lines if l["type"] == "decision"]
assert stalls, "no stall event for vda"
want = {"ts", "pid", "tid", "thread", "domain", "target", "source", "io_mode", "dev", "ino", "syscall",
        "duration_us", "alloc_us", "offcpu_us", "requests", "bytes"}
assert want <= set(stalls[0]), set(stalls[0]) ^ want
# on io=native a stall is io_submit, nothing else; the pool's waits are apart
assert all(l["syscall"] == "io_submit" and l["io_mode"] == "native" for l in stalls), \
    {l["syscall"] for l in stalls}
assert all(l["syscall"] not in ("io_submit", "io_uring_enter") for l in pool), {l["syscall"] for l in pool}
assert decisions and {"from", "to", "action", "result", "reason", "evidence"} <= set(decisions[0]), decisions[:1]
ev = decisions[0]["evidence"]
assert all("pool_waits" in w for w in ev["windows"]) and ev["target_mode"] == "threads", ev
by = {}
for l in pool:
    by[l["syscall"]] = by.get(l["syscall"], 0) + 1
print("events: %d stall lines for vda (io_submit), %d pool wait lines (%s), %d decision lines"
      % (len(stalls), len(pool), ", ".join("%s %d" % kv for kv in sorted(by.items())) or "none",
         len(decisions)))
if pool:
    print("  a pool wait:", json.dumps(pool[0]))
print("  a stall:", json.dumps(stalls[0]))
PY

say "HTTP robustness against the running agent (loopback only, bounded)"
pq "$WORKDIR/events.jsonl" <<'PY' || { diag; fail "HTTP robustness"; }
import re, socket, sys, threading, time, pq

host, port = "127.0.0.1", int(pq.METRICS.split(":")[2].split("/")[0])

def conn(timeout=5):
    s = socket.create_connection((host, port), timeout=timeout)
    return s

def exchange(raw, timeout=5):
    """Send raw bytes, read until close; the status code, or None when the
    server closed (or reset) without an answer."""
    s = conn(timeout)
    data = b""
    try:
        s.sendall(raw)
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    except (ConnectionResetError, BrokenPipeError):
        pass
    finally:
        s.close()
    m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    return int(m.group(1)) if m else None

def req(method, path, extra=b""):
    return b"%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\n" % (method, path, extra)

assert exchange(req(b"GET", b"/metrics")) == 200
assert exchange(req(b"HEAD", b"/metrics")) == 200
for path in (b"/", b"/nope", b"/metrics/../etc/passwd", b"/metricsX"):
    st = exchange(req(b"GET", path))
    assert st == 404, (path, st)
for method in (b"POST", b"PUT", b"DELETE", b"PATCH"):
    st = exchange(req(method, b"/metrics", b"Content-Length: 5\r\n") + b"hello")
    assert st == 405, (method, st)
st = exchange(req(b"POST", b"/metrics", b"Content-Length: 100000000\r\n") + b"x" * 65536)
assert st == 405 or st is None, st
# Requests up to 32 KiB are read; bigger headers get 431 (README, Metrics).
def padded(total):
    r = req(b"GET", b"/metrics", b"X-Pad: \r\n")
    return r.replace(b"X-Pad: ", b"X-Pad: " + b"a" * (total - len(r)))
fits = exchange(padded(31 * 1024))
assert fits == 200, ("a 31 KiB request", fits)
over = exchange(padded(33 * 1024))
assert over == 431, ("a 33 KiB request", over)
big = exchange(req(b"GET", b"/metrics", b"X-Big: " + b"a" * 65536 + b"\r\n"))
assert big == 431, ("a 64 KiB header", big)
many = exchange(req(b"GET", b"/metrics", b"".join(b"X-H%d: v\r\n" % i for i in range(5000))))
assert many == 431, ("5000 headers", many)
longurl = exchange(req(b"GET", b"/" + b"m" * 70000))
assert longurl == 414, ("a 70 kB URL", longurl)
# junk: an error status or the connection closed (at the latest by the 10 s
# connection timeout: a NUL-led line reads as a blank line, so the server
# keeps waiting for a request line)
for junk in (b"\x00\x01\x02garbage\r\n\r\n", b"GET\r\n\r\n", b"GET /metrics HTTP/9.9\r\n\r\n",
             b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"):
    st = exchange(junk, timeout=15)
    assert st is None or 400 <= st < 600, (junk, st)
print("404 unknown path, 405 other methods; 31 KiB request -> %s, 33 KiB -> %s, 64 KiB header -> %s, "
      "5000 headers -> %s, 70 kB URL -> %s" % (fits, over, big, many, longurl))

# Slow clients: one that connects and says nothing, one that stops half-way
# through its request, one that sends requests and never reads the answers.
t_idle = time.monotonic()
idle = conn(30)
partial = conn(30)
partial.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
deaf = conn(30)
deaf.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
deaf.sendall(req(b"GET", b"/metrics").replace(b"Connection: close\r\n", b"") * 20)
t0 = time.monotonic()

def vda_count(text):
    return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
               if l.startswith('aioguard_submit_duration_seconds_count{domain="%s",target="vda"' % pq.DOM))

first = vda_count(pq.scrape())
worst = 0
while time.monotonic() - t0 < 8:
    s0 = time.monotonic()
    text = pq.scrape(timeout=2)
    worst = max(worst, time.monotonic() - s0)
    time.sleep(0.5)
last = vda_count(text)
assert last > first, ("the agent's windows did not move while slow clients hung on", first, last)
up = pq.scalar('min_over_time(up{job="aioguard"}[6s])')
assert up == 1, ("Prometheus missed a scrape while slow clients hung on", up)
print("slow clients held: scrapes answered in <= %.3f s; vda submissions counted %g -> %g; "
      "Prometheus up all along" % (worst, first, last))

# idle for 10 s: closed (README); "partial" sent its last byte at t_idle
def cut_off(s, limit):
    s.settimeout(max(0.1, limit - (time.monotonic() - t_idle)))
    try:
        while s.recv(65536):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
for name, s in (("idle", idle), ("partial", partial)):
    assert cut_off(s, 15), name + " client was not cut off within 15 s"
    after = time.monotonic() - t_idle
    print("%s client cut off after %.1f s" % (name, after))
    assert after >= 9.5, "%s client cut off after %.1f s, not at 10 s" % (name, after)
deaf.close()

# 100 connections at once, each asking for /metrics
results = []
def one():
    try:
        s = conn(15)
        data = b""
        s.sendall(req(b"GET", b"/metrics"))
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
        s.close()
        results.append(data[:12])
    except OSError as e:
        results.append(type(e).__name__)
threads = [threading.Thread(target=one) for _ in range(100)]
for t in threads:
    t.start()
for t in threads:
    t.join(30)
assert not any(t.is_alive() for t in threads), "a client hung"
ok = sum(1 for r in results if r == b"HTTP/1.1 200")
assert ok >= 1, results[:5]
print("100 concurrent connections: %d answered 200, %d turned away (%s)"
      % (ok, 100 - ok, ", ".join(sorted({str(r) for r in results if r != b"HTTP/1.1 200"}))))

PY
kill -0 "$AGENT_PID" || { diag; fail "the agent died"; }

say "connection limits: 16 per client address, 64 in all, the rest closed at once; idle closed at 10 s"
# Prometheus' own connection would count against the limits
stop_pid "$PROM_PID"
! kill -0 "$PROM_PID" 2>/dev/null || fail "Prometheus did not stop"
pq "$WORKDIR/events.jsonl" <<'PY' || { diag; fail "connection limits"; }
import select, socket, sys, time, pq

port = int(pq.METRICS.split(":")[2].split("/")[0])

def held_by_agent():
    """Connections the agent holds open on its port: server side sockets
    ESTABLISHED or CLOSE_WAIT (closed by the client, not yet by the agent)."""
    n = 0
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(path).readlines()[1:]:
            f = line.split()
            if int(f[1].rsplit(":", 1)[1], 16) == port and f[3] in ("01", "08"):
                n += 1
    return n

def wait_agent_idle():
    end = time.monotonic() + 20
    while held_by_agent() and time.monotonic() < end:
        time.sleep(0.1)
    assert held_by_agent() == 0, "the agent still holds %d connections" % held_by_agent()

def connect(src):
    s = socket.socket()
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s

def connect_all(srcs):
    """sockets connected from each address in srcs, and when each connected"""
    socks, at = [], []
    for src in srcs:
        socks.append(connect(src))
        at.append(time.monotonic())
    return socks, at

def closed_by_agent(socks, at, seconds):
    """{index: seconds it was open} of the sockets the agent closes within
    seconds from now"""
    end, out = time.monotonic() + seconds, {}
    while time.monotonic() < end and len(out) < len(socks):
        live = [s for i, s in enumerate(socks) if i not in out]
        for s in select.select(live, [], [], 0.05)[0]:
            try:
                gone = s.recv(1) == b""
            except OSError:
                gone = True
            if gone:
                i = socks.index(s)
                out[i] = time.monotonic() - at[i]
    return out

def events_lines():
    with open(sys.argv[1], "rb") as f:
        return f.read().count(b"\n")

# 20 connections from one address (127.0.0.2): 16 kept, 4 closed at once
wait_agent_idle()
one, at = connect_all(["127.0.0.2"] * 20)
gone = closed_by_agent(one, at, 2)
print("20 connections from 127.0.0.2: %d kept, %d closed after <= %.3f s"
      % (20 - len(gone), len(gone), max(gone.values(), default=0)))
assert len(gone) == 4, ("per address limit: want 4 of 20 closed at once", sorted(gone))
assert max(gone.values()) < 1, gone
for s in one:
    s.close()

# 16 from each of 127.0.0.2 … 127.0.0.6: 64 kept, 16 closed at once; a
# scrape meanwhile is turned away at once too; the agent keeps observing
wait_agent_idle()
before = events_lines()
many, at = connect_all(["127.0.0.%d" % (2 + i // 16) for i in range(80)])
gone = closed_by_agent(many, at, 2)
print("80 connections from 5 addresses: %d kept, %d closed after <= %.3f s"
      % (80 - len(gone), len(gone), max(gone.values(), default=0)))
assert len(gone) == 16, ("limit in all: want 16 of 80 closed at once", sorted(gone))
assert max(gone.values()) < 1, gone
t = time.monotonic()
try:
    pq.scrape(timeout=5)
    raise SystemExit("a scrape was answered while 64 connections were held")
except OSError as e:
    waited = time.monotonic() - t
    assert waited < 1, "a scrape past the limit waited %.1f s" % waited
    print("a scrape past the limit: turned away after %.3f s (%s)" % (waited, type(e).__name__))
# the 64 kept, idle: closed by the agent at 10 s
kept = [i for i in range(80) if i not in gone]
closed = closed_by_agent([many[i] for i in kept], [at[i] for i in kept], 16)
assert len(closed) == len(kept), "%d of %d idle connections still open after 16 s" % (len(kept) - len(closed), len(kept))
first, last = min(closed.values()), max(closed.values())
print("64 idle connections closed by the agent %.1f to %.1f s after they connected" % (first, last))
assert 9.5 <= first and last <= 15, "not closed at 10 s idle: %.1f to %.1f s" % (first, last)
for s in many:
    s.close()
grown = events_lines() - before
assert grown > 0, "no stall event written while 64 idle connections were held"
wait_agent_idle()
t = time.monotonic()
pq.scrape(timeout=2)
print("%d stall events written meanwhile; scrape answered %.3f s after they went" % (grown, time.monotonic() - t))
PY
kill -0 "$AGENT_PID" || { diag; fail "the agent died"; }

say "a disk that disappears is dropped from /metrics"
stop_writes
virsh -q -c "$URI" destroy "$DOM" >/dev/null
virsh -q -c "$URI" undefine "$DOM" >/dev/null   # a defined domain's disks stay watched
pq <<'PY' || fail "the destroyed domain's series stay"
import time, pq
for _ in range(40):
    if 'domain="%s"' % pq.DOM not in pq.scrape():
        break
    time.sleep(0.5)
else:
    raise SystemExit("series of %s still served 20 s after destroy" % pq.DOM)
print("series of %s gone" % pq.DOM)
PY
stop_agent
echo "PASS"
