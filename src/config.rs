//! Controller settings: a YAML file, `MULTICASSKOP_*` environment overrides, and CLI flags,
//! merged in that order by the `config` crate.

use std::path::PathBuf;

use serde::Deserialize;

/// Prefix of environment overrides, e.g. `MULTICASSKOP_NAMESPACE=cassandra` or
/// `MULTICASSKOP_SECRETS__NAMESPACE=multi-casskop`.
pub const ENV_PREFIX: &str = "MULTICASSKOP";

/// Where the Go Multi-CassKop's Helm chart mounted each remote site's kubeconfig.
pub const ADMIRALTY_IMPORT_DIR: &str = "/var/run/secrets/admiralty.io/serviceaccountimports";

/// Everything `multi-casskop run` needs to know.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Settings {
    /// Namespace whose MultiCasskops are reconciled; all namespaces when unset.
    pub namespace: Option<String>,
    /// How to reach the management cluster (where MultiCasskops live).
    pub management: ClusterAccess,
    /// Sites configured statically, in rollout order.
    pub sites: Vec<SiteConfig>,
    /// Sites whose kubeconfig is held in Secrets of the management cluster.
    pub secrets: SecretSites,
    /// `plain` (default) or `json`.
    pub log_format: LogFormat,
    /// Leader election among replicas.
    pub leader_election: LeaderElection,
    /// Address of the `/metrics`, `/healthz` and `/readyz` endpoint; none when unset. The
    /// command line's default is loopback (`127.0.0.1:8080`): `/metrics` is unauthenticated.
    pub http_addr: Option<String>,
    /// When set, `/metrics` is served only on this address (e.g. `127.0.0.1:8443` behind
    /// kube-rbac-proxy) and `httpAddr` keeps `/healthz` and `/readyz` for the kubelet.
    pub metrics_addr: Option<String>,
    /// The tenant boundary: which other site namespaces a namespace's MultiCasskops may target
    /// (`tenancy.allowedNamespaces: {team-a: [cassandra-a]}`). By default only their own.
    pub tenancy: crate::core::tenancy::TenancyPolicy,
    /// Accept site kubeconfigs with `insecure-skip-tls-verify: true` (logged as a warning).
    /// Off by default: such a site can be impersonated by anyone on the network path.
    pub allow_insecure_skip_tls_verify: bool,
}

/// Leader election on a Lease in the management cluster: only the holder reconciles.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct LeaderElection {
    /// Elect a leader (needed with more than one replica).
    pub enabled: bool,
    /// Namespace of the Lease (default: `$POD_NAMESPACE`, else `default`).
    pub namespace: Option<String>,
    /// Lease name.
    pub lease_name: String,
    /// How long a lease lasts without renewal; a standby takes over at most this long after the
    /// leader dies.
    pub lease_duration_seconds: u64,
}

impl Default for LeaderElection {
    fn default() -> Self {
        LeaderElection {
            enabled: false,
            namespace: None,
            lease_name: "multi-casskop".into(),
            lease_duration_seconds: 15,
        }
    }
}

/// A kubeconfig file and context; both optional (defaults: `$KUBECONFIG` or in-cluster, current context).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct ClusterAccess {
    /// Kubeconfig file.
    pub kubeconfig: Option<PathBuf>,
    /// Context in that kubeconfig.
    pub context: Option<String>,
}

/// One statically configured site.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct SiteConfig {
    /// Site name, as used in `spec.override`.
    pub name: String,
    /// The management cluster's own connection (it may also be a site).
    pub local: bool,
    /// Kubeconfig file of the site.
    pub kubeconfig: Option<PathBuf>,
    /// Context in that kubeconfig (default: its current context).
    pub context: Option<String>,
    /// Watch CassandraClusters in this namespace only (credentials limited to it); default: all.
    pub namespace: Option<String>,
}

/// Sites found in Secrets, reloaded without restart when the Secrets change.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct SecretSites {
    /// Namespace of the Secrets (usually the controller's); unset disables Secret-held sites.
    pub namespace: Option<String>,
    /// Label that marks a Secret as a site kubeconfig.
    pub label_selector: String,
}

impl Default for SecretSites {
    fn default() -> Self {
        SecretSites {
            namespace: None,
            label_selector: crate::labels::SITE_SECRET_LABEL.to_string(),
        }
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Plain,
    /// One JSON object per line.
    Json,
}

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// File or environment could not be read or parsed.
    #[error("cannot load settings (file {file}, environment {ENV_PREFIX}_*): {source}")]
    Load {
        /// The file given, or "none".
        file: String,
        /// Parser error.
        source: config::ConfigError,
    },
    /// Two sites share a name.
    #[error("site {0:?} is configured twice; site names must be unique")]
    DuplicateSite(String),
    /// A site without a name.
    #[error("a configured site has no name; every site needs the name used in spec.override")]
    UnnamedSite,
}

