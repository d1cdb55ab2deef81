#!/bin/bash
# The observer on a loop-mounted ext4: see observer_common.sh.
set -euo pipefail
FS=ext4
source "$(dirname "${BASH_SOURCE[0]}")/observer_common.sh"
