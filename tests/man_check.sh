#!/usr/bin/env bash
# The man page keeps up with the program: every option of every command's
# --help, every configuration key (user/agent_config.c) and every metric of
# README's table is in man/aioguard.8.scd. No root needed.
set -euo pipefail
src=${AIOGUARD_SRCDIR:?}
bin=${AIOGUARD:?}
man="$src/man/aioguard.8.scd"
missing=0

miss() {
	echo "man_check: man/aioguard.8.scd does not mention $1; add it" >&2
	missing=$((missing + 1))
}

for cmd in advise set-io watch run; do
	# the option lines: "  -c, --connect URI" or "      --comm NAME"
	flags=$("$bin" "$cmd" --help | grep -oE -- '^ +(-[a-zA-Z], )?--[a-z][a-z0-9-]*' | grep -oE -- '--[a-z0-9-]+' | sort -u)
	[ -n "$flags" ] || { echo "man_check: no options in 'aioguard $cmd --help'" >&2; exit 1; }
	for f in $flags; do
		grep -qF -- "*$f*" "$man" || miss "$f (aioguard $cmd --help has it)"
	done
done

keys=$(sed -n '/config_keys\[\] = {/,/NULL/p' "$src/user/agent_config.c" | grep -oE '"[a-z-]+"' | tr -d '"')
[ -n "$keys" ] || { echo "man_check: no config_keys in user/agent_config.c" >&2; exit 1; }
for k in $keys; do
	grep -qE -- "^\|  \*$k\*$" "$man" || miss "the configuration key $k in its CONFIGURATION table"
done

for k in $(grep -oE '^#?[a-z-]+ =' "$src/contrib/aioguard.conf" | tr -d '#= '); do
	grep -qE -- "^\|  \*$k\*$" "$man" || miss "the key $k of contrib/aioguard.conf"
done

# shellcheck disable=SC2016 # backquotes of markdown
metrics=$(grep -oE '^\| `aioguard_[a-z_]+`' "$src/README.md" | grep -oE 'aioguard_[a-z_]+')
[ -n "$metrics" ] || { echo "man_check: no metrics table in README.md" >&2; exit 1; }
for m in $metrics; do
	grep -qF -- "*$m*" "$man" || miss "the metric $m (README's Metrics table)"
done

if [ "$missing" -gt 0 ]; then
	echo "FAIL: $missing missing" >&2
	exit 1
fi
echo "PASS: every option, configuration key and metric is in the man page"
