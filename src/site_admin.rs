//! `multi-casskop site add|list|remove`: onboarding a region without external tools.
//!
//! `add` uses the operator's own kubeconfig context for the remote cluster to create there a
//! service account with the least privilege the controller needs (CassandraClusters and their
//! status in one namespace, nothing else), mints a token for it (TokenRequest), and stores a
//! kubeconfig built from it as a labelled Secret in the management cluster, which a running
//! controller picks up without restart. This replaces the Go version's `kubemcsa export`.

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::Kubeconfig;
use serde_json::json;

use crate::labels::{
    SITE_ACCOUNT, SITE_ADD_FIELD_MANAGER, SITE_NAMESPACE_ANNOTATION, SITE_SECRET_LABEL,
};
use crate::sites::SiteSource;
use crate::sites::connect;
use crate::sites::secrets::read_secret;

/// Default namespace of the site Secrets (where the controller is deployed).
pub const DEFAULT_SECRETS_NAMESPACE: &str = "multi-casskop";

/// What went wrong while onboarding or listing sites.
#[derive(Debug, thiserror::Error)]
pub enum SiteAdminError {
    /// The operator's kubeconfig cannot be used.
    #[error("kubeconfig {origin}: {message}")]
    Kubeconfig {
        /// File or "default".
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// A connection could not be set up.
    #[error(transparent)]
    Connect(#[from] connect::ConnectError),
    /// An API request failed.
    #[error(
        "{what} failed: {source}; check that your context may do this (RBAC) and the cluster answers"
    )]
    Api {
        /// What we tried.
        what: String,
        /// Cause.
        source: kube::Error,
    },
}

fn api_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> SiteAdminError {
    let what = what.into();
    move |source| SiteAdminError::Api { what, source }
}

/// What `site add` needs.
#[derive(Clone, Debug)]
pub struct AddOptions {
    /// Site name, as used in `spec.override`.
    pub site: String,
    /// The operator's kubeconfig for the remote cluster (default: `$KUBECONFIG` or `~/.kube/config`).
    pub kubeconfig: Option<PathBuf>,
    /// Context of that kubeconfig for the remote cluster.
    pub context: String,
    /// Namespace of the CassandraClusters at the site.
    pub namespace: String,
    /// Namespace of the site Secrets in the management cluster.
    pub secrets_namespace: String,
    /// Lifetime of the minted token; run `site add` again to rotate.
    pub token_lifetime: Duration,
    /// Also allow copying Secrets and ConfigMaps (`spec.copyToSites`) into the namespace:
    /// `None` no such rule; `Some([])` any name; `Some(names)` get/update/delete limited to
    /// those names (`resourceNames`; Kubernetes cannot limit `create` by name).
    pub copy_objects: Option<Vec<String>>,
}

