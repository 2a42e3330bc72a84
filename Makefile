# Gantry's developer entry points, for a fresh Debian machine (no Docker).
# build, lint, fuzz, k8s, k8s-up and demo need only Go, git and the Go module
# proxy (lint also runs shellcheck when it is installed). argocd also needs
# Go 1.27, which the go command fetches from the proxy (GOTOOLCHAIN), and
# Redis from Debian's packages (scripts/install-redis.sh). tools, and so test
# and bench, also fetch those, Prometheus, runc and busybox-static from
# Debian's packages (scripts/install-deb.sh: apt-get download and dpkg -x
# into bin/, nothing installed) and the Node sample app's packages from the
# npm registry (npm ci: Node.js 18 or later and npm on PATH); test also
# needs root and iproute2's `ip` (the traffic tests make network namespaces
# and veth pairs; the Dockerfile tests start a rootful buildkitd). Nothing
# here installs Node.js, npm or iproute2 (.ci/run installs only shellcheck,
# with apt).

# trivy v0.74 (linked by the scan stage) needs the jsonv2 experiment for
# every build and test; set it once for the whole tree.
export GOEXPERIMENT := jsonv2
export CGO_ENABLED ?= 0
# One set of compiler flags for build, vet, test, the tools and the act
# tests' source installs (scripts/install.sh): every package is compiled
# once and shared through the build cache. (-trimpath on some commands and
# not on others compiled every dependency twice.) -buildvcs=false: no commit
# stamped into what we link, so make build's link of a stage is the same
# link as the act tests' source installs (scripts/install.sh) and the build
# cache serves it to them.
export GOFLAGS := -trimpath -buildvcs=false $(filter-out -trimpath -buildvcs=false,$(GOFLAGS))
# No symbol table or DWARF in what we link (binaries, tools, test binaries):
# links are faster and smaller; panics still show file:line.
LDFLAGS := -s -w