/// Loads the file (if any), then environment overrides.
pub fn load(file: Option<&std::path::Path>) -> Result<Settings, SettingsError> {
    let mut builder = config::Config::builder();
    if let Some(file) = file {
        builder = builder.add_source(config::File::from(file).format(config::FileFormat::Yaml));
    }
    builder = builder.add_source(config::Environment::with_prefix(ENV_PREFIX).separator("__"));
    let file_name = file.map_or_else(|| "none".to_string(), |f| f.display().to_string());
    let settings: Settings = builder
        .build()
        .and_then(config::Config::try_deserialize)
        .map_err(|source| SettingsError::Load {
            file: file_name,
            source,
        })?;
    Ok(settings)
}

impl Settings {
    /// Adds the Go Multi-CassKop's `-l NAME` (local site) and `-r NAME` (remote sites, kubeconfig from
    /// the admiralty import path if mounted, else the kubeconfig context NAME), and `--site`
    /// flags (`NAME=KUBECONFIG[:CONTEXT]`), after the sites from the file.
    pub fn with_flag_sites(
        mut self,
        local: Option<&str>,
        remotes: &[String],
        sites: &[SiteConfig],
    ) -> Self {
        if let Some(name) = local {
            self.sites.push(SiteConfig {
                name: name.to_string(),
                local: true,
                ..Default::default()
            });
        }
        for name in remotes {
            let mounted = PathBuf::from(ADMIRALTY_IMPORT_DIR)
                .join(name)
                .join("config");
            let site = if mounted.is_file() {
                SiteConfig {
                    name: name.clone(),
                    kubeconfig: Some(mounted),
                    ..Default::default()
                }
            } else {
                SiteConfig {
                    name: name.clone(),
                    context: Some(name.clone()),
                    ..Default::default()
                }
            };
            self.sites.push(site);
        }
        self.sites.extend(sites.iter().cloned());
        self
    }

    /// Settings for sites that each have a kubeconfig whose context is named after the site; the
    /// first is also the management cluster and reached through its connection (`local`). This
    /// is how the demo, tests and local runs describe the embedded test sites.
    pub fn for_site_kubeconfigs(sites: &[(&str, PathBuf)]) -> Settings {
        let mut settings = Settings::default();
        if let Some((name, path)) = sites.first() {
            settings.management = ClusterAccess {
                kubeconfig: Some(path.clone()),
                context: Some((*name).to_string()),
            };
        }
        for (i, (name, path)) in sites.iter().enumerate() {
            settings.sites.push(if i == 0 {
                SiteConfig {
                    name: (*name).to_string(),
                    local: true,
                    ..Default::default()
                }
            } else {
                SiteConfig {
                    name: (*name).to_string(),
                    kubeconfig: Some(path.clone()),
                    context: Some((*name).to_string()),
                    ..Default::default()
                }
            });
        }
        settings
    }

    /// Checks that site names are present and unique.
    pub fn validate(&self) -> Result<(), SettingsError> {
        for (i, site) in self.sites.iter().enumerate() {
            if site.name.is_empty() {
                return Err(SettingsError::UnnamedSite);
            }
            if self.sites[..i].iter().any(|s| s.name == site.name) {
                return Err(SettingsError::DuplicateSite(site.name.clone()));
            }
        }
        Ok(())
    }
}

/// Parses an `--allow-namespace OWNER=SITE_NAMESPACE` flag (tenancy.allowedNamespaces).
pub fn parse_allow_namespace_flag(flag: &str) -> Result<(String, String), String> {
    match flag.split_once('=') {
        Some((owner, target)) if !owner.is_empty() && !target.is_empty() => {
            Ok((owner.to_string(), target.to_string()))
        }
        _ => Err(format!(
            "--allow-namespace {flag:?}: expected MULTICASSKOP_NAMESPACE=SITE_NAMESPACE"
        )),
    }
}

impl Settings {
    /// Adds `--allow-namespace` flags to `tenancy.allowedNamespaces`.
    pub fn with_allowed_namespaces(mut self, pairs: &[(String, String)]) -> Self {
        for (owner, target) in pairs {
            let list = self
                .tenancy
                .allowed_namespaces
                .entry(owner.clone())
                .or_default();
            if !list.contains(target) {
                list.push(target.clone());
            }
        }
        self
    }
}

