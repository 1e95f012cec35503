#!/usr/bin/env bash
# Checks, before `make test`, the two inputs that do not live in this repository:
#   - CassKop's CassandraCluster CRDs (both flavours), installed at every test site;
#   - the recorded traces of the real CassKop, which the simulator's conformance test replays.
# On a machine without them it says exactly what is missing and how to provide it, instead of
# letting a test fail on a bare path.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
crds="${CASSKOP_CRDS_DIR:-$repo/../shared/crds}"
traces="${CASSKOP_TRACES_DIR:-$repo/../shared/casskop-traces}"
missing=0

# name  sha256  where it comes from
expect=(
  "casskop-cscetbon-cassandraclusters.yaml f2a7f0378f4793c8b6558505d65364460fb8f874bfee00eac7640a3ef3801af8 github.com/cscetbon/casskop config/crd/bases/db.orange.com_cassandraclusters.yaml (commit 40f5dfa9; has a status subresource)"
  "casskop-orange-v2.1.0-cassandraclusters.yaml 173fe2c3ed12178ad5a3ac298c7ce12934324283634ff56fc50e3375d689f673 github.com/Orange-OpenSource/casskop v2.1.0, the CassandraCluster CRD as apiextensions.k8s.io/v1 (no status subresource)"
)
for entry in "${expect[@]}"; do
  read -r name sum source <<<"$entry"
  file="$crds/$name"
  if [[ ! -f "$file" ]]; then
    echo "missing: $file" >&2
    echo "  from: $source" >&2
    echo "  sha256: $sum" >&2
    missing=1
  elif [[ "$(sha256sum "$file" | cut -d' ' -f1)" != "$sum" ]]; then
    echo "warning: $file differs from the pinned copy (sha256 $sum); tests may disagree with CassKop" >&2
  fi
done
for name in trace-cc1.jsonl trace-cc2.jsonl; do
  if [[ ! -f "$traces/$name" ]]; then
    echo "missing: $traces/$name (recorded watch traces of the real CassKop; see the README's Development section)" >&2
    missing=1
  fi
done
if [[ $missing -ne 0 ]]; then
  cat >&2 <<MSG

make test needs these files. Put the CRDs in one directory and point CASSKOP_CRDS_DIR at it
(default: ../shared/crds beside this repository), and the traces likewise with
CASSKOP_TRACES_DIR (default: ../shared/casskop-traces). Example:
  CASSKOP_CRDS_DIR=/path/to/crds CASSKOP_TRACES_DIR=/path/to/traces make test
MSG
  exit 1
fi
