#!/usr/bin/env bash
# make bench: Go micro-benchmarks, then load runs of hotlined with callsim
# (and sipp) on loopback. Figures, never assertions.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "# hotline benchmarks — $(date -u +%FT%TZ), $(nproc) cores, $(go version | cut -d' ' -f3)"
echo
echo "## Go benchmarks"
pkgs=$(grep -l '^func Benchmark' $(git ls-files '*_test.go') | xargs -n1 dirname | sort -u | sed 's#^#./#')
go test -run '^$' -bench . -benchmem -benchtime "${BENCHTIME:-2s}" $pkgs 2>&1 | grep -vE '^(goos|goarch|pkg|cpu):' || true
echo
go build -o bin/ ./cmd/...
go run ./scripts/benchrun -bin bin ${BENCH_ARGS:-}
echo
echo "## Bridged calls (RTP relay: CPU per bridged call-minute, added latency)"
HOTLINE_BENCH_RELAY=1 HOTLINE_BENCH_CALLS=${BENCH_RELAY_CALLS:-500} HOTLINE_BENCH_SECONDS=${BENCH_RELAY_SECONDS:-20} \
  go test -count=1 -run '^TestRelayLoad$' -v ./media 2>&1 | grep -vE '^(=== RUN|--- PASS|PASS|ok )' || true
echo
echo "## ACD decision time (500 agents, 2,000 waiting calls) and case creation: see the Go benchmarks above (routing, cases)."
