#!/usr/bin/env bash
# Runs, in one go, the benchmarks whose figures the README gives side by
# side: webhook ingest through the whole server beside each store's own
# batch-insert ceiling, dispatch beside the sandbox's own ceiling, each on
# SQLite and PostgreSQL, and the classifier. PostgreSQL comes from
# IBMAIL_TEST_POSTGRES (default: the local test database); without one its
# rows are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
go test -run '^$' -bench 'WebhookIngest' -benchtime 3000x ./server/ | grep -E '^Benchmark' || true
go test -run '^$' -bench 'Dispatch$|SandboxCeiling' -benchtime 20x ./server/ | grep -E '^Benchmark' || true
go test -run '^$' -bench 'BatchInsertCeiling' -benchtime 3s ./store/sqlite/ ./store/postgres/ | grep -E '^(Benchmark|ok)' || true
go test -run '^$' -bench 'Classify$' -benchmem ./classifier/ | grep -E '^Benchmark'
