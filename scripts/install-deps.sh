#!/usr/bin/env bash
# Installs what building and testing Magnetic Mailer needs on Debian bookworm, and nothing
# that is already there. Run as root (CI and fresh machines); as another user it only reports.
set -euo pipefail

packages=(
  cmake make g++ pkg-config
  libboost-dev libboost-system-dev libssl-dev libsqlite3-dev libc-ares-dev libgmime-3.0-dev
  nlohmann-json3-dev libtomlplusplus-dev libcli11-dev libspdlog-dev libfmt-dev libidn2-dev
  libpsl-dev libgtest-dev libgmock-dev libbenchmark-dev
  postfix python3 python3-dkim python3-nacl swaks libnet-ssleay-perl sqlite3 time bc
  awscli openssl
)
# Node.js and npm may come from elsewhere than Debian; Debian's are installed only when there
# is no node at all (installing them over another node breaks its packages).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages (run as root to install): ${missing[*]}" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # postfix asks no questions this way and its daemon is never started: tests run smtp-sink.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The npm packages of tests/node (handlebars.js, the reference renderer; the AWS SDK for
# JavaScript, an SES client) go into the tree: installed when node_modules is missing or lacks a
# package of package.json at the version it names.
here="$(cd "$(dirname "$0")/.." && pwd)"
node_deps_missing() {
  [ -d "$here/tests/node/node_modules" ] || return 0
  (cd "$here/tests/node" && node -e '
    const fs = require("fs");
    const deps = require("./package.json").dependencies || {};
    for (const [name, want] of Object.entries(deps)) {
      const file = `node_modules/${name}/package.json`;
      if (!fs.existsSync(file)) process.exit(0);
      const have = JSON.parse(fs.readFileSync(file, "utf8")).version;
      if (/^[0-9]/.test(want) && have !== want) process.exit(0);
    }
    process.exit(1);') && return 0
  return 1
}
if [ -f "$here/tests/node/package.json" ] && node_deps_missing; then
  echo "install-deps: npm install in tests/node"
  (cd "$here/tests/node" && npm install --no-audit --no-fund --silent)
fi
