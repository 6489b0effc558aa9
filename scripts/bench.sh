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