/// The Role rules `site add` grants: CassandraClusters and their status, pods (labels, for pod
/// operations), and with `copy_objects` the Secrets and ConfigMaps copied from the management
/// cluster.
pub fn site_rules(copy_objects: Option<&[String]>) -> Vec<serde_json::Value> {
    let mut rules = vec![
        json!({ "apiGroups": ["db.orange.com"], "resources": ["cassandraclusters"], "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"] }),
        json!({ "apiGroups": ["db.orange.com"], "resources": ["cassandraclusters/status"], "verbs": ["get", "update", "patch"] }),
        json!({ "apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "patch"] }),
    ];
    if let Some(names) = copy_objects {
        rules.push(json!({ "apiGroups": [""], "resources": ["secrets", "configmaps"], "verbs": ["create"] }));
        let mut named = json!({ "apiGroups": [""], "resources": ["secrets", "configmaps"], "verbs": ["get", "update", "delete"] });
        if !names.is_empty() {
            named["resourceNames"] = json!(names);
        }
        rules.push(named);
    }
    rules
}

/// Name of the Secret holding a site's kubeconfig.
pub fn secret_name(site: &str) -> String {
    format!("multi-casskop-site-{site}")
}

fn read_kubeconfig(path: Option<&PathBuf>) -> Result<(Kubeconfig, String), SiteAdminError> {
    let origin = path.map_or_else(|| "default".to_string(), |p| p.display().to_string());
    let kubeconfig = match path {
        Some(p) => Kubeconfig::read_from(p),
        None => Kubeconfig::read(),
    }
    .map_err(|e| SiteAdminError::Kubeconfig {
        origin: origin.clone(),
        message: e.to_string(),
    })?;
    Ok((kubeconfig, origin))
}

/// Server URL and CA (base64 PEM) of `context` in `kubeconfig`.
fn server_of(
    kubeconfig: &Kubeconfig,
    context: &str,
    origin: &str,
) -> Result<(String, Option<String>), SiteAdminError> {
    let err = |message: String| SiteAdminError::Kubeconfig {
        origin: origin.into(),
        message,
    };
    let ctx = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.clone())
        .ok_or_else(|| err(format!("has no context {context:?}")))?;
    let cluster = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == ctx.cluster)
        .and_then(|c| c.cluster.clone())
        .ok_or_else(|| {
            err(format!(
                "context {context:?} names cluster {:?}, which it does not define",
                ctx.cluster
            ))
        })?;
    let server = cluster
        .server
        .ok_or_else(|| err(format!("cluster {:?} has no server", ctx.cluster)))?;
    let ca = match (
        cluster.certificate_authority_data,
        cluster.certificate_authority,
    ) {
        (Some(data), _) => Some(data),
        (None, Some(file)) => {
            let pem = std::fs::read(&file)
                .map_err(|e| err(format!("cannot read certificate-authority {file}: {e}")))?;
            Some(base64_encode(&pem))
        }
        (None, None) => None,
    };
    Ok((server, ca))
}

