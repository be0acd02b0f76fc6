#!/usr/bin/env bash
# Shared by scripts/demo.sh and scripts/test.sh: create .venv and install the project into it.
# Usage: source scripts/bootstrap.sh [extras]   (extras e.g. "test")
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"

if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
  echo "selfheal needs Python >= 3.11 (found: $("$PYTHON" --version 2>&1)). Set PYTHON=/path/to/python3.11." >&2
  exit 1
fi
if [ ! -x "$ROOT/.venv/bin/python" ]; then
  "$PYTHON" -m venv "$ROOT/.venv"
fi
VENV="$ROOT/.venv"
extras="${1:-}"
spec="$ROOT"
[ -n "$extras" ] && spec="$ROOT[$extras]"
# Quiet, but keep errors; the stamp skips the reinstall when pyproject.toml has not changed.
stamp="$VENV/.selfheal-install-${extras:-base}"
if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
  echo "==> installing selfheal${extras:+[$extras]} into .venv (first run takes about a minute)" >&2
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q -e "$spec" 2> >(grep -v "is ignored" >&2)
  touch "$stamp"
fi
export PATH="$VENV/bin:$PATH"
