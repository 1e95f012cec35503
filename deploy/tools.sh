#!/usr/bin/env bash
# Builds the deployment tools (kustomize, helm) from source with the local Go toolchain, once,
# and caches them outside the repository, keyed by tool version, Go version and link flags.
# Prints the path of each binary asked for (default: kustomize then helm), one per line, on
# stdout; build progress goes to stderr.
#
#   bash deploy/tools.sh                 # both paths
#   bash deploy/tools.sh helm            # only helm's
#
#   MULTICASSKOP_TOOLS_CACHE  cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/multi-casskop/tools)
#
# Cold builds on 2 cores (measured, empty Go build cache): kustomize 47 s, helm 122 s; they need
# the Go module proxy the first time. With a warm Go build cache: a few seconds.
# Versions are pinned to the newest releases whose go.mod accepts the local toolchain (go 1.26):
# kustomize v5.8.3 already asks for go 1.27.
set -euo pipefail
export GOTOOLCHAIN=local CGO_ENABLED=0

KUSTOMIZE_VERSION=v5.8.2
HELM_VERSION=v3.22.0
# Like helm's Makefile: `helm template`/`helm lint` assume the Kubernetes minor of the client-go in
# helm's go.mod (k8s.io/client-go v0.37.0 for v3.22.0); unset, helm assumes 1.20, which charts
# with a kubeVersion constraint reject. Update with HELM_VERSION.
HELM_K8S_MINOR=37

command -v go >/dev/null || { echo "deploy/tools.sh needs the Go toolchain (go) to build kustomize and helm" >&2; exit 1; }
cache_root=${MULTICASSKOP_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/multi-casskop/tools}
go_version=$(go env GOVERSION)

# build NAME VERSION PACKAGE@VERSION [LDFLAGS]: installs into the cache unless already there.
build() {
  local name=$1 version=$2 pkg=$3 ldflags="-s -w ${4:-}"
  local key
  key=$(echo "$go_version $pkg $ldflags" | sha256sum | cut -c1-12)
  local dir="$cache_root/$name-$version-$key"
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
        "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$HELM_K8S_MINOR -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$HELM_K8S_MINOR"
      ;;
    *)
      echo "unknown tool $tool (known: kustomize, helm)" >&2
      exit 2
      ;;
  esac
done
