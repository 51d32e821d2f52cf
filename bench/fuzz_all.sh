#!/usr/bin/env bash
# The long schema fuzz: every operation of the OpenAPI schema, all schemathesis checks, positive and
# negative cases, then the stateful phase that follows the schema's links, on the server that
# tests/test_fuzz.py builds (the stub model; 64 training places, so the fuzzer's own jobs never
# turn into 429s).
#
#   bench/fuzz_all.sh              # 1,000 cases per operation and mode, 300 linked scenarios
#   bench/fuzz_all.sh 25 15        # a quick look: 25 cases, 15 scenarios (about 4 minutes on 2 busy cores)
#
# It prints the requests per phase, the slowest operations and every failure (two per operation at most),
# and exits non-zero if any check failed. `make test` runs the same file at 50 cases and 20 scenarios.
set -euo pipefail
cd "$(dirname "$0")/.."
examples="${1:-1000}"
scenarios="${2:-300}"
start=$(date +%s)
status=0
PM_FUZZ_EXAMPLES="$examples" PM_FUZZ_SCENARIOS="$scenarios" \
  .venv/bin/python -m pytest -q -s -p no:schemathesis -p no:hypothesispytest tests/test_fuzz.py || status=$?
seconds=$(( $(date +%s) - start ))
echo "fuzz_all: ${examples} cases per operation and mode, ${scenarios} scenarios:" \
     "${seconds} s, exit ${status}"
exit "$status"
