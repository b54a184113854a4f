#!/usr/bin/env bash
# bay-registry vs Debian's docker-registry (CNCF Distribution), side by side.
# Needs wrk, apache2-utils (ab), curl, docker-registry, busybox-static.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p bay-registry
exec python3 bench/registry.py "$@"
