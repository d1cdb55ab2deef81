#!/bin/bash
# The observer on a loop-mounted xfs: see observer_common.sh.
set -euo pipefail
FS=xfs
source "$(dirname "${BASH_SOURCE[0]}")/observer_common.sh"
