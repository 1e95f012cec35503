//! Controller settings: a YAML file, then `MULTICASSKOP_*` environment variables, then the
//! command line's flags (only those given), each overriding the one before. The file is read
//! by the `config` crate; the environment's names follow one rule (see [`env`]); the flags are
//! applied by `cli::RunArgs::apply`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::sites::SiteSource;

pub mod env;

pub use env::ENV_PREFIX;

/// Where the Go Multi-CassKop's Helm chart mounted each remote site's kubeconfig.
pub use crate::sites::source::ADMIRALTY_IMPORT_DIR;

/// The HTTP address of `multi-casskop run` when neither the file, the environment nor a flag
/// sets one: loopback, because `/metrics` is unauthenticated.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8080";

/// Everything `multi-casskop run` needs to know.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
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
    /// command line's default is [`DEFAULT_HTTP_ADDR`] (loopback: `/metrics` is unauthenticated).
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
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
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
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct ClusterAccess {
    /// Kubeconfig file.
    pub kubeconfig: Option<PathBuf>,
    /// Context in that kubeconfig.
    pub context: Option<String>,
}

impl ClusterAccess {
    /// How to connect: the file and context, else the default kubeconfig's context, else the
    /// default connection (`$KUBECONFIG`, `~/.kube/config` or in-cluster).
    pub fn source(&self) -> SiteSource {
        SiteSource::kubeconfig(self.kubeconfig.as_deref(), self.context.as_deref())
    }
}

/// One statically configured site: its name, how to reach it, and the namespace its
/// credentials are limited to. In the file: `{name, local: true}`, `{name, kubeconfig[, context]}`
/// or `{name, context}` (a context of the default kubeconfig), each with an optional `namespace`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(try_from = "SiteEntry", into = "SiteEntry")]
pub struct SiteConfig {
    /// Site name, as used in `spec.override`.
    pub name: String,
    /// How to reach it.
    pub source: SiteSource,
    /// Watch CassandraClusters in this namespace only (credentials limited to it); default: all.
    pub namespace: Option<String>,
}

impl SiteConfig {
    /// Site `name` reached through `source`, in every namespace.
    pub fn new(name: impl Into<String>, source: SiteSource) -> SiteConfig {
        SiteConfig {
            name: name.into(),
            source,
            namespace: None,
        }
    }
}

/// A site as the settings file writes it (the format of every earlier version).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
struct SiteEntry {
    name: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    local: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    kubeconfig: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    /// Shown for a Secret-held site (`--print-settings`); never read.
    #[serde(skip_deserializing, skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

impl TryFrom<SiteEntry> for SiteConfig {
    type Error = String;

    fn try_from(entry: SiteEntry) -> Result<Self, String> {
        let source = if entry.local {
            if entry.kubeconfig.is_some() || entry.context.is_some() {
                return Err(format!(
                    "site {:?}: `local: true` uses the management cluster's connection; give either it or kubeconfig/context, not both",
                    entry.name
                ));
            }
            SiteSource::Management
        } else {
            SiteSource::kubeconfig(entry.kubeconfig.as_deref(), entry.context.as_deref())
        };
        Ok(SiteConfig {
            name: entry.name,
            source,
            namespace: entry.namespace,
        })
    }
}

impl From<SiteConfig> for SiteEntry {
    fn from(site: SiteConfig) -> Self {
        let mut entry = SiteEntry {
            name: site.name,
            namespace: site.namespace,
            ..Default::default()
        };
        match site.source {
            SiteSource::Management => entry.local = true,
            SiteSource::File { path, context } => {
                entry.kubeconfig = Some(path);
                entry.context = context;
            }
            SiteSource::DefaultKubeconfig { context } => entry.context = Some(context),
            SiteSource::Default => {}
            SiteSource::Secret { origin, .. } => entry.secret = Some(origin),
        }
        entry
    }
}

/// Sites found in Secrets, reloaded without restart when the Secrets change.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
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
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq, clap::ValueEnum)]
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
    /// The file could not be read or parsed.
    #[error("cannot load settings file {file}: {source}")]
    Load {
        /// The file given.
        file: String,
        /// Parser error.
        source: config::ConfigError,
    },
    /// An environment variable holds a value its setting cannot take.
    #[error("environment variable {var} (setting {key}): {message}")]
    Environment {
        /// The variable.
        var: String,
        /// The setting it sets.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// Two sites share a name.
    #[error("site {0:?} is configured twice; site names must be unique")]
    DuplicateSite(String),
    /// A site without a name.
    #[error("a configured site has no name; every site needs the name used in spec.override")]
    UnnamedSite,
}

