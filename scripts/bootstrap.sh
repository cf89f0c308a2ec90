# Sourced by scripts/start, scripts/test and bin/quayside.
# Ensures a Node >= 22.12 is on PATH (installing the node@24 npm package under .node/ when the
# machine's node is older) and that node_modules matches package-lock.json.
set -e
QS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# npm reads its global npmrc from the running node's prefix: once we switch to the bootstrapped
# node it no longer sees the system's (which may set the CA file a proxied network needs).
if [ -z "${npm_config_cafile:-}" ] && command -v npm >/dev/null 2>&1; then
  qs_cafile="$(npm config get cafile 2>/dev/null || true)"
  if [ -n "$qs_cafile" ] && [ "$qs_cafile" != "null" ] && [ -f "$qs_cafile" ]; then
    export npm_config_cafile="$qs_cafile"
    export NODE_EXTRA_CA_CERTS="${NODE_EXTRA_CA_CERTS:-$qs_cafile}"
  fi
fi
qs_node_ok() {
  command -v node >/dev/null 2>&1 || return 1
  node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>22||(a===22&&b>=12)?0:1)'
}
if [ -x "$QS_ROOT/.node/node_modules/node/bin/node" ]; then
  export PATH="$QS_ROOT/.node/node_modules/node/bin:$PATH"
fi
if ! qs_node_ok; then
  echo "quayside: node $(node --version 2>/dev/null || echo none) is too old; installing Node 24 into .node/ ..." >&2
  mkdir -p "$QS_ROOT/.node"
  # A package.json of its own: node@24's install script runs a nested `npm install`, which must
  # not climb up to the project's package.json and lock file.
  [ -f "$QS_ROOT/.node/package.json" ] || echo '{"name":"quayside-node","private":true}' > "$QS_ROOT/.node/package.json"
  (cd "$QS_ROOT/.node" && npm install --no-save --no-package-lock --no-audit --no-fund node@24 >&2)
  export PATH="$QS_ROOT/.node/node_modules/node/bin:$PATH"
  qs_node_ok || { echo "quayside: could not bootstrap Node 24" >&2; exit 1; }
fi
# Native addons must build against the running node's headers, not the machine's default.
NODE_PKG_DIR="$QS_ROOT/.node/node_modules/node"
[ -d "$NODE_PKG_DIR" ] && export npm_config_nodedir="$NODE_PKG_DIR"
# `npm install`, not `npm ci`: @node-rs/bcrypt lists optional per-platform packages that the
# registry mirror here does not carry, so the lock can never list them and `npm ci` refuses it.
# The lock still pins every version that is installed. A stamp remembers which lock was installed.
qs_stamp="$QS_ROOT/node_modules/.quayside-lock"
if [ ! -f "$qs_stamp" ] || ! cmp -s "$QS_ROOT/package-lock.json" "$qs_stamp"; then
  echo "quayside: installing dependencies (npm install from package-lock.json) ..." >&2
  # --ignore-scripts: better-sqlite3 loads the prebuilt binary it ships; its node-gyp fallback
  # would need Node headers. Nothing else we depend on needs an install script.
  (cd "$QS_ROOT" && npm install --no-fund --no-audit --prefer-offline --ignore-scripts >&2)
  cp "$QS_ROOT/package-lock.json" "$qs_stamp"
fi