GO     ?= go
BIN    := $(CURDIR)/bin
STAGES := $(notdir $(wildcard cmd/*))

.PHONY: all build tools test lint bench fuzz demo clean k8s k8s-up k8s-down argocd FORCE

all: lint test

## build: every binary into bin/ (gantry-<stage> for cmd/<stage>, gantry for cmd/gantry, and the
## demo, gantry-demo, which ships in no release), in one go build (its links run side by side)
build:
	@mkdir -p $(BIN)/.stages
	$(GO) build -ldflags="$(LDFLAGS)" -o $(BIN)/.stages/ ./cmd/... ./internal/cmd/gantry-demo
	@for s in $(STAGES) gantry-demo; do \
	  out=gantry-$$s; [ $$s = gantry ] || [ $$s = gantry-demo ] && out=$$s; \
	  mv -f $(BIN)/.stages/$$s $(BIN)/$$out || exit 1; \
	done
	@echo "built: $$(cd $(BIN) && ls gantry* | tr '\n' ' ')"

## tools: everything the tests run, built from the module proxy by scripts/tools-build.sh (tools/README.md):
## actionlint, crane, cosign, syft, trivy, jv, fulcio, rekor, tsa, traefik, gitleaks into bin/ and the control plane
## (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok) into bin/k8s, from tools/go.mod,
## whose build list agrees with Gantry's (shared packages compile once); act and the Argo Rollouts
## controller from their own modules (tools/act, tools/rollouts-controller); Argo CD and kustomize
## into bin/argocd from theirs (tools/argocd, Go 1.27), with Debian's Redis; buildkitd and buildctl;
## prometheus, runc and busybox (the Dockerfile tests' base image) from Debian's packages; the Node
## sample app's npm packages (npm ci). Each set is cached by a stamp.
## TOOL_SETS picks the sets (.ci/run builds the control plane and Argo CD beside make lint instead).
TOOL_SETS := cli buildkit k8s act rollouts argocd
tools: $(BIN)/prometheus $(BIN)/runc $(BIN)/busybox $(BIN)/argocd/redis-server testdata/node-app/node_modules/.package-lock.json FORCE
	@scripts/tools-build.sh $(BIN) $(TOOL_SETS)
$(BIN)/prometheus:
	scripts/install-deb.sh $(BIN) prometheus usr/bin/prometheus prometheus
$(BIN)/runc:
	scripts/install-deb.sh $(BIN) runc usr/sbin/runc runc
$(BIN)/busybox:
	scripts/install-deb.sh $(BIN) busybox-static bin/busybox busybox --help
# Argo CD's cache (internal/argocdtest): Debian's redis-server, with the two libraries it needs in
# bin/argocd/lib (run it with LD_LIBRARY_PATH=bin/argocd/lib).
$(BIN)/argocd/redis-server:
	scripts/install-redis.sh $(BIN)/argocd
# The Node sample app's packages (express, prom-client, express-prom-bundle), from the npm registry
# at the versions its package-lock.json pins.
testdata/node-app/node_modules/.package-lock.json: testdata/node-app/package-lock.json
	cd testdata/node-app && npm ci --no-audit --no-fund --ignore-scripts

## k8s: only the control plane (bin/k8s), for k8s-up
k8s: FORCE
	@scripts/tools-build.sh $(BIN) k8s
## argocd: only Argo CD (bin/argocd: argocd, kustomize, redis-server, Argo CD's CRDs and git wrappers),
## for internal/argocdtest (with the control plane: make k8s)
argocd: $(BIN)/argocd/redis-server FORCE
	@scripts/tools-build.sh $(BIN) argocd
FORCE:

## k8s-up / k8s-down: start that control plane in the background (kubeconfig: bin/k8s/kubeconfig) / stop it
k8s-up: FORCE
	@scripts/tools-build.sh $(BIN) k8s kubectl
	scripts/k8s-up.sh $(BIN)/k8s
k8s-down:
	scripts/k8s-down.sh $(BIN)/k8s

## test: the whole suite. Tests start what they need (registries, Prometheus, a Kubernetes control plane);
## make builds the binaries they run first (tools, and build: the secret sweep runs bin/gantry-*)
# Four packages run at once (-p 4), the four longest first, so the suite's tail is short packages;
# measured, the suite keeps both cores busy from start to end (its real servers, act's jobs and the
# binaries they build all run on this machine), so what shortens it is less CPU work, not more overlap.
# -timeout 20m: on a cold machine the act workflow tests compile and run beside every other package's
# compiles and passed go test's default 10 minutes once (workflowtest alone takes ~2 minutes warm).
TEST_FIRST := ./internal/signing ./internal/workflowtest ./internal/rollout ./internal/analysis
test: tools build
	ACT=$(BIN)/act PROMETHEUS=$(BIN)/prometheus GANTRY_K8S_BIN=$(BIN)/k8s GANTRY_ARGOCD_BIN=$(BIN)/argocd $(GO) test -p 4 -timeout 20m -ldflags="$(LDFLAGS)" -count=1 $(TEST_FIRST) ./...
	cd testdata/app && $(GO) test -timeout 20m -ldflags="$(LDFLAGS)" -count=1 ./...

## lint: go vet, gofmt, actionlint on every workflow, the project's check of every action.yml, and
## that tools/go.mod agrees with go.mod (scripts/tools-sync.sh --check). Of the tools it needs only
## the cli set (actionlint), so it can run while the control plane builds.
lint: build FORCE
	@scripts/tools-build.sh $(BIN) cli
	$(GO) vet ./...
	cd testdata/app && $(GO) vet ./...
	@unformatted=$$(gofmt -l cmd internal testdata/app); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed on: $$unformatted"; exit 1; fi
	$(BIN)/actionlint
	$(BIN)/gantry check-actions
	@# What ships links no test code: no cmd/ binary imports a test server (internal/*test, internal/test*).
	@# (internal/dist's TestShippedBinariesLinkNoTestCode checks the same, slack-go's slacktest and
	@# internal/golden too, for every release platform, in make test.)
	@deps=$$($(GO) list -deps ./cmd/...) || exit 1; \
	  linked=$$(echo "$$deps" | grep -E '^github.com/gantry-ci/gantry/internal/(.*/)?([a-z]*test|test[a-z]*)$$' || true); \
	  if [ -n "$$linked" ]; then echo "cmd/ links test packages: $$linked"; exit 1; fi
	scripts/tools-sync.sh --check
	@# The scripts every action runs (locate, fetch, install) and CI's own.
	@if command -v shellcheck >/dev/null 2>&1; then shellcheck scripts/*.sh .ci/run; \
	  else echo "shellcheck not installed: scripts not checked"; fi

## bench: speed goals, measured side by side with the tools we replace
bench: build tools
	CRANE=$(BIN)/crane $(GO) test -run '^$$' -bench . -benchtime 5x -count 3 ./internal/...

## fuzz: every native fuzz target for FUZZTIME each (default 30s; their seeds run in make test);
## crashes land in the package's testdata/fuzz as regression seeds
fuzz:
	scripts/fuzz.sh

## demo: gantry run on the sample app with its gantry.yaml (testdata/demo/app): multi-arch image in the
## local registry, SBOMs, scan gate, local-key signatures, staging deploy (on the local control plane when
## make k8s built it, else a plan); then a release, a blue-green rollout and Slack. DEMO_FLAGS=-keep keeps its files.
DEMO_FLAGS ?=
demo: build
	$(BIN)/gantry-demo $(DEMO_FLAGS)

clean:
	rm -rf $(BIN) oci-layout gantry-release.json
