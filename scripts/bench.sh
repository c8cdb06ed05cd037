#!/bin/bash
# make bench: every benchmark of the project against real components, printed as Go benchmark lines.
# Each figure is explained in docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export LOCKSTEP_REQUIRE_REAL=1
b() { go test -run '^$' -count 1 -timeout 30m "$@" | grep -E '^(Benchmark|ok|FAIL|---)' ; }
echo "# machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(podman --version); $(go version | cut -d' ' -f3)"
# no-op pass ÷ bare list at 10, 50, 100 apps; podman API requests per no-op pass (counting proxy)
b -bench 'NoopPass' -benchtime 20x ./reconciler/
# 20 independent installs, --parallel 4 ÷ --parallel 1 (goal <= 0.6)
b -bench 'ParallelInstalls' -benchtime 3x ./reconciler/
# Report() p50/p99 over a real bus (goal p99 <= 2 ms), ReportChanged delay, encoding cost
b -bench 'BenchmarkReport$' -benchtime 1x ./dbusapi/
b -bench 'ReportChangedDelay' -benchtime 200x ./dbusapi/
b -bench 'EncodeReport|CachedReply' -benchmem ./dbusapi/
# exec → READY=1 with 100 manifests; kill → running median and p95
b -bench 'ExecToReady' -benchtime 20x ./cmd/lockstepd/
b -bench 'KillToRunning' -benchtime 1x ./cmd/lockstepd/
# the lockstepd binary with 100 apps: RSS idle and at the peak of a pass; podman requests and file
# writes of a no-op pass, counted outside it
b -bench 'DaemonRSS' -benchtime 1x ./cmd/lockstepd/
# memory of loading a manifest dir of garbage (1 GiB file, deep nesting, alias bomb, loops)
b -bench 'GarbageManifestDir' -benchmem ./manifest/
# The companion stage under a real systemd, inside the sandbox.
go build -o bin/quadlet github.com/containers/podman/v5/cmd/quadlet
go test -c -tags "sandbox,$(go env GOFLAGS | sed 's/-tags=//')" -o bin/sandbox.test ./test/sandbox
# daemon-reloads and unit file writes per no-op pass with 20 companions under a real systemd; the
# sandbox is booted only by its harness, one at a time on this host.
flock /var/lock/lockstep-sandbox.lock test/sandbox/run.sh bin/sandbox.test -test.run '^$' -test.bench NoopCompanionStage -test.benchtime 20x | grep -E '^(Benchmark|ok|FAIL|---|PASS)'