fn base64_encode(bytes: &[u8]) -> String {
    // ByteString serialises as standard base64, the encoding kubeconfigs use.
    serde_json::to_value(ByteString(bytes.to_vec()))
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Onboards a site; returns the Secret written in the management cluster.
pub async fn add(options: &AddOptions, management: &Client) -> Result<Secret, SiteAdminError> {
    let (kubeconfig, origin) = read_kubeconfig(options.kubeconfig.as_ref())?;
    let (server, ca) = server_of(&kubeconfig, &options.context, &origin)?;
    let remote = SiteSource::kubeconfig(options.kubeconfig.as_deref(), Some(&options.context))
        .connect(&options.site, None, None, connect::InsecureTls::Allow)
        .await?;
    let ns = options.namespace.as_str();
    let params = PatchParams::apply(SITE_ADD_FIELD_MANAGER).force();

    let account = json!({ "apiVersion": "v1", "kind": "ServiceAccount", "metadata": { "name": SITE_ACCOUNT, "namespace": ns } });
    Api::<ServiceAccount>::namespaced(remote.clone(), ns)
        .patch(SITE_ACCOUNT, &params, &Patch::Apply(&account))
        .await
        .map_err(api_err(format!(
            "creating service account {ns}/{SITE_ACCOUNT} at {}",
            options.context
        )))?;
    let role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": { "name": SITE_ACCOUNT, "namespace": ns },
        "rules": site_rules(options.copy_objects.as_deref()),
    });
    Api::<Role>::namespaced(remote.clone(), ns)
        .patch(SITE_ACCOUNT, &params, &Patch::Apply(&role))
        .await
        .map_err(api_err(format!("creating role {ns}/{SITE_ACCOUNT}")))?;
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": { "name": SITE_ACCOUNT, "namespace": ns },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": SITE_ACCOUNT },
        "subjects": [{ "kind": "ServiceAccount", "name": SITE_ACCOUNT, "namespace": ns }]
    });
    Api::<RoleBinding>::namespaced(remote.clone(), ns)
        .patch(SITE_ACCOUNT, &params, &Patch::Apply(&binding))
        .await
        .map_err(api_err(format!(
            "creating role binding {ns}/{SITE_ACCOUNT}"
        )))?;

    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![],
            expiration_seconds: Some(
                i64::try_from(options.token_lifetime.as_secs()).unwrap_or(i64::MAX),
            ),
            ..Default::default()
        },
        ..Default::default()
    };
    let minted = Api::<ServiceAccount>::namespaced(remote, ns)
        .create_token_request(SITE_ACCOUNT, &PostParams::default(), &request)
        .await
        .map_err(api_err(format!("minting a token for {ns}/{SITE_ACCOUNT}")))?;
    let token = minted.status.map(|s| s.token).unwrap_or_default();

    let mut cluster = json!({ "server": server });
    if let Some(ca) = ca {
        cluster["certificate-authority-data"] = json!(ca);
    }
    let site = &options.site;
    let site_kubeconfig = json!({
        "apiVersion": "v1", "kind": "Config", "current-context": site,
        "clusters": [{ "name": site, "cluster": cluster }],
        "users": [{ "name": format!("{site}-{SITE_ACCOUNT}"), "user": { "token": token } }],
        "contexts": [{ "name": site, "context": { "cluster": site, "user": format!("{site}-{SITE_ACCOUNT}"), "namespace": ns } }]
    });
    let text = serde_yaml::to_string(&site_kubeconfig).unwrap_or_default();
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {
            "name": secret_name(site), "namespace": options.secrets_namespace,
            "labels": { (SITE_SECRET_LABEL): site },
            "annotations": { (SITE_NAMESPACE_ANNOTATION): ns }
        },
        "type": "Opaque",
        "data": { "kubeconfig": base64_encode(text.as_bytes()) }
    });
    Api::<Secret>::namespaced(management.clone(), &options.secrets_namespace)
        .patch(&secret_name(site), &params, &Patch::Apply(&secret))
        .await
        .map_err(api_err(format!(
            "storing Secret {}/{} in the management cluster",
            options.secrets_namespace,
            secret_name(site)
        )))
}

/// One line of `site list`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteRow {
    /// Site name.
    pub site: String,
    /// Namespace its credentials reach.
    pub namespace: String,
    /// Kubernetes version, or the error.
    pub version: Result<String, String>,
    /// Whether CassKop's CassandraCluster CRD is served, and with a status subresource.
    pub casskop: String,
}

/// Lists the Secret-held sites and checks each one.
pub async fn list(
    management: &Client,
    secrets_namespace: &str,
) -> Result<Vec<SiteRow>, SiteAdminError> {
    let secrets = Api::<Secret>::namespaced(management.clone(), secrets_namespace)
        .list(&ListParams::default().labels(SITE_SECRET_LABEL))
        .await
        .map_err(api_err(format!(
            "listing site Secrets in {secrets_namespace}"
        )))?;
    let mut rows = Vec::new();
    for secret in secrets.items {
        let read = read_secret(&secret);
        let namespace = read.namespace.clone().unwrap_or_else(|| "(all)".into());
        let client = read
            .site_source()
            .connect(&read.site, None, None, connect::InsecureTls::Refuse)
            .await
            .map_err(|e| e.to_string());
        let (version, casskop) = match client {
            Err(e) => (Err(e), "-".into()),
            Ok(client) => {
                let version =
                    tokio::time::timeout(Duration::from_secs(5), client.apiserver_version()).await;
                let version = match version {
                    Ok(Ok(info)) => Ok(info.git_version),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("no answer within 5 s".into()),
                };
                let casskop = match client.list_api_group_resources("db.orange.com/v2").await {
                    Ok(list)
                        if list
                            .resources
                            .iter()
                            .any(|r| r.name == "cassandraclusters/status") =>
                    {
                        "CassandraCluster (status subresource)".into()
                    }
                    Ok(list) if list.resources.iter().any(|r| r.name == "cassandraclusters") => {
                        "CassandraCluster".into()
                    }
                    Ok(_) | Err(_) => "not installed".into(),
                };
                (version, casskop)
            }
        };
        rows.push(SiteRow {
            site: read.site,
            namespace,
            version,
            casskop,
        });
    }
    rows.sort_by(|a, b| a.site.cmp(&b.site));
    Ok(rows)
}

