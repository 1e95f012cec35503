#!/usr/bin/env bash
# Copies the generated MultiCasskop CRD (crds/multicasskop.yaml, from `multi-casskop crd`) to
# where kustomize and Helm need it: inside their own roots (kustomize refuses files outside the
# kustomization directory; Helm only installs CRDs from the chart's crds/ folder).
#
#   bash deploy/sync-crds.sh          # copy
#   bash deploy/sync-crds.sh --check  # fail if a copy differs (tests/deploy.rs checks this too)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
source_crd="$repo/crds/multicasskop.yaml"
copies=("$repo/deploy/kustomize/crds/multicasskop.yaml" "$repo/deploy/helm/multi-casskop/crds/multicasskop.yaml")
status=0
for copy in "${copies[@]}"; do
  if [ "${1:-}" = --check ]; then
    if ! cmp -s "$source_crd" "$copy"; then
      echo "$copy differs from crds/multicasskop.yaml; run bash deploy/sync-crds.sh" >&2
      status=1
    fi
  else
    mkdir -p "$(dirname "$copy")"
    cp "$source_crd" "$copy"
    echo "copied crds/multicasskop.yaml to ${copy#"$repo"/}" >&2
  fi
done
exit "$status"
