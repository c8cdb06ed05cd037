# lockstep: `make help` lists the targets.
# No C libraries: podman's bindings build without cgo given these tags (the graphdriver ones also let
# the race detector, which needs cgo, build them).
TAGS := remote,containers_image_openpgp,exclude_graphdriver_btrfs,exclude_graphdriver_devicemapper
export CGO_ENABLED := 0
export GOFLAGS := -tags=$(TAGS)
GO ?= go
BIN := bin
PKGS := ./...

.PHONY: help build package test test-sandbox test-hosts test-unit deps vet lint fmt bench demo docs clean fuzz fuzz-short soak

help: ## list the targets
	@awk 'BEGIN{FS=":.*## "} /^[a-z-]+:.*## /{printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build lockstepd and lockstepctl into bin/
	$(GO) build -trimpath -o $(BIN)/lockstepd ./cmd/lockstepd
	$(GO) build -trimpath -o $(BIN)/lockstepctl ./cmd/lockstepctl

package: ## build the .deb and .rpm for amd64 and arm64 into dist/ (nfpm; PKG_ARCHES=amd64 for one)
	scripts/package.sh

deps: ## install what the tests and the demo need (Debian 12/13 packages: podman, netavark, registry, lintian, ...)
	scripts/deps.sh

test: deps vet ## every test: real podman, registry, dbus-daemon, and a real systemd (installs its dependencies)
	CGO_ENABLED=1 LOCKSTEP_REQUIRE_REAL=1 $(GO) test -race -count=1 -timeout 30m $(PKGS)
	$(MAKE) --no-print-directory fuzz-short
	@echo "lockstepd.service: $$(systemd-analyze security --offline=true units/lockstepd.service 2>/dev/null | tail -1)"
	$(MAKE) --no-print-directory test-sandbox
	$(MAKE) --no-print-directory test-hosts

test-sandbox: ## the tests that need a real systemd, run inside the sandbox (root), the .deb end to end included
	$(GO) build -o $(BIN)/quadlet github.com/containers/podman/v5/cmd/quadlet
	$(GO) test -c -tags sandbox,$(TAGS) -o $(BIN)/sandbox.test ./test/sandbox
	PKG_ARCHES=amd64 PKG_FORMATS=deb DIST=$(BIN)/dist scripts/package.sh
	DEB=$$(ls $(BIN)/dist/lockstep_*_amd64.deb | head -1) test/sandbox/run.sh $(BIN)/sandbox.test -test.v -test.count=1 -test.timeout=20m

test-hosts: ## fresh Debian 12 and 13 hosts (debootstrap, cached in /var/lib/lockstep-hosts) with the .deb installed by apt, booted with their own systemd, end-to-end tests inside; deps.sh on a minbase root (root; docs/test-hosts.md)
	@t0=$$(date +%s); set -e; rm -rf $(BIN)/hosts-dist $(BIN)/hosts-dist-prev; \
	$(GO) build -o $(BIN)/quadlet github.com/containers/podman/v5/cmd/quadlet; \
	$(GO) test -c -tags hosts,$(TAGS) -o $(BIN)/hosts.test ./test/hosts; \
	$(GO) build -o $(BIN)/hostproxy ./test/hosts/hostproxy; \
	PKG_ARCHES=amd64 PKG_FORMATS=deb DIST=$(BIN)/hosts-dist scripts/package.sh >/dev/null; \
	VERSION=$$(tr -d ' \n' < VERSION)-prev PKG_ARCHES=amd64 PKG_FORMATS=deb DIST=$(BIN)/hosts-dist-prev scripts/package.sh >/dev/null; \
	echo "== test-hosts: test binary, generator and both .debs built in $$(( $$(date +%s) - t0 ))s"; \
	HOSTS_DEB=$$(ls $(BIN)/hosts-dist/lockstep_*_amd64.deb) HOSTS_OLD_DEB=$$(ls $(BIN)/hosts-dist-prev/lockstep_*_amd64.deb) \
	  HOSTS_TEST=$(BIN)/hosts.test HOSTS_QUADLET=$(BIN)/quadlet HOSTS_PROXY_BIN=$(BIN)/hostproxy test/hosts/run.sh; \
	echo "== make test-hosts took $$(( $$(date +%s) - t0 ))s"

# Fuzz targets: package and name. Seeds are in each package's testdata/fuzz and in the f.Add calls.
FUZZ_TARGETS := ./manifest:FuzzParseValidate ./policy:FuzzPolicyParse ./quadlet:FuzzRenderNoInjection ./dbusapi:FuzzReportRoundTrip \
	./dbusapi:FuzzDecodeReport ./report:FuzzLoadReport
FUZZTIME ?= 4s
FUZZLONG ?= 10m
# The short run does not minimize new inputs: a minimization still going at the deadline fails the
# run with "context deadline exceeded" (seen on a fresh CI machine). The long run minimizes.
FUZZMINIMIZE ?= 0

fuzz-short: ## a few seconds of each fuzz target (part of make test)
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; name=$${t##*:}; \
	  echo "fuzz $$name ($$pkg, $(FUZZTIME))"; \
	  out=$$($(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) $$pkg 2>&1) || { echo "$$out"; exit 1; }; \
	  case "$$out" in *"fuzz: elapsed"*) ;; *) echo "$$out"; echo "$$name did not fuzz"; exit 1;; esac; \
	  echo "$$out" | tail -1; done

fuzz: ## each fuzz target for FUZZLONG (default 10m); a failing input is saved in the package's testdata/fuzz
	$(MAKE) --no-print-directory fuzz-short FUZZTIME=$(FUZZLONG) FUZZMINIMIZE=60s

soak: ## 10,000 passes with manifests changing under them; prints goroutines, fds and RSS at start and end
	@out=$$(LOCKSTEP_SOAK=1 $(GO) test -run '^TestSoak$$' -count=1 -v -timeout 60m ./cmd/lockstepd 2>&1); rc=$$?; \
	  echo "$$out" | grep -E '^(soak|---|ok|FAIL|PASS|    )'; exit $$rc

test-unit: ## the tests that need nothing outside Go
	$(GO) test -short -count=1 $(PKGS)

vet: ## go vet with the project's build tags
	$(GO) vet $(PKGS)

lint: vet ## gofmt check and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

fmt: ## gofmt every Go file
	gofmt -w $$(git ls-files '*.go')

bench: deps ## every benchmark, against real podman, dbus-daemon and lockstepd; prints figures
	scripts/bench.sh

demo: ## bring lockstep up from its .deb (host systemd, or the sandbox), install the demo apps, show them
	scripts/demo.sh

docs: ## regenerate docs/cli/, docs/man/ (lockstepctl's commands, lockstepd's flags) and packaging/completions/
	$(GO) run ./cmd/lockstepctl gen-docs --markdown docs/cli --man docs/man --completions packaging/completions
	$(GO) test -count=1 -run '^TestManPageUpToDate$$' ./cmd/lockstepd -args -update-man >/dev/null

clean: ## remove build output and packages
	rm -rf $(BIN) dist
