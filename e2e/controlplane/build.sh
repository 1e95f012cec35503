#!/usr/bin/env bash
# Builds a test binary once and caches it outside the repository, keyed by everything that goes
# into it: the Go version, go.mod, go.sum, the Go sources and the link flags. Prints the binary's
# path on stdout; build progress goes to stderr.
#
#   build.sh [kube-controlplane]  embedded etcd + kube-apiserver (main.go)
#   build.sh kube-sitectl         kube-controller-manager and kube-scheduler, same k8s.io/kubernetes
#                                 version and module as kube-controlplane (sitectl/main.go)
#   build.sh kwok                 kwok (module kwok/), with its stage files copied to stages/ beside it
#
#   KUBE_CONTROLPLANE_CACHE  cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/multi-casskop/controlplane)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export GOTOOLCHAIN=local
target=${1:-kube-controlplane}
cache_root=${KUBE_CONTROLPLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/multi-casskop/controlplane}

# The kwok stage files the harness uses (as kwokctl does): nodes become Ready and keep a lease,
# pods become Running/Ready, complete, and go away when deleted.
kwok_stages="node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml
pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml"

case "$target" in
  kube-controlplane | kube-sitectl)
    module=$here
    kube_version=$(awk '$1=="require" && $2=="k8s.io/kubernetes" {print $3; exit} $1=="k8s.io/kubernetes" && $2 ~ /^v1\./ {print $2; exit}' "$here/go.mod")
    minor=$(echo "$kube_version" | cut -d. -f2)
    version_pkg=k8s.io/component-base/version
    ldflags="-s -w -X $version_pkg.gitVersion=$kube_version -X $version_pkg.gitMajor=1 -X $version_pkg.gitMinor=$minor -X $version_pkg.gitTreeState=clean -X $version_pkg.buildDate=1970-01-01T00:00:00Z"
    if [ "$target" = kube-controlplane ]; then
      pkg=.
      key=$({ go version; cat "$here/go.mod" "$here/go.sum" "$here"/*.go; echo "$ldflags"; } | sha256sum | cut -c1-16)
      dir="$kube_version-$key"
      cold="~8 min"
    else
      pkg=./sitectl
      key=$({ go version; cat "$here/go.mod" "$here/go.sum" "$here"/sitectl/*.go; echo "$ldflags"; } | sha256sum | cut -c1-16)
      dir="sitectl-$kube_version-$key"
      cold="~5 min after kube-controlplane, which shares most packages"
    fi
    ;;
  kwok)
    module=$here/kwok
    pkg=sigs.k8s.io/kwok/cmd/kwok
    kwok_version=$(awk '$1=="sigs.k8s.io/kwok" {print $2; exit}' "$module/go.mod")
    ldflags="-s -w"
    key=$({ go version; cat "$module/go.mod" "$module/go.sum"; echo "$ldflags"; echo "$kwok_stages"; } | sha256sum | cut -c1-16)
    dir="kwok-$kwok_version-$key"
    cold="~4 min"
    ;;
  *)
    echo "usage: build.sh [kube-controlplane|kube-sitectl|kwok]" >&2
    exit 2
    ;;
esac

out="$cache_root/$dir/$target"
if [ ! -x "$out" ]; then
  mkdir -p "$(dirname "$out")"
  echo "building $target into $out (cold: $cold on 2 cores; cached afterwards)" >&2
  start=$(date +%s)
  tmp="$out.tmp.$$"
  trap 'rm -f "$tmp"' EXIT
  if [ "$target" = kwok ]; then
    # The stage files ship in the kwok module (pinned by go.sum); copy them before the binary,
    # whose presence marks a complete cache directory.
    src=$(cd "$module" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
    [ -n "$src" ] || { (cd "$module" && go mod download sigs.k8s.io/kwok) && src=$(cd "$module" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok); }
    mkdir -p "$cache_root/$dir/stages"
    for stage in $kwok_stages; do
      install -m 0644 "$src/kustomize/stage/$stage" "$cache_root/$dir/stages/"
    done
  fi
  # -v names each package as it is compiled; show a count so a long build is visibly moving.
  (cd "$module" && CGO_ENABLED=0 go build -v -trimpath -ldflags "$ldflags" -o "$tmp" "$pkg") 2>&1 |
    awk '/^(go: |#|[^ ]*\.go:)/ {print > "/dev/stderr"; next} {n++; if (n % 100 == 0) {printf "  ... %d packages compiled\n", n > "/dev/stderr"; fflush("/dev/stderr")}}'
  [ -s "$tmp" ] || { echo "$target build failed" >&2; exit 1; }
  mv "$tmp" "$out"
  echo "built $target in $(($(date +%s) - start)) s" >&2
fi
echo "$out"
