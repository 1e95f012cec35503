#!/usr/bin/env bash
# Deletes every kind cluster named site-<number> and the kubeconfigs create-clusters.sh wrote.
set -euo pipefail

if ! command -v kind >/dev/null; then
  echo "kind not found; nothing to delete" >&2
  exit 1
fi
here=$(cd "$(dirname "$0")" && pwd)
out="$(cd "$here/../.." && pwd)/kubeconfigs"

clusters=$(kind get clusters 2>/dev/null || true)
while read -r name; do
  [[ $name =~ ^site-[0-9]+$ ]] || continue
  kind delete cluster --name "$name"
  rm -f "$out/$name.kubeconfig" "$out/$name.internal.kubeconfig"
done <<<"$clusters"
