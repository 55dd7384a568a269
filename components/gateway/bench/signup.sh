#!/usr/bin/env bash
# Sign-up time by the address's state (numbers, not a test: nothing here passes or fails on speed).
#
#   components/gateway/bench/signup.sh [rounds]
#
# The answer to a sign-up must not tell whether the address has an account, by its words or by its
# time: every sign-up does one argon2id hash. This runs the whole platform in-process (the ignored
# test `bench_sign_up_time_by_address_state` in components/gateway/tests/accounts.rs: its own
# databases on the running services, the production argon2 cost) and times sign-ups for a new
# address, an unconfirmed one and a confirmed one, interleaved round by round, each the baseline of
# the others. Needs scripts/services running and the components built (scripts/build-components).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
# shellcheck source-path=SCRIPTDIR/../../.. source=scripts/lib/common.sh
source "$ROOT/scripts/lib/common.sh"
cd "$VID2MP3_ROOT"
echo "load before: $(uptime)"
# --workspace: the same feature set as scripts/test, so its build is reused.
VID2MP3_BENCH_ROUNDS="${1:-30}" cargo test --locked --workspace --test accounts -- \
  --ignored --exact bench_sign_up_time_by_address_state --nocapture 2>&1 |
  grep -E '^(sign-up|address|new|unconfirmed|confirmed)'
echo "load after: $(uptime)"
