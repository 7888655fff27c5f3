#!/usr/bin/env bash
# Packages every published crate and builds each from its tarball alone, as crates.io would
# (cargo's temporary registry stands in for the others). A target directory of its own: cargo
# takes a registry crate it built before as unchanged, so a shared one could hide a change.
set -euo pipefail
cd "$(dirname "$0")/.."
target=$(mktemp -d)
trap 'rm -rf "$target"' EXIT
CARGO_TARGET_DIR="$target" cargo package --workspace --exclude clustered-testkit "$@"
echo "every published crate builds from its package"
