# kpulse: the commands a newcomer needs. `make help` lists them.
SHELL := /bin/sh
GO ?= go
# Tests get a generous ceiling; a fresh machine builds the control plane and kwok first (15-35 min
# on two cores, cached).
TEST_TIMEOUT ?= 25m
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/kpulse/kpulse/internal/app.Version=$(VERSION)

.PHONY: help build test unit lint controlplane demo clean preview fuzz

# FUZZ_TARGETS are every fuzz target of the repository, as package:Target, as dev/fuzz-targets.sh
# finds them (any `func FuzzX(f *testing.F)`); `make fuzz` runs each for FUZZTIME, one after
# another (go test fuzzes one target per run). `make test` runs their seeds: those the target
# adds, and the files under the package's testdata/fuzz/<Target>, where a crash the fuzzer finds
# is written and stays as a regression case.
FUZZ_TARGETS ?= $(shell dev/fuzz-targets.sh)
FUZZTIME ?= 30s
# Go minimizes every input that finds new coverage, for up to a minute by default, and executes
# nothing new meanwhile: a short minimization leaves most of FUZZTIME to fuzzing.
FUZZMINIMIZETIME ?= 5s

help: ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## build bin/kpulse for this machine
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/kpulse ./cmd/kpulse

controlplane: ## build (or find cached) the test control plane and kwok (progress on stderr)
	@dev/tools/controlplane.sh >/dev/null && dev/tools/tool.sh kwok >/dev/null

test: lint ## run every test with -race against a real control plane (bare, and with controllers and kwok)
	@assets=$$(dev/tools/controlplane.sh) && kwok=$$(dev/tools/tool.sh kwok) && \
	echo "make test: control plane binaries in $$assets, kwok $$kwok" && \
	KUBEBUILDER_ASSETS=$$assets KPULSE_KWOK=$$kwok $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

unit: ## run only the tests that need no control plane
	$(GO) test -race -count=1 ./internal/config/ ./internal/detect/ ./internal/incident/ ./internal/notifiers/

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

fuzz: ## run each fuzz target for FUZZTIME (default 30s); a crash is saved in its package's testdata/fuzz
	@set -- $(FUZZ_TARGETS); total=$$#; i=0; failed=; \
	for t in "$$@"; do \
		i=$$((i + 1)); pkg=$${t%%:*}; name=$${t##*:}; \
		echo "make fuzz: [$$i/$$total] $$name in $$pkg for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) $$pkg || failed="$$failed $$name"; \
	done; \
	if [ -n "$$failed" ]; then \
		echo "make fuzz: failed:$$failed (each failing input is under its package's testdata/fuzz/<Target>/)"; exit 1; \
	fi; \
	echo "make fuzz: $$total targets, $(FUZZTIME) each, no failure"

demo: ## start a local cluster (controllers, scheduler, kwok's node), kpulse and a webhook sink, apply dev/triggers, watch the alerts
	@assets=$$(dev/tools/controlplane.sh) && kwok=$$(dev/tools/tool.sh kwok) && \
	KUBEBUILDER_ASSETS=$$assets KPULSE_KWOK=$$kwok $(GO) run ./dev/demo

clean: ## remove build output (the cached control plane stays; see dev/tools/controlplane.sh)
	rm -rf bin

preview: ## render sample email and Slack alerts to preview/*.png (headless Chromium if installed, else HTML)
	$(GO) run ./dev/preview -out preview

.PHONY: bench bench-cluster
bench: ## measure kpulse against a bare informer: latency, memory, CPU, storm (SIZES=1000,10000 SOAK=10m PROFILE=dir ARGS=-json)
	@mkdir -p bin && CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/kpulse ./cmd/kpulse && \
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/bench-floor ./dev/bench/floor && \
	$(GO) build -o bin/bench ./dev/bench && \
	assets=$$(dev/tools/controlplane.sh) && \
	KUBEBUILDER_ASSETS=$$assets bin/bench -kpulse bin/kpulse -floor bin/bench-floor \
		$(if $(SIZES),-sizes $(SIZES)) $(if $(SOAK),-soak $(SOAK)) $(if $(PROFILE),-profile $(PROFILE)) $(ARGS)

bench-cluster: ## bench on real Deployments, controllers and kwok nodes (NODES=200 DEPLOYMENTS=1000 REPLICAS=10 ARGS=-json)
	@mkdir -p bin && CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/kpulse ./cmd/kpulse && \
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/bench-floor ./dev/bench/floor && \
	$(GO) build -o bin/bench ./dev/bench && \
	assets=$$(dev/tools/controlplane.sh) && kwok=$$(dev/tools/tool.sh kwok) && \
	KUBEBUILDER_ASSETS=$$assets KPULSE_KWOK=$$kwok bin/bench controllers -kpulse bin/kpulse -floor bin/bench-floor \
		$(if $(NODES),-nodes $(NODES)) $(if $(DEPLOYMENTS),-deployments $(DEPLOYMENTS)) $(if $(REPLICAS),-replicas $(REPLICAS)) $(ARGS)