/// Parses a `--site NAME=KUBECONFIG[:CONTEXT]` flag.
pub fn parse_site_flag(flag: &str) -> Result<SiteConfig, String> {
    let (name, rest) = flag
        .split_once('=')
        .ok_or_else(|| format!("--site {flag:?}: expected NAME=KUBECONFIG[:CONTEXT]"))?;
    let (file, context) = match rest.rsplit_once(':') {
        Some((file, context)) if !context.contains('/') => (file, Some(context.to_string())),
        _ => (rest, None),
    };
    if name.is_empty() || file.is_empty() {
        return Err(format!(
            "--site {flag:?}: expected NAME=KUBECONFIG[:CONTEXT]"
        ));
    }
    Ok(SiteConfig {
        name: name.into(),
        kubeconfig: Some(file.into()),
        context,
        local: false,
        namespace: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_environment() {
        let dir = std::env::temp_dir().join(format!("mc-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("settings.yaml");
        std::fs::write(
            &file,
            "namespace: ring\nlogFormat: json\ntenancy:\n  allowedNamespaces:\n    team-a: [cassandra-a]\nallowInsecureSkipTlsVerify: true\nmetricsAddr: 127.0.0.1:8443\nsites:\n  - name: a\n    kubeconfig: /k/a\n    context: ctx-a\n  - name: b\n    local: true\nsecrets:\n  namespace: mc\n",
        )
        .expect("write");
        let s = load(Some(&file)).expect("loads");
        assert_eq!(s.namespace.as_deref(), Some("ring"));
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.sites.len(), 2);
        assert_eq!(
            s.sites[0],
            SiteConfig {
                name: "a".into(),
                kubeconfig: Some("/k/a".into()),
                context: Some("ctx-a".into()),
                local: false,
                namespace: None,
            }
        );
        assert!(s.sites[1].local);
        assert_eq!(s.secrets.namespace.as_deref(), Some("mc"));
        assert_eq!(s.secrets.label_selector, crate::labels::SITE_SECRET_LABEL);
        assert!(s.tenancy.allows("team-a", "cassandra-a"));
        assert!(!s.tenancy.allows("team-a", "team-b"));
        assert!(s.allow_insecure_skip_tls_verify);
        assert_eq!(s.metrics_addr.as_deref(), Some("127.0.0.1:8443"));
        let s = s
            .with_allowed_namespaces(&[parse_allow_namespace_flag("team-b=cass-b").expect("flag")]);
        assert!(s.tenancy.allows("team-b", "cass-b"));
        assert!(parse_allow_namespace_flag("team-b").is_err());
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn go_flags_and_site_flags() {
        let s = Settings::default().with_flag_sites(
            Some("k8s-cluster1"),
            &["k8s-cluster2".into()],
            &[parse_site_flag("c=/tmp/c.kubeconfig:ctx").expect("flag")],
        );
        let names: Vec<_> = s.sites.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, vec!["k8s-cluster1", "k8s-cluster2", "c"]);
        assert!(s.sites[0].local);
        assert_eq!(
            s.sites[1].context.as_deref(),
            Some("k8s-cluster2"),
            "falls back to the kubeconfig context named after the site"
        );
        assert_eq!(
            s.sites[2].kubeconfig.as_deref(),
            Some(std::path::Path::new("/tmp/c.kubeconfig"))
        );
        assert_eq!(s.sites[2].context.as_deref(), Some("ctx"));
        s.validate().expect("valid");
        let dup = Settings::default().with_flag_sites(Some("a"), &["a".into()], &[]);
        assert!(matches!(dup.validate(), Err(SettingsError::DuplicateSite(n)) if n == "a"));
    }

    #[test]
    fn settings_for_site_kubeconfigs() {
        let s = Settings::for_site_kubeconfigs(&[("a", "/k/a".into()), ("b", "/k/b".into())]);
        assert_eq!(
            s.management,
            ClusterAccess {
                kubeconfig: Some("/k/a".into()),
                context: Some("a".into())
            }
        );
        assert_eq!(
            s.sites[0],
            SiteConfig {
                name: "a".into(),
                local: true,
                ..Default::default()
            }
        );
        assert_eq!(
            s.sites[1],
            SiteConfig {
                name: "b".into(),
                kubeconfig: Some("/k/b".into()),
                context: Some("b".into()),
                ..Default::default()
            }
        );
        assert!(Settings::for_site_kubeconfigs(&[]).sites.is_empty());
    }

    #[test]
    fn site_flag_forms() {
        assert_eq!(parse_site_flag("a=/x/y").expect("ok").context, None);
        assert_eq!(
            parse_site_flag("a=/x/y:ctx")
                .expect("ok")
                .context
                .as_deref(),
            Some("ctx")
        );
        assert!(parse_site_flag("nameonly").is_err());
        assert!(parse_site_flag("=/x").is_err());
    }
}
