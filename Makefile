# Gantry's developer entry points. Every target works on a fresh machine with
# only Go, git and the Go module proxy.

# trivy v0.74 (linked by the scan stage) needs the jsonv2 experiment for
# every build and test; set it once for the whole tree.
export GOEXPERIMENT := jsonv2
export CGO_ENABLED ?= 0
# One set of compiler flags for build, vet, test, the tools and the act
# tests' source installs (scripts/install.sh): every package is compiled
# once and shared through the build cache. (-trimpath on some commands and
# not on others compiled every dependency twice.)
export GOFLAGS := -trimpath $(filter-out -trimpath,$(GOFLAGS))
# No symbol table or DWARF in what we link (binaries, tools, test binaries):
# links are faster and smaller; panics still show file:line.
LDFLAGS := -s -w

GO     ?= go
BIN    := $(CURDIR)/bin
STAGES := $(notdir $(wildcard cmd/*))
TOOLS  := $(BIN)/actionlint $(BIN)/crane $(BIN)/act
# CLIs the tests cross-check against and the local sigstore the keyless tests
# sign with: one module each under tools/ (their dependency graphs disagree).
XTOOLS := cosign syft trivy fulcio rekor tsa jv traefik rollouts-controller

.PHONY: all build tools test lint bench demo clean k8s k8s-up k8s-down

all: lint test

## build: every binary into bin/ (gantry-<stage> for cmd/<stage>, gantry for cmd/gantry)
build:
	@mkdir -p $(BIN)
	@for s in $(STAGES); do \
	  out=gantry-$$s; [ $$s = gantry ] && out=gantry; \
	  $(GO) build -ldflags="$(LDFLAGS)" -o $(BIN)/$$out ./cmd/$$s || exit 1; \
	done
	@echo "built: $$(cd $(BIN) && ls gantry* | tr '\n' ' ')"

## tools: actionlint, crane and act, pinned in tools/go.mod, built from the module proxy; prometheus from Debian's package
tools: $(TOOLS) $(BIN)/prometheus $(addprefix $(BIN)/,$(XTOOLS))
$(TOOLS): tools/go.mod tools/go.sum
	@mkdir -p $(BIN)
	cd tools && $(GO) build -ldflags="$(LDFLAGS)" -o $(BIN)/ github.com/rhysd/actionlint/cmd/actionlint github.com/google/go-containerregistry/cmd/crane github.com/nektos/act
# tools/<name>/go.mod pins one tool directive; build it as bin/<name>.
$(addprefix $(BIN)/,$(XTOOLS)): $(BIN)/%: tools/%/go.mod tools/%/go.sum
	@mkdir -p $(BIN)
	cd tools/$* && $(GO) build -ldflags="$(LDFLAGS)" -o $@ $$(awk '$$1 == "tool" {print $$2}' go.mod)
$(BIN)/prometheus:
	scripts/install-prometheus.sh $(BIN)

## k8s: Kubernetes control-plane binaries for the deploy tests (etcd, kube-apiserver, kube-controller-manager,
## kube-scheduler, kubectl, kwok), pinned in tools/k8s/*/go.mod, built from the module proxy into bin/k8s (cached)
## (the script is the cache check: every binary present and .stamp matching the pinned versions, else it builds)
k8s: $(BIN)/k8s/.stamp
$(BIN)/k8s/.stamp: FORCE
	@scripts/k8s-build.sh $(BIN)/k8s
FORCE:

## k8s-up / k8s-down: start that control plane in the background (kubeconfig: bin/k8s/kubeconfig) / stop it
k8s-up: k8s
	scripts/k8s-up.sh $(BIN)/k8s
k8s-down:
	scripts/k8s-down.sh $(BIN)/k8s

## test: the whole suite. Tests start what they need (registries, Prometheus, a Kubernetes control plane);
## make builds the binaries they run first (tools, k8s: the first k8s build takes ~10 minutes, then it is cached)
test: tools k8s
	ACT=$(BIN)/act PROMETHEUS=$(BIN)/prometheus GANTRY_K8S_BIN=$(BIN)/k8s $(GO) test -ldflags="$(LDFLAGS)" -count=1 ./...
	cd testdata/app && $(GO) test -ldflags="$(LDFLAGS)" -count=1 ./...

## lint: go vet, gofmt, actionlint on every workflow, and the project's check of every action.yml
lint: build tools
	$(GO) vet ./...
	cd testdata/app && $(GO) vet ./...
	@unformatted=$$(gofmt -l cmd internal testdata/app); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed on: $$unformatted"; exit 1; fi
	$(BIN)/actionlint
	$(BIN)/gantry check-actions
	@# The scripts every action runs (locate, fetch, install) and CI's own.
	@if command -v shellcheck >/dev/null 2>&1; then shellcheck scripts/*.sh .ci/run; \
	  else echo "shellcheck not installed: scripts not checked"; fi

## bench: speed goals, measured side by side with the tools we replace
bench: build tools
	CRANE=$(BIN)/crane $(GO) test -run '^$$' -bench . -benchtime 5x -count 3 ./internal/...

## demo: the main job on embedded defaults (sample app -> multi-arch image -> embedded registry)
demo: build
	$(BIN)/gantry demo

clean:
	rm -rf $(BIN) oci-layout gantry-release.json
