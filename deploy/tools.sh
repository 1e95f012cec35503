#!/usr/bin/env bash
# Builds the deployment tools (kustomize, helm) from source with the local Go toolchain, once,
# and caches them outside the repository, keyed by tool version and Go version. Prints the path
# of each binary asked for (default: kustomize then helm), one per line, on stdout; build
# progress goes to stderr.
#
#   bash deploy/tools.sh                 # both paths
#   bash deploy/tools.sh helm            # only helm's
#
#   MULTICASSKOP_TOOLS_CACHE  cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/multi-casskop/tools)
#
# Cold builds on 2 cores: kustomize ~1-2 min, helm ~3-5 min (they need the Go module proxy).
# Versions are pinned to the newest releases whose go.mod accepts the local toolchain (go 1.26):
# kustomize v5.8.3 already asks for go 1.27.
set -euo pipefail
export GOTOOLCHAIN=local CGO_ENABLED=0

KUSTOMIZE_VERSION=v5.8.2
HELM_VERSION=v3.22.0

cache_root=${MULTICASSKOP_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/multi-casskop/tools}
go_version=$(go env GOVERSION)

# build NAME VERSION PACKAGE@VERSION [LDFLAGS]: installs into the cache unless already there.
build() {
  local name=$1 version=$2 pkg=$3 ldflags="-s -w ${4:-}"
  local dir="$cache_root/$name-$version-$go_version"
  local out="$dir/$name"
  if [ ! -x "$out" ]; then
    mkdir -p "$dir"
    # Concurrent callers (parallel test binaries) wait for one build instead of racing.
    exec {lock}>"$dir.lock"
    flock "$lock"
    if [ ! -x "$out" ]; then
      echo "building $name $version into $out" >&2
      local start tmp
      start=$(date +%s)
      tmp=$(mktemp -d "$dir.tmp.XXXXXX")
      GOBIN="$tmp" go install -trimpath -ldflags "$ldflags" "$pkg" >&2
      mv "$tmp/$name" "$out"
      rmdir "$tmp"
      echo "built $name $version in $(($(date +%s) - start)) s" >&2
    fi
    exec {lock}>&-
  fi
  echo "$out"
}

[ $# -gt 0 ] || set -- kustomize helm
for tool in "$@"; do
  case $tool in
    kustomize)
      build kustomize "$KUSTOMIZE_VERSION" "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" \
        "-X sigs.k8s.io/kustomize/api/provenance.version=$KUSTOMIZE_VERSION"
      ;;
    helm)
      build helm "$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" \
        "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
      ;;
    *)
      echo "unknown tool $tool (known: kustomize, helm)" >&2
      exit 2
      ;;
  esac
done