/// Loads the file (if any), then the process's `MULTICASSKOP_*` environment variables.
pub fn load(file: Option<&Path>) -> Result<Settings, SettingsError> {
    load_with_env(file, env::process_vars())
}

/// Loads the file (if any), then the given environment variables (name, value).
pub fn load_with_env(
    file: Option<&Path>,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Settings, SettingsError> {
    let mut settings = match file {
        Some(file) => config::Config::builder()
            .add_source(config::File::from(file).format(config::FileFormat::Yaml))
            .build()
            .and_then(config::Config::try_deserialize)
            .map_err(|source| SettingsError::Load {
                file: file.display().to_string(),
                source,
            })?,
        None => Settings::default(),
    };
    env::apply(&mut settings, vars)?;
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
            self.sites
                .push(SiteConfig::new(name, SiteSource::Management));
        }
        for name in remotes {
            self.sites
                .push(SiteConfig::new(name, SiteSource::go_remote(name)));
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
            let source = if i == 0 {
                SiteSource::Management
            } else {
                SiteSource::kubeconfig(Some(path), Some(name))
            };
            settings.sites.push(SiteConfig::new(*name, source));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Set only in the child process [`file_then_environment`] starts.
    const CHILD_FILE: &str = "MC_TEST_SETTINGS_FILE";

    const FILE: &str = "namespace: ring\nlogFormat: json\nhttpAddr: 127.0.0.1:9000\ntenancy:\n  allowedNamespaces:\n    team-a: [cassandra-a]\nallowInsecureSkipTlsVerify: true\nmetricsAddr: 127.0.0.1:8443\nleaderElection:\n  leaseDurationSeconds: 20\nsites:\n  - name: a\n    kubeconfig: /k/a\n    context: ctx-a\n  - name: b\n    local: true\n  - name: c\n    context: ctx-c\n    namespace: cass\n  - name: d\nsecrets:\n  namespace: mc\n";

    /// The file alone, then the same file under real environment variables set in a child
    /// process (this test binary, running only [`file_then_environment_in_child`]).
    #[test]
    fn file_then_environment() {
        let dir = std::env::temp_dir().join(format!("mc-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("settings.yaml");
        std::fs::write(&file, FILE).expect("write");

        let s = load_with_env(Some(&file), []).expect("loads");
        assert_eq!(s.namespace.as_deref(), Some("ring"));
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(
            s.sites,
            vec![
                SiteConfig::new(
                    "a",
                    SiteSource::File {
                        path: "/k/a".into(),
                        context: Some("ctx-a".into())
                    }
                ),
                SiteConfig::new("b", SiteSource::Management),
                SiteConfig {
                    namespace: Some("cass".into()),
                    ..SiteConfig::new(
                        "c",
                        SiteSource::DefaultKubeconfig {
                            context: "ctx-c".into()
                        }
                    )
                },
                SiteConfig::new("d", SiteSource::Default),
            ]
        );
        assert_eq!(s.secrets.namespace.as_deref(), Some("mc"));
        assert_eq!(s.secrets.label_selector, crate::labels::SITE_SECRET_LABEL);
        assert!(s.tenancy.allows("team-a", "cassandra-a"));
        assert!(!s.tenancy.allows("team-a", "team-b"));
        assert!(s.allow_insecure_skip_tls_verify);
        assert_eq!(s.metrics_addr.as_deref(), Some("127.0.0.1:8443"));
        assert_eq!(s.http_addr.as_deref(), Some("127.0.0.1:9000"));
        assert_eq!(s.leader_election.lease_duration_seconds, 20);

        let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "config::tests::file_then_environment_in_child",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_FILE, &file)
            .env("MULTICASSKOP_SECRETS__NAMESPACE", "from-env")
            .env("MULTICASSKOP_HTTP_ADDR", "0.0.0.0:8080")
            .env("MULTICASSKOP_LOG_FORMAT", "plain")
            .env("MULTICASSKOP_LEADER_ELECTION__LEASE_DURATION_SECONDS", "42")
            .env(
                "MULTICASSKOP_TENANCY__ALLOWED_NAMESPACES",
                "{team-b: [cassandra-b]}",
            )
            .output()
            .expect("child runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "child failed:\n{stdout}\n{stderr}"
        );
        std::fs::remove_dir_all(dir).ok();
    }

    /// Runs only in the child of [`file_then_environment`]; passes trivially otherwise.
    #[test]
    fn file_then_environment_in_child() {
        let Some(file) = std::env::var_os(CHILD_FILE) else {
            return;
        };
        let s = load(Some(Path::new(&file))).expect("loads");
        assert_eq!(s.secrets.namespace.as_deref(), Some("from-env"));
        assert_eq!(s.http_addr.as_deref(), Some("0.0.0.0:8080"));
        assert_eq!(s.log_format, LogFormat::Plain);
        assert_eq!(s.leader_election.lease_duration_seconds, 42);
        assert!(s.tenancy.allows("team-b", "cassandra-b"));
        assert!(
            !s.tenancy.allows("team-a", "cassandra-a"),
            "the variable replaces the file's map"
        );
        assert_eq!(
            s.namespace.as_deref(),
            Some("ring"),
            "the file's, unset in the environment"
        );
        assert_eq!(s.sites.len(), 4);
    }

    #[test]
    fn local_with_a_kubeconfig_is_refused() {
        let err = serde_yaml::from_str::<SiteConfig>("{name: a, local: true, kubeconfig: /k}")
            .expect_err("contradictory");
        assert!(err.to_string().contains("not both"), "{err}");
    }

    #[test]
    fn sites_print_as_the_file_writes_them() {
        let sites = vec![
            SiteConfig::new("b", SiteSource::Management),
            SiteConfig::new("c", SiteSource::kubeconfig(None, Some("x"))),
        ];
        let yaml = serde_yaml::to_string(&sites).expect("yaml");
        assert_eq!(yaml, "- name: b\n  local: true\n- name: c\n  context: x\n");
        assert_eq!(
            serde_yaml::from_str::<Vec<SiteConfig>>(&yaml).expect("reads back"),
            sites
        );
    }

    #[test]
    fn go_flags_and_site_flags() {
        let s = Settings::default().with_flag_sites(
            Some("k8s-cluster1"),
            &["k8s-cluster2".into()],
            &[SiteConfig::new(
                "c",
                SiteSource::kubeconfig(Some(Path::new("/tmp/c.kubeconfig")), Some("ctx")),
            )],
        );
        let names: Vec<_> = s.sites.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, vec!["k8s-cluster1", "k8s-cluster2", "c"]);
        assert_eq!(s.sites[0].source, SiteSource::Management);
        assert_eq!(s.sites[1].source, SiteSource::go_remote("k8s-cluster2"));
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
        assert_eq!(s.sites[0], SiteConfig::new("a", SiteSource::Management));
        assert_eq!(
            s.sites[1],
            SiteConfig::new(
                "b",
                SiteSource::File {
                    path: "/k/b".into(),
                    context: Some("b".into())
                }
            )
        );
        assert!(Settings::for_site_kubeconfigs(&[]).sites.is_empty());
    }
}
