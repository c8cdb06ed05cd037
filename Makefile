# lockstep: `make help` lists the targets.
# No C libraries: podman's bindings build without cgo given these tags (the graphdriver ones also let
# the race detector, which needs cgo, build them).
TAGS := remote,containers_image_openpgp,exclude_graphdriver_btrfs,exclude_graphdriver_devicemapper
export CGO_ENABLED := 0
export GOFLAGS := -tags=$(TAGS)
GO ?= go
BIN := bin
PKGS := ./...

.PHONY: help build test test-unit deps vet lint fmt bench demo docs clean

help: ## list the targets
	@awk 'BEGIN{FS=":.*## "} /^[a-z-]+:.*## /{printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build lockstepd and lockstepctl into bin/
	$(GO) build -trimpath -o $(BIN)/lockstepd ./cmd/lockstepd
	$(GO) build -trimpath -o $(BIN)/lockstepctl ./cmd/lockstepctl

deps: ## install what the tests need (Debian: podman, runc, registry, busybox)
	scripts/deps.sh

test: deps vet ## every test, real podman and registry included (installs its dependencies)
	CGO_ENABLED=1 LOCKSTEP_REQUIRE_REAL=1 $(GO) test -race -count=1 -timeout 30m $(PKGS)

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

demo: ## reconcile the demo catalog with a real podman service and print the report
	scripts/demo.sh

docs: ## regenerate docs/cli/ (markdown) and docs/man/ (man pages) from lockstepctl's commands
	$(GO) run ./cmd/lockstepctl gen-docs --markdown docs/cli --man docs/man

clean: ## remove build output
	rm -rf $(BIN)
