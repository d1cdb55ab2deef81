#!/usr/bin/env bash
# contrib/ keeps up with the agent, without root: the alert and recording
# rules pass promtool's check and their unit tests, and the Grafana
# dashboard is JSON that uses the data source picked on import
# (DS_PROMETHEUS) in every panel, query, variable and annotation, reads only
# metrics the agent exports or the recording rules record, and lays its
# panels out without overlap. tests/integration/prometheus_e2e.sh runs the
# rules and every dashboard query against a real Prometheus scraping a real
# agent.
set -euo pipefail
src=${AIOGUARD_SRCDIR:?}
contrib=$src/contrib
command -v promtool >/dev/null || { echo "FAIL: promtool not installed (tools/install-deps: prometheus)" >&2; exit 1; }

cd "$contrib"
for f in aioguard-alerts.yml aioguard-rules.yml; do
	promtool check rules "$f" || { echo "FAIL: promtool check rules $f" >&2; exit 1; }
done
for f in aioguard-alerts.test.yml aioguard-rules.test.yml; do
	promtool test rules "$f" || { echo "FAIL: promtool test rules $f" >&2; exit 1; }
done

python3 - "$contrib/grafana-dashboard.json" "$contrib/aioguard-rules.yml" "$src/README.md" <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1]))
rules_text = open(sys.argv[2]).read()
readme = open(sys.argv[3]).read()
DS = "${DS_PROMETHEUS}"

inputs = [i["name"] for i in d.get("__inputs", [])]
assert inputs == ["DS_PROMETHEUS"], inputs
assert "${datasource}" not in json.dumps(d), "a leftover ${datasource} variable reference"
assert all(v["name"] != "datasource" for v in d["templating"]["list"])

def check_ds(where, ds):
    assert isinstance(ds, dict) and ds.get("uid") == DS and ds.get("type") == "prometheus", (where, ds)

exprs = []
panels = d["panels"]
for p in panels:
    if p["type"] == "row":
        continue
    check_ds("panel %r" % p["title"], p.get("datasource"))
    assert p.get("targets"), p["title"]
    for t in p["targets"]:
        check_ds("a query of %r" % p["title"], t.get("datasource"))
        exprs.append((p["title"], t["expr"]))
for v in d["templating"]["list"]:
    if v["type"] == "query":
        check_ds("variable %s" % v["name"], v.get("datasource"))
        exprs.append(("variable " + v["name"], v["definition"]))
for a in d["annotations"]["list"]:
    if a.get("builtIn"):
        continue
    check_ds("annotation %s" % a["name"], a.get("datasource"))
    exprs.append(("annotation " + a["name"], a["expr"]))

# metrics: the agent's (README's table) and the recording rules' own names
exported = set(re.findall(r"^\| `(aioguard_[a-z_]+)`", readme, re.M))
assert "aioguard_disk_switch_timestamp_seconds" in exported, "README's table lacks the per-disk switches"
recorded = set(re.findall(r"record: ([a-z_:0-9]+)", rules_text))
used = set()
for title, e in exprs:
    for m in re.findall(r"[a-z_]*:?aioguard_[a-z_]+(?::[a-z_0-9]+)?", e):
        used.add(m)
        base = re.sub(r"_(bucket|sum|count)$", "", m)
        assert m in recorded or base in exported or m in exported, (title, m)
print("dashboard: %d panels, %d queries; metrics used: %s" % (len(panels), len(exprs), ", ".join(sorted(used))))

# what the issue asked of it
types = {p["type"] for p in panels}
assert {"heatmap", "timeseries", "table", "stat", "bargauge"} <= types, types
all_exprs = " ".join(e for _, e in exprs)
assert "aioguard_enforcing" in all_exprs, "enforce/dry-run not shown"
assert any(a.get("useValueForTime") and "aioguard_disk_switch_timestamp_seconds" in a["expr"]
           for a in d["annotations"]["list"] if not a.get("builtIn")), "no annotation at each switch"
assert {"instance:aioguard_stalling_disks:count", "instance_result:aioguard_switches:increase1h",
        "instance:aioguard_agent_down:bool"} <= used, "the fleet overview"
assert "instance" in [v["name"] for v in d["templating"]["list"]]
# a stall is one thing: latency panels read the submitting syscall only
for title, e in exprs:
    if "aioguard_submit_duration_seconds_bucket" in e:
        assert 'guest_blocking="true"' in e, (title, e)
assert "aioguard_pool_waits_total" in all_exprs

ids = [p["id"] for p in panels]
assert len(ids) == len(set(ids)), ids
cells = {}
for p in panels:
    g = p["gridPos"]
    assert g["x"] + g["w"] <= 24, (p["title"], g)
    for x in range(g["x"], g["x"] + g["w"]):
        for y in range(g["y"], g["y"] + g["h"]):
            assert (x, y) not in cells, ("panels overlap", p["title"], cells[(x, y)])
            cells[(x, y)] = p["title"]
print("every panel, query, variable and annotation uses ${DS_PROMETHEUS}; no overlap")
PY
echo "PASS: contrib rules and dashboard"
