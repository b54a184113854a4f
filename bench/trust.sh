#!/usr/bin/env bash
# bay-registry's Notary v1 trust API vs Debian's notary-server, side by side:
# GET timestamp.json / targets.json rates (wrk), wall time of one notary
# publish of 100 new tags, and bay_signer's full verification of 1,000 tags
# on one core. Traffic stays on 127.0.0.1.
# Needs wrk, notary + notary-server (Debian `notary`), taskset, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p bay-registry
cargo bench -p bay-signer --bench verify --no-run
exec python3 bench/trust.py "$@"
