#!/usr/bin/env bash
# Installs everything the tests need (Debian packages, Python packages, npm tools), then runs them all.
# Extra arguments go to pytest (e.g. scripts/test.sh -k simulator).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# --- Debian packages -------------------------------------------------------------------------
DEB_PACKAGES=(prometheus chromium golang-go)
missing=()
for pkg in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && sudo -n true 2>/dev/null && SUDO="sudo -n"
  if [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ]; then
    echo "==> installing Debian packages: ${missing[*]}" >&2
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "The tests need these Debian packages, which are missing: ${missing[*]}" >&2
    echo "Install them with: sudo apt-get install --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
fi
for tool in kubectl node npm; do
  command -v "$tool" >/dev/null || { echo "The tests need '$tool' on PATH; it is missing." >&2; exit 1; }
done

# --- Python packages -------------------------------------------------------------------------
source "$ROOT/scripts/bootstrap.sh" test

# --- npm tools (MCP Inspector CLI, pinned with a lock file in scripts/npm-tools) --------------
NPM_SRC="$ROOT/scripts/npm-tools"
if [ ! -d "$ROOT/.tools/node_modules" ] || [ "$NPM_SRC/package-lock.json" -nt "$ROOT/.tools/node_modules" ]; then
  echo "==> installing npm tools into .tools" >&2
  mkdir -p "$ROOT/.tools"
  cp "$NPM_SRC/package.json" "$NPM_SRC/package-lock.json" "$ROOT/.tools/"
  (cd "$ROOT/.tools" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  touch "$ROOT/.tools/node_modules"
fi

export ADK_SUPPRESS_EXPERIMENTAL_FEATURE_WARNINGS=true
export GOOGLE_API_USE_CLIENT_CERTIFICATE=false
exec python -m pytest "$@"
