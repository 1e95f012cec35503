# multi-casskop developer commands. `make test` is what CI runs.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

# The control-plane binary (kube-apiserver + etcd) is built once and cached outside the repo,
# like the binaries of sites with workloads (controller-manager + scheduler, and kwok).
CONTROLPLANE = $(shell bash e2e/controlplane/build.sh)
SITECTL = $(shell bash e2e/controlplane/build.sh kube-sitectl)
KWOK = $(shell bash e2e/controlplane/build.sh kwok)

.PHONY: test lint unit e2e crd controlplane workloads demo bench

## test: formatting, lints, stale-CRD check, unit tests and end-to-end tests on real API servers
test: lint
	bash e2e/check-inputs.sh
	cargo build --examples
	KUBE_CONTROLPLANE_BIN="$(CONTROLPLANE)" KUBE_SITECTL_BIN="$(SITECTL)" KWOK_BIN="$(KWOK)" cargo test --workspace --all-targets

## lint: rustfmt, clippy (warnings are errors), shellcheck, gofmt
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	if command -v shellcheck >/dev/null; then shellcheck .ci/run e2e/controlplane/build.sh e2e/check-inputs.sh e2e/kind/*.sh deploy/*.sh; fi
	test -z "$$(gofmt -l e2e/controlplane)"

## demo: three local sites, the CassKop simulator and the controller rolling out samples/multicasskop-three-regions.yaml
demo:
	@echo "building the demo (first run: the kube-apiserver build takes ~8 min, then ~1 min of cargo)"
	cargo build -q --example demo
	KUBE_CONTROLPLANE_BIN="$(CONTROLPLANE)" cargo run -q --example demo -- $(DEMO_ARGS)

## bench: convergence, scale and cost at rest on three local sites; writes BENCHMARKS.md/.json (about 10 minutes)
bench:
	cargo build --release --bin multi-casskop --example bench
	KUBE_CONTROLPLANE_BIN="$(CONTROLPLANE)" cargo run -q --release --example bench

## unit: the pure core and everything that needs no cluster
unit:
	cargo test -p multi-casskop --lib --test samples

## crd: regenerate crds/multicasskop.yaml
crd:
	cargo run -q -- crd > crds/multicasskop.yaml
	bash deploy/sync-crds.sh

## controlplane: build (or reuse) the cached kube-apiserver binary and print its path
controlplane:
	@echo "$(CONTROLPLANE)"

## workloads: build (or reuse) the cached kube-sitectl (controller-manager, scheduler) and kwok binaries and print their paths
workloads:
	@echo "$(SITECTL)"
	@echo "$(KWOK)"
