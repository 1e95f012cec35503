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
use crate::sites::connect::{self, SecretReadError};
use crate::sites::{SiteRegistry, SiteSource};

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
    pub kubeconfig: Result<String, SecretReadError>,
    /// The only namespace the site's credentials reach (annotation), if limited.
    pub namespace: Option<String>,
}

impl SecretSite {
    /// How to connect the site.
    pub fn site_source(&self) -> SiteSource {
        SiteSource::Secret {
            origin: self.source.clone(),
            kubeconfig: self.kubeconfig.clone(),
        }
    }
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
    let name = format!(
        "{}/{}",
        secret.namespace().unwrap_or_default(),
        secret.name_any()
    );
    let kubeconfig = match bytes {
        None => Err(SecretReadError::NoKey {
            secret: name,
            keys: KUBECONFIG_KEYS.join(" or "),
        }),
        Some(b) => String::from_utf8(b).map_err(|_| SecretReadError::NotText { secret: name }),
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
///
/// Two Secrets may provide one site (a rotation: the new one is created before the old one is
/// deleted): the most recently applied one is used, and deleting either leaves the site to the
/// other. The site goes only when no Secret provides it.
pub async fn watch(
    client: Client,
    namespace: String,
    label_selector: String,
    registry: Arc<SiteRegistry>,
    tls: connect::InsecureTls,
) {
    let api: Api<Secret> = Api::namespaced(client, &namespace);
    let stream = watcher(api, watcher::Config::default().labels(&label_selector)).default_backoff();
    futures::pin_mut!(stream);
    // Every site Secret, by Secret name, in the order they were last applied.
    let mut provided = Provided::default();
    let mut seen_in_relist: Option<Vec<String>> = None;
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::Init) => seen_in_relist = Some(Vec::new()),
            Ok(watcher::Event::Apply(secret) | watcher::Event::InitApply(secret)) => {
                if let Some(seen) = seen_in_relist.as_mut() {
                    seen.push(secret.name_any());
                }
                let read = read_secret(&secret);
                if let Some(previous) = provided.apply(secret.name_any(), read) {
                    sync_site(&registry, &provided, &previous, tls).await;
                }
                if let Some(site) = provided.site_of(&secret.name_any()) {
                    sync_site(&registry, &provided, &site, tls).await;
                }
            }
            Ok(watcher::Event::Delete(secret)) => {
                if let Some(site) = provided.remove(&secret.name_any()) {
                    info!(site = %site, secret = %secret.name_any(), "site secret deleted");
                    sync_site(&registry, &provided, &site, tls).await;
                }
            }
            Ok(watcher::Event::InitDone) => {
                if let Some(seen) = seen_in_relist.take() {
                    for site in provided.retain(&seen) {
                        sync_site(&registry, &provided, &site, tls).await;
                    }
                }
            }
            Err(error) => {
                warn!(%error, namespace, "watch of site secrets failed; retrying with backoff")
            }
        }
    }
}

/// The site Secrets seen, by Secret name, with the order in which they were applied.
#[derive(Default)]
struct Provided {
    secrets: BTreeMap<String, (u64, SecretSite)>,
    clock: u64,
}

impl Provided {
    /// Records a Secret; returns the site it provided before when it now provides another.
    fn apply(&mut self, secret: String, read: SecretSite) -> Option<String> {
        self.clock += 1;
        let site = read.site.clone();
        self.secrets
            .insert(secret, (self.clock, read))
            .map(|(_, old)| old.site)
            .filter(|previous| *previous != site)
    }

    fn site_of(&self, secret: &str) -> Option<String> {
        self.secrets.get(secret).map(|(_, r)| r.site.clone())
    }

    /// Forgets a Secret; returns the site it provided.
    fn remove(&mut self, secret: &str) -> Option<String> {
        self.secrets.remove(secret).map(|(_, r)| r.site)
    }

