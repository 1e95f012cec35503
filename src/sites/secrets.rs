//! Sites whose kubeconfig lives in a Secret of the management cluster. The Secrets are watched:
//! a new Secret adds a site, a changed one (rotated credentials) replaces its client, and a
//! deleted one removes the site, all without restarting the controller.
//!
//! A site Secret carries the label `multicasskop.db.orange.com/site-kubeconfig=<site name>` and
//! its kubeconfig under the key `kubeconfig` (or `config`, as admiralty's exports have it).

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use crate::labels::{SITE_NAMESPACE_ANNOTATION, SITE_SECRET_LABEL};
use crate::sites::{SiteRegistry, connect};

/// Keys under which a site Secret may hold its kubeconfig, in order of preference.
pub const KUBECONFIG_KEYS: [&str; 2] = ["kubeconfig", "config"];

/// A site read from a Secret: its name, a fingerprint of its content and its kubeconfig.
#[derive(Debug, PartialEq, Eq)]
pub struct SecretSite {
    /// Site name (the label's value, else the Secret's name).
    pub site: String,
    /// `secret <namespace>/<name> sha256:<hash>`.
    pub source: String,
    /// Kubeconfig YAML, or why there is none usable.
    pub kubeconfig: Result<String, String>,
    /// The only namespace the site's credentials reach (annotation), if limited.
    pub namespace: Option<String>,
}

/// Reads a site Secret.
pub fn read_secret(secret: &Secret) -> SecretSite {
    let site = secret
        .labels()
        .get(SITE_SECRET_LABEL)
        .filter(|s| !s.is_empty())
        .cloned()
        .unwrap_or_else(|| secret.name_any());
    let data = secret.data.clone().unwrap_or_default();
    let bytes = KUBECONFIG_KEYS
        .iter()
        .find_map(|k| data.get(*k))
        .map(|b| b.0.clone());
    let hash = bytes
        .as_ref()
        .map(|b| format!("{:x}", Sha256::digest(b)))
        .unwrap_or_default();
    let source = format!(
        "secret {}/{} sha256:{}",
        secret.namespace().unwrap_or_default(),
        secret.name_any(),
        &hash[..hash.len().min(16)]
    );
    let kubeconfig = match bytes {
        None => Err(format!(
            "secret {} has no key {} holding a kubeconfig",
            secret.name_any(),
            KUBECONFIG_KEYS.join(" or ")
        )),
        Some(b) => String::from_utf8(b)
            .map_err(|_| format!("secret {}: kubeconfig is not UTF-8 text", secret.name_any())),
    };
    let namespace = secret
        .annotations()
        .get(SITE_NAMESPACE_ANNOTATION)
        .filter(|n| !n.is_empty())
        .cloned();
    SecretSite {
        site,
        source,
        kubeconfig,
        namespace,
    }
}

/// Watches site Secrets in `namespace` and keeps `registry` in step with them. Runs until aborted.
pub async fn watch(
    client: Client,
    namespace: String,
    label_selector: String,
    registry: Arc<SiteRegistry>,
) {
    let api: Api<Secret> = Api::namespaced(client, &namespace);
    let stream = watcher(api, watcher::Config::default().labels(&label_selector)).default_backoff();
    futures::pin_mut!(stream);
    // Which site each Secret provides, to remove it when the Secret goes.
    let mut provided: BTreeMap<String, String> = BTreeMap::new();
    let mut seen_in_relist: Option<Vec<String>> = None;
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::Init) => seen_in_relist = Some(Vec::new()),
            Ok(watcher::Event::Apply(secret) | watcher::Event::InitApply(secret)) => {
                if let Some(seen) = seen_in_relist.as_mut() {
                    seen.push(secret.name_any());
                }
                let read = read_secret(&secret);
                if let Some(previous) = provided.insert(secret.name_any(), read.site.clone())
                    && previous != read.site
                {
                    registry.remove(&previous);
                }
                if registry
                    .get(&read.site)
                    .is_some_and(|s| s.source == read.source)
                {
                    continue;
                }
                let client = match read.kubeconfig {
                    Ok(yaml) => connect::from_yaml(
                        &yaml,
                        None,
                        &read.source,
                        Some((&registry.metrics, read.site.as_str())),
                    )
                    .await
                    .map_err(|e| e.to_string()),
                    Err(e) => Err(e),
                };
                match &client {
                    Ok(_) => {
                        info!(site = %read.site, source = %read.source, "site loaded from secret")
                    }
                    Err(error) => {
                        warn!(site = %read.site, source = %read.source, %error, "site secret unusable")
                    }
                }
                registry.upsert(&read.site, read.source, client, read.namespace);
            }
            Ok(watcher::Event::Delete(secret)) => {
                if let Some(site) = provided.remove(&secret.name_any()) {
                    info!(site = %site, secret = %secret.name_any(), "site secret deleted: site removed");
                    registry.remove(&site);
                }
            }
            Ok(watcher::Event::InitDone) => {
                if let Some(seen) = seen_in_relist.take() {
                    let gone: Vec<String> = provided
                        .keys()
                        .filter(|k| !seen.contains(k))
                        .cloned()
                        .collect();
                    for secret in gone {
                        if let Some(site) = provided.remove(&secret) {
                            registry.remove(&site);
                        }
                    }
                }
            }
            Err(error) => {
                warn!(%error, namespace, "watch of site secrets failed; retrying with backoff")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn secret(name: &str, label: Option<&str>, data: &[(&str, &str)]) -> Secret {
        let mut s = Secret::default();
        s.metadata.name = Some(name.into());
        s.metadata.namespace = Some("mc".into());
        if let Some(l) = label {
            s.metadata.labels = Some([(SITE_SECRET_LABEL.to_string(), l.to_string())].into());
        }
        s.data = Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        );
        s
    }

    #[test]
    fn site_name_key_and_fingerprint() {
        let a = read_secret(&secret(
            "s1",
            Some("east"),
            &[("kubeconfig", "apiVersion: v1")],
        ));
        assert_eq!(a.site, "east");
        assert_eq!(a.kubeconfig, Ok("apiVersion: v1".into()));
        assert!(a.source.starts_with("secret mc/s1 sha256:"));
        let b = read_secret(&secret("west", Some(""), &[("config", "x")]));
        assert_eq!(b.site, "west", "empty label falls back to the secret name");
        assert_eq!(b.kubeconfig, Ok("x".into()), "admiralty's key works");
        let rotated = read_secret(&secret(
            "s1",
            Some("east"),
            &[("kubeconfig", "apiVersion: v2")],
        ));
        assert_ne!(a.source, rotated.source, "rotation changes the fingerprint");
        let none = read_secret(&secret("s2", None, &[("other", "x")]));
        assert!(
            none.kubeconfig
                .unwrap_err()
                .contains("has no key kubeconfig or config")
        );
    }
}
