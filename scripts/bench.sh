#!/bin/bash
# make bench: every benchmark of the project against real components, printed as Go benchmark lines.
# Each figure is explained in docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export LOCKSTEP_REQUIRE_REAL=1
b() { go test -run '^$' -count 1 -timeout 30m "$@" | grep -E '^(Benchmark|ok|FAIL|---)' ; }
echo "# machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(podman --version); $(go version | cut -d' ' -f3)"
b -bench 'NoopPass' -benchtime 20x ./reconciler/
b -bench 'BenchmarkReport$' -benchtime 1x ./dbusapi/
b -bench 'ReportChangedDelay' -benchtime 200x ./dbusapi/
b -bench 'EncodeReport' -benchmem ./dbusapi/
b -bench 'ExecToReady' -benchtime 20x ./cmd/lockstepd/
b -bench 'KillToRunning' -benchtime 1x ./cmd/lockstepd/
# The companion stage under a real systemd, inside the sandbox.
go build -o bin/quadlet github.com/containers/podman/v5/cmd/quadlet
go test -c -tags "sandbox,$(go env GOFLAGS | sed 's/-tags=//')" -o bin/sandbox.test ./test/sandbox
test/sandbox/run.sh bin/sandbox.test -test.run '^$' -test.bench NoopCompanionStage -test.benchtime 20x | grep -E '^(Benchmark|ok|FAIL|---|PASS)'
