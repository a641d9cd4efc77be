#!/usr/bin/env bash
# Soak of mqtt-line: mixed traffic through one line for a long time, with the broker stopped and
# restarted every few minutes. Prints, every SOAK_REPORT_SECONDS, the messages received per QoS,
# the writes and sim-host's resident memory; fails when an accepted message was lost, a QoS 2
# message arrived twice, a write went silent, or memory kept growing.
#
#   tests/soak.sh              # 30 minutes, a broker restart every 3 minutes
#   tests/soak.sh 300 60       # 5 minutes, a restart every minute
#
# Environment: SOAK_SECONDS, SOAK_RESTART_SECONDS, SOAK_REPORT_SECONDS (default 30) instead of
# the arguments; SOAK_NO_BUILD=1 skips the build.
set -euo pipefail

cd "$(dirname "$0")/.."

export SOAK_SECONDS="${1:-${SOAK_SECONDS:-1800}}"
export SOAK_RESTART_SECONDS="${2:-${SOAK_RESTART_SECONDS:-180}}"
export SOAK_REPORT_SECONDS="${SOAK_REPORT_SECONDS:-30}"

if [ "${SOAK_NO_BUILD:-}" != 1 ]; then
    cargo build --release --workspace
fi
exec cargo test --release -p mqtt-line-e2e --test faults -- --ignored --exact soak --nocapture
