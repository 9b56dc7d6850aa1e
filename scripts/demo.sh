#!/usr/bin/env bash
# The README's main job: back up a directory to a local target, then show the target.
# Usage: scripts/demo.sh [SOURCE] [TARGET]   (defaults: volumes-sample/source, ./demo-target)
set -euo pipefail
cd "$(dirname "$0")/.."
src=${1:-volumes-sample/source}
target=${2:-demo-target}
export PASSPHRASE=${PASSPHRASE:-demo-passphrase}
./bin/tapechain backup "$src" "$target"
echo
./bin/tapechain status "$target"
echo
./bin/tapechain ls "$target"
