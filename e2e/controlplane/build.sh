#!/usr/bin/env bash
# Builds the test control-plane binary (embedded etcd + kube-apiserver) once and caches it outside
# the repository, keyed by everything that goes into it: the Go version, go.mod, go.sum, the Go
# sources and the link flags. Prints the binary's path on stdout; build progress goes to stderr.
#
#   KUBE_CONTROLPLANE_CACHE  cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/multi-casskop/controlplane)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export GOTOOLCHAIN=local
kube_version=$(awk '$1=="require" && $2=="k8s.io/kubernetes" {print $3; exit} $1=="k8s.io/kubernetes" && $2 ~ /^v1\./ {print $2; exit}' "$here/go.mod")
minor=$(echo "$kube_version" | cut -d. -f2)
version_pkg=k8s.io/component-base/version
ldflags="-s -w -X $version_pkg.gitVersion=$kube_version -X $version_pkg.gitMajor=1 -X $version_pkg.gitMinor=$minor -X $version_pkg.gitTreeState=clean -X $version_pkg.buildDate=1970-01-01T00:00:00Z"
key=$({ go version; cat "$here/go.mod" "$here/go.sum" "$here"/*.go; echo "$ldflags"; } | sha256sum | cut -c1-16)
cache_root=${KUBE_CONTROLPLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/multi-casskop/controlplane}
out="$cache_root/$kube_version-$key/kube-controlplane"
if [ ! -x "$out" ]; then
  mkdir -p "$(dirname "$out")"
  echo "building kube-controlplane $kube_version into $out (cold: ~10-20 min on 2 cores; cached afterwards)" >&2
  start=$(date +%s)
  # -v names each package as it is compiled; show a count so a long build is visibly moving.
  (cd "$here" && CGO_ENABLED=0 go build -v -trimpath -ldflags "$ldflags" -o "$out.tmp" .) 2>&1 |
    awk '/^(go: |#|[^ ]*\.go:)/ {print > "/dev/stderr"; next} {n++; if (n % 100 == 0) {printf "  ... %d packages compiled\n", n > "/dev/stderr"; fflush("/dev/stderr")}}'
  [ -s "$out.tmp" ] || { echo "kube-controlplane build failed" >&2; exit 1; }
  mv "$out.tmp" "$out"
  echo "built kube-controlplane in $(($(date +%s) - start)) s" >&2
fi
echo "$out"
