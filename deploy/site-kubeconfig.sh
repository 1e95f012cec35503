#!/usr/bin/env bash
# Makes the kubeconfig multi-casskop uses to reach a site, for the ServiceAccount of
# deploy/site-rbac (apply that to the site first), and prints it wrapped in the Secret the
# controller picks up on the management cluster (label multicasskop.db.orange.com/site-kubeconfig
# = site name, kubeconfig under the key `kubeconfig`):
#
#   bash deploy/site-kubeconfig.sh --site k8s-cluster2 --context k8s-cluster2 \
#     | kubectl --context management apply -n multi-casskop -f -
#
# Options:
#   --site NAME               site name, as used in MultiCasskop spec.override (required)
#   --context CTX             kubeconfig context of the site (default: the current context)
#   --kubeconfig FILE         kubeconfig holding that context (default: kubectl's default)
#   --namespace NS            namespace of the ServiceAccount (default: cassandra)
#   --service-account NAME    ServiceAccount (default: multi-casskop-site)
#   --secret-namespace NS     namespace of the Secret, the controller's (default: multi-casskop)
#   --duration D              token lifetime (default: 8760h; the API server may cap it, see
#                             --service-account-max-token-expiration). Rerun before it expires:
#                             the controller reloads a changed Secret without restart.
#   --kubeconfig-only         print the kubeconfig instead of the Secret
#
# The token comes from the TokenRequest API (kubectl create token); the server URL and CA come
# from the site's entry in your kubeconfig, so that URL must be reachable from the management
# cluster's pods.
set -euo pipefail

site="" context="" kubeconfig="" namespace=cassandra service_account=multi-casskop-site
secret_namespace=multi-casskop duration=8760h kubeconfig_only=false
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --site) site=$2; shift 2 ;;
    --context) context=$2; shift 2 ;;
    --kubeconfig) kubeconfig=$2; shift 2 ;;
    --namespace) namespace=$2; shift 2 ;;
    --service-account) service_account=$2; shift 2 ;;
    --secret-namespace) secret_namespace=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --kubeconfig-only) kubeconfig_only=true; shift ;;
    -h|--help) usage ;;
    *) echo "unknown option $1" >&2; usage ;;
  esac
done
[ -n "$site" ] || { echo "--site is required" >&2; usage; }
if ! [[ $site =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || [ ${#site} -gt 58 ]; then
  echo "site name $site must be a DNS label (lower-case letters, digits, '-') of at most 58 characters" >&2
  exit 2
fi

k=(kubectl)
[ -z "$kubeconfig" ] || k+=(--kubeconfig "$kubeconfig")
[ -z "$context" ] || k+=(--context "$context")

view=("${k[@]}" config view --raw --minify --flatten)
server=$("${view[@]}" -o jsonpath='{.clusters[0].cluster.server}')
ca=$("${view[@]}" -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
insecure=$("${view[@]}" -o jsonpath='{.clusters[0].cluster.insecure-skip-tls-verify}')
[ -n "$server" ] || { echo "no server URL for context ${context:-(current)}" >&2; exit 1; }
if [ -n "$ca" ]; then
  tls="certificate-authority-data: $ca"
elif [ "$insecure" = true ]; then
  tls="insecure-skip-tls-verify: true"
else
  tls=""
fi
token=$("${k[@]}" -n "$namespace" create token "$service_account" --duration "$duration")

config=$(cat <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
  - name: $site
    cluster:
      server: $server
      $tls
users:
  - name: $site-$service_account
    user:
      token: $token
contexts:
  - name: $site
    context:
      cluster: $site
      user: $site-$service_account
      namespace: $namespace
current-context: $site
KUBECONFIG
)

if $kubeconfig_only; then
  printf '%s\n' "$config"
  exit 0
fi
cat <<SECRET
apiVersion: v1
kind: Secret
type: Opaque
metadata:
  name: site-$site
  namespace: $secret_namespace
  labels:
    multicasskop.db.orange.com/site-kubeconfig: $site
data:
  kubeconfig: $(printf '%s\n' "$config" | base64 | tr -d '\n')
SECRET
