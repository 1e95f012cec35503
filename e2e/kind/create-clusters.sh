#!/usr/bin/env bash
# Creates N kind clusters named site-1 .. site-N (default 3) and writes, for each:
#   <repo>/kubeconfigs/site-<i>.kubeconfig           context "site-<i>", server on the host's 127.0.0.1
#   <repo>/kubeconfigs/site-<i>.internal.kubeconfig  context "site-<i>", server reachable from the
#                                                    other kind clusters (docker network "kind")
# Existing clusters are kept; their kubeconfigs are rewritten. Needs docker, kind and kubectl.
set -euo pipefail

count=${1:-3}
if ! [[ $count =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [N]   (N >= 1 clusters, default 3)" >&2
  exit 2
fi
for tool in docker kind kubectl; do
  if ! command -v "$tool" >/dev/null; then
    echo "$tool not found; install it first (kind: https://kind.sigs.k8s.io/docs/user/quick-start/)" >&2
    exit 1
  fi
done

here=$(cd "$(dirname "$0")" && pwd)
out="$(cd "$here/../.." && pwd)/kubeconfigs"
mkdir -p "$out"
existing=$(kind get clusters 2>/dev/null || true)

# write_kubeconfig NAME FILE [--internal]: kind's kubeconfig with its context renamed to NAME.
write_kubeconfig() {
  local name=$1 file=$2
  shift 2
  local tmp="$file.tmp"
  (umask 077 && kind get kubeconfig --name "$name" "$@" >"$tmp")
  KUBECONFIG=$tmp kubectl config rename-context "kind-$name" "$name" >/dev/null
  mv "$tmp" "$file"
}

for i in $(seq 1 "$count"); do
  name="site-$i"
  if grep -qx "$name" <<<"$existing"; then
    echo "kind cluster $name exists; keeping it"
  else
    kind create cluster --name "$name" --wait 180s
  fi
  write_kubeconfig "$name" "$out/$name.kubeconfig"
  write_kubeconfig "$name" "$out/$name.internal.kubeconfig" --internal
  echo "$name: $out/$name.kubeconfig (context $name)"
done