/// Removes a site's Secret (the controller drops the site at once). With `revoke`, also deletes
/// the service account, role and binding at the site through the operator's context.
pub async fn remove(
    management: &Client,
    secrets_namespace: &str,
    site: &str,
    revoke: Option<(&Client, &str)>,
) -> Result<(), SiteAdminError> {
    let secrets = Api::<Secret>::namespaced(management.clone(), secrets_namespace);
    match secrets
        .delete(&secret_name(site), &DeleteParams::default())
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => {
            return Err(api_err(format!(
                "deleting Secret {secrets_namespace}/{}",
                secret_name(site)
            ))(e));
        }
    }
    if let Some((remote, ns)) = revoke {
        let dp = DeleteParams::default();
        let ignore_missing = |r: Result<_, kube::Error>| match r {
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            other => other.map(|_| ()),
        };
        ignore_missing(
            Api::<RoleBinding>::namespaced(remote.clone(), ns)
                .delete(SITE_ACCOUNT, &dp)
                .await
                .map(|_| ()),
        )
        .map_err(api_err("deleting the role binding"))?;
        ignore_missing(
            Api::<Role>::namespaced(remote.clone(), ns)
                .delete(SITE_ACCOUNT, &dp)
                .await
                .map(|_| ()),
        )
        .map_err(api_err("deleting the role"))?;
        ignore_missing(
            Api::<ServiceAccount>::namespaced(remote.clone(), ns)
                .delete(SITE_ACCOUNT, &dp)
                .await
                .map(|_| ()),
        )
        .map_err(api_err("deleting the service account"))?;
    }
    Ok(())
}

/// Rows as a text table.
pub fn table(rows: &[SiteRow]) -> String {
    let mut out = format!(
        "{:<16} {:<16} {:<14} {}\n",
        "SITE", "NAMESPACE", "KUBERNETES", "CASSKOP"
    );
    for r in rows {
        let version = match &r.version {
            Ok(v) => v.clone(),
            Err(e) => format!("unreachable: {e}"),
        };
        out.push_str(&format!(
            "{:<16} {:<16} {:<14} {}\n",
            r.site, r.namespace, version, r.casskop
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Secrets and ConfigMaps only on request, and then by name where Kubernetes allows it.
    #[test]
    fn copy_rules_only_when_asked() {
        let names = vec!["pull".to_string()];
        let cases: Vec<(&str, Option<&[String]>, usize, Option<serde_json::Value>)> = vec![
            ("no copies: no Secret access", None, 3, None),
            ("any name", Some(&[]), 5, None),
            ("named", Some(&names), 5, Some(json!(["pull"]))),
        ];
        for (name, copy, count, resource_names) in cases {
            let rules = site_rules(copy);
            assert_eq!(rules.len(), count, "{name}");
            let secrets: Vec<&serde_json::Value> = rules
                .iter()
                .filter(|r| {
                    r["resources"]
                        .as_array()
                        .is_some_and(|a| a.contains(&json!("secrets")))
                })
                .collect();
            assert_eq!(secrets.is_empty(), copy.is_none(), "{name}");
            if let Some(named) = secrets.iter().find(|r| r["verbs"] != json!(["create"])) {
                assert_eq!(named["verbs"], json!(["get", "update", "delete"]), "{name}");
                assert_eq!(
                    named.get("resourceNames").cloned(),
                    resource_names,
                    "{name}"
                );
            }
        }
    }
}
