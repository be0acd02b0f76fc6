#!/usr/bin/env bash
# The main job on the embedded default: no keys, no cluster. Extra arguments go to `selfheal demo`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/bootstrap.sh"
exec selfheal demo "$@"