    /// Keeps the Secrets in `seen`; returns the sites of the others.
    fn retain(&mut self, seen: &[String]) -> Vec<String> {
        let gone: Vec<String> = self
            .secrets
            .keys()
            .filter(|k| !seen.contains(k))
            .cloned()
            .collect();
        gone.iter().filter_map(|k| self.remove(k)).collect()
    }

    /// The Secret that provides `site`: the most recently applied one.
    fn current(&self, site: &str) -> Option<&SecretSite> {
        self.secrets
            .values()
            .filter(|(_, r)| r.site == site)
            .max_by_key(|(at, _)| *at)
            .map(|(_, r)| r)
    }
}

/// Makes the registry's `site` what its current Secret says, or removes it when none is left.
async fn sync_site(
    registry: &Arc<SiteRegistry>,
    provided: &Provided,
    site: &str,
    tls: connect::InsecureTls,
) {
    let Some(read) = provided.current(site) else {
        info!(site = %site, "no secret provides the site any more: site removed");
        registry.remove(site);
        return;
    };
    if registry
        .get(&read.site)
        .is_some_and(|s| s.source == read.source)
    {
        return;
    }
    registry
        .connect(
            &read.site,
            &read.site_source(),
            read.namespace.clone(),
            None,
            tls,
        )
        .await;
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
    fn rotation_with_two_secrets_keeps_the_site() {
        let mut p = Provided::default();
        p.apply(
            "old".into(),
            read_secret(&secret("old", Some("east"), &[("kubeconfig", "v1")])),
        );
        p.apply(
            "new".into(),
            read_secret(&secret("new", Some("east"), &[("kubeconfig", "v2")])),
        );
        let current = |p: &Provided| p.current("east").and_then(|r| r.kubeconfig.clone().ok());
        assert_eq!(current(&p), Some("v2".into()), "the newest Secret is used");
        assert_eq!(p.remove("old"), Some("east".into()));
        assert_eq!(
            current(&p),
            Some("v2".into()),
            "deleting the old Secret keeps the site"
        );
        p.apply(
            "old".into(),
            read_secret(&secret("old", Some("east"), &[("kubeconfig", "v1")])),
        );
        assert_eq!(p.remove("new"), Some("east".into()));
        assert_eq!(
            current(&p),
            Some("v1".into()),
            "deleting the current one falls back"
        );
        assert_eq!(p.remove("old"), Some("east".into()));
        assert!(p.current("east").is_none(), "no Secret left: the site goes");
        p.apply(
            "s".into(),
            read_secret(&secret("s", Some("east"), &[("kubeconfig", "v1")])),
        );
        assert_eq!(
            p.apply(
                "s".into(),
                read_secret(&secret("s", Some("west"), &[("kubeconfig", "v1")]))
            ),
            Some("east".into()),
            "relabelling a Secret moves it to another site"
        );
        assert_eq!(p.retain(&[]), vec!["west".to_string()]);
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
        assert_eq!(
            a.site_source(),
            SiteSource::Secret {
                origin: a.source.clone(),
                kubeconfig: Ok("apiVersion: v1".into())
            }
        );
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
        assert_eq!(
            none.kubeconfig.unwrap_err().to_string(),
            "secret mc/s2 has no key kubeconfig or config holding a kubeconfig"
        );
    }

    /// A service-account-like token; no 8 characters of it may show anywhere.
    const TOKEN: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6IkFCQ0RFRiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6bWM6c2l0ZSJ9.U2lnbmF0dXJlT2ZUaGVTZWNyZXRUb2tlbg";

    fn kubeconfig(user: &str, insecure: bool) -> String {
        let tls = if insecure {
            "insecure-skip-tls-verify: true"
        } else {
            "certificate-authority-data: bm90LWEtY2VydA=="
        };
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n  cluster:\n    server: https://127.0.0.1:1\n    {tls}\ncontexts:\n- name: c\n  context: {{cluster: k, user: u}}\nusers:\n- name: u\n  user:\n{user}\n"
        )
    }

    fn leak(text: &str) -> Option<String> {
        let chars: Vec<char> = TOKEN.chars().collect();
        chars
            .windows(8)
            .map(|w| w.iter().collect::<String>())
            .find(|w| text.contains(w.as_str()))
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Malformed or refused kubeconfigs in a site Secret: the error names the Secret (and the
    /// line and column of a parse error) and no piece of the token reaches the error's Display
    /// or Debug, the site's state (what every MultiCasskop's status shows), the logs (plain and
    /// JSON) or /metrics.
    #[test]
    fn credentials_never_leak_from_malformed_kubeconfigs() {
        let cases: Vec<(&str, String, &str)> = vec![
            (
                "stray tab after token:",
                kubeconfig(
                    &format!("    token:\t{TOKEN}\n    bad: [\n      {TOKEN}"),
                    false,
                ),
                "line ",
            ),
            (
                "raw JWT instead of a kubeconfig",
                TOKEN.to_string(),
                "not a valid kubeconfig",
            ),
            (
                "truncated YAML inside the token",
                kubeconfig(&format!("    token: \"{TOKEN}"), false),
                "line ",
            ),
            (
                "wrong type: token is a list",
                kubeconfig(&format!("    token: [{TOKEN}]"), false),
                "line ",
            ),
            (
                "wrong type: users is the token",
                format!("apiVersion: v1\nkind: Config\nusers: {TOKEN}\n"),
                "line ",
            ),
            (
                "token as client-key-data",
                kubeconfig(
                    &format!("    client-certificate-data: {TOKEN}\n    client-key-data: {TOKEN}"),
                    false,
                ),
                "secret mc/leaky",
            ),
            (
                "insecure-skip-tls-verify refused",
                kubeconfig(&format!("    token: {TOKEN}"), true),
                "insecure-skip-tls-verify: true",
            ),
        ];
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        for (name, text, expected) in cases {
            for json in [false, true] {
                let captured = Captured::default();
                let writer = captured.clone();
                let builder = tracing_subscriber::fmt()
                    .with_writer(move || writer.clone())
                    .with_max_level(tracing::Level::TRACE)
                    .with_ansi(false);
                let _guard = if json {
                    tracing::subscriber::set_default(builder.json().finish())
                } else {
                    tracing::subscriber::set_default(builder.finish())
                };
                let metrics = Arc::new(crate::metrics::Metrics::default());
                let (registry, _triggers) = SiteRegistry::new(metrics.clone());
                let mut provided = Provided::default();
                provided.apply(
                    "leaky".into(),
                    read_secret(&secret("leaky", Some("east"), &[("kubeconfig", &text)])),
                );
                runtime.block_on(sync_site(
                    &registry,
                    &provided,
                    "east",
                    connect::InsecureTls::Refuse,
                ));
                let state = registry
                    .get("east")
                    .and_then(|s| s.client().err().map(ToString::to_string))
                    .unwrap_or_default();
                let direct = runtime.block_on(connect::from_yaml(
                    &text,
                    None,
                    "secret mc/leaky",
                    None,
                    connect::InsecureTls::Refuse,
                ));
                let error = direct.err().expect(name);
                let mut chain = format!("{error} {error:?}");
                let mut source = std::error::Error::source(&error);
                while let Some(s) = source {
                    chain.push_str(&format!(" {s} {s:?}"));
                    source = s.source();
                }
                let logs =
                    String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf8");
                assert!(
                    state.contains("secret mc/leaky"),
                    "{name}: names the Secret: {state}"
                );
                assert!(state.contains(expected), "{name}: {state}");
                for (what, text) in [
                    ("state/status", &state),
                    ("error chain", &chain),
                    ("logs", &logs),
                    ("/metrics", &metrics.encode()),
                ] {
                    assert_eq!(
                        leak(text),
                        None,
                        "{name} (json logs: {json}): {what} quotes the token: {text}"
                    );
                }
                assert!(logs.contains("site unusable"), "{name}: logged: {logs}");
            }
        }
    }
}
