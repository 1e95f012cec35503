//! Turns kubeconfig text (a file and context, Secret bytes, the default kubeconfig or the
//! in-cluster service account) into a Kubernetes client, and says why it cannot without ever
//! quoting a credential. Which of these a site uses is its `SiteSource` (see `source.rs`).
//! Building a client does not contact the site, so a site that is down never delays start-up.

use std::path::{Path, PathBuf};
use std::time::Duration;

use std::sync::Arc;

use kube::client::ClientBuilder;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::metrics::{Metrics, count_requests};

/// How long a request may wait to connect to a site before the site counts as unreachable.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a site has no client. Messages name the file or Secret, and the line and column of a
/// parse error, but never quote the kubeconfig: it holds credentials, and these messages reach
/// logs, `/metrics`-adjacent tooling, and the status of every MultiCasskop using the site.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The kubeconfig file could not be read.
    #[error("cannot read kubeconfig {path}: {detail}")]
    ReadKubeconfig {
        /// File.
        path: PathBuf,
        /// Cause, without content.
        detail: String,
    },
    /// The kubeconfig text is not valid.
    #[error("kubeconfig in {origin} is not valid: {detail}")]
    ParseKubeconfig {
        /// Where it came from.
        origin: String,
        /// Cause, without content.
        detail: String,
    },
    /// The context or its cluster/user cannot be used.
    #[error("cannot use context {context:?} of the kubeconfig in {origin}: {detail}")]
    Context {
        /// Where it came from.
        origin: String,
        /// Context asked for.
        context: String,
        /// Cause, with any credential of the kubeconfig redacted.
        detail: String,
    },
    /// The kubeconfig turns TLS verification off and the settings do not allow it.
    #[error(
        "kubeconfig in {origin}: cluster {cluster:?} has insecure-skip-tls-verify: true, which lets anyone on the network path impersonate the site; refused (give the cluster's certificate-authority-data, or set allowInsecureSkipTlsVerify in the controller's settings)"
    )]
    Insecure {
        /// Where it came from.
        origin: String,
        /// Cluster entry of the kubeconfig.
        cluster: String,
    },
    /// The default connection (KUBECONFIG or in-cluster) cannot be set up.
    #[error(
        "cannot configure the default connection (KUBECONFIG or in-cluster service account): {0}"
    )]
    Default(#[source] kube::config::InferConfigError),
    /// The client cannot be built (e.g. TLS material invalid).
    #[error("cannot build a client from the kubeconfig in {origin}: {detail}")]
    Client {
        /// Where it came from.
        origin: String,
        /// Cause, with any credential of the kubeconfig redacted.
        detail: String,
    },
    /// A site Secret holds no usable kubeconfig.
    #[error(transparent)]
    Secret(#[from] SecretReadError),
    /// The management cluster's own connection was asked for where there is none (connecting
    /// the management cluster itself, or a command that has no management connection).
    #[error("site {site:?} uses the management cluster's connection, which is not available here")]
    NoManagement {
        /// The site.
        site: String,
    },
}

/// Why a site Secret yields no kubeconfig text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SecretReadError {
    /// None of the keys that may hold a kubeconfig is present.
    #[error("secret {secret} has no key {keys} holding a kubeconfig")]
    NoKey {
        /// `namespace/name`.
        secret: String,
        /// The keys looked for, as words.
        keys: String,
    },
    /// The kubeconfig is not text.
    #[error("secret {secret}: kubeconfig is not UTF-8 text")]
    NotText {
        /// `namespace/name`.
        secret: String,
    },
}

/// Whether a site's kubeconfig may turn TLS verification off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsecureTls {
    /// `insecure-skip-tls-verify: true` is refused (sites, by default).
    Refuse,
    /// Accepted with a warning (the settings' `allowInsecureSkipTlsVerify`, and the operator's
    /// own kubeconfig for the management cluster and the CLI).
    Allow,
}

/// A kubeconfig error as words that never quote the kubeconfig: parse errors become their
/// line and column (serde-saphyr's messages quote values and render the surrounding lines).
pub fn describe_kubeconfig_error(error: &kube::config::KubeconfigError) -> String {
    use kube::config::KubeconfigError as E;
    match error {
        E::Parse(e) => match e.location() {
            Some(at) => format!(
                "not a valid kubeconfig (YAML syntax or a field of the wrong type) at line {}, column {} (content not shown: it may hold credentials)",
                at.line(),
                at.column()
            ),
            None => "not a valid kubeconfig (YAML syntax or a field of the wrong type; content not shown: it may hold credentials)".into(),
        },
        E::ReadConfig(io, path) => {
            format!("cannot read {}: {}", path.display(), io.kind())
        }
        other => other.to_string(),
    }
}

/// The credentials a kubeconfig holds (to redact them from any message).
fn credentials(kubeconfig: &Kubeconfig) -> Vec<String> {
    use secrecy::ExposeSecret;
    let mut found = Vec::new();
    for auth in kubeconfig
        .auth_infos
        .iter()
        .filter_map(|a| a.auth_info.as_ref())
    {
        for secret in [&auth.token, &auth.password, &auth.client_key_data]
            .into_iter()
            .flatten()
        {
            found.push(secret.expose_secret().to_string());
        }
        found.extend(auth.client_certificate_data.clone());
        found.extend(auth.username.clone());
    }
    found.retain(|s| s.len() >= 8);
    found
}

/// Withholds `message` if it quotes any 8 characters of a credential.
fn redact(message: String, secrets: &[String]) -> String {
    let leaks = secrets.iter().any(|secret| {
        let chars: Vec<char> = secret.chars().collect();
        chars
            .windows(8)
            .any(|w| message.contains(&w.iter().collect::<String>()))
    });
    if leaks {
        "details withheld: they would quote a credential of the kubeconfig".into()
    } else {
        message
    }
}

/// The cluster an insecure kubeconfig context points at, if its TLS verification is off.
pub fn insecure_cluster(kubeconfig: &Kubeconfig, context: Option<&str>) -> Option<String> {
    let context = context
        .map(str::to_string)
        .or_else(|| kubeconfig.current_context.clone())?;
    let cluster = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context)?
        .context
        .as_ref()?
        .cluster
        .clone();
    kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == cluster)?
        .cluster
        .as_ref()?
        .insecure_skip_tls_verify
        .filter(|insecure| *insecure)
        .map(|_| cluster)
}

/// Selects rustls' `ring` crypto provider for the process unless one is installed already
/// (kube leaves the choice to the application).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Where a client's requests are counted: the metrics and the site label, or nowhere.
pub type Counted<'a> = Option<(&'a Arc<Metrics>, &'a str)>;

/// Client for a kubeconfig file and optional context (default: the file's current context).
pub async fn from_file(
    path: &Path,
    context: Option<&str>,
    counted: Counted<'_>,
    tls: InsecureTls,
) -> Result<Client, ConnectError> {
    let kubeconfig =
        Kubeconfig::read_from(path).map_err(|source| ConnectError::ReadKubeconfig {
            path: path.to_path_buf(),
            detail: describe_kubeconfig_error(&source),
        })?;
    from_kubeconfig(
        kubeconfig,
        context,
        &path.display().to_string(),
        counted,
        tls,
    )
    .await
}

/// Client for kubeconfig YAML (e.g. from a Secret); `origin` names it in errors.
pub async fn from_yaml(
    yaml: &str,
    context: Option<&str>,
    origin: &str,
    counted: Counted<'_>,
    tls: InsecureTls,
) -> Result<Client, ConnectError> {
    let kubeconfig =
        Kubeconfig::from_yaml(yaml).map_err(|source| ConnectError::ParseKubeconfig {
            origin: origin.into(),
            detail: describe_kubeconfig_error(&source),
        })?;
    from_kubeconfig(kubeconfig, context, origin, counted, tls).await
}

/// Client for a context of the default kubeconfig (`$KUBECONFIG`, else `~/.kube/config`).
pub async fn from_default_kubeconfig(
    context: Option<&str>,
    counted: Counted<'_>,
    tls: InsecureTls,
) -> Result<Client, ConnectError> {
    let origin = "the default kubeconfig";
    let kubeconfig = Kubeconfig::read().map_err(|source| ConnectError::ParseKubeconfig {
        origin: origin.into(),
        detail: describe_kubeconfig_error(&source),
    })?;
    from_kubeconfig(kubeconfig, context, origin, counted, tls).await
}

/// Client for the default connection: `$KUBECONFIG`/`~/.kube/config` or in-cluster.
pub async fn default_client(counted: Counted<'_>) -> Result<Client, ConnectError> {
    install_crypto_provider();
    let mut config = Config::infer().await.map_err(ConnectError::Default)?;
    config.connect_timeout = Some(DEFAULT_CONNECT_TIMEOUT);
    build(config, "the default connection", counted, &[])
}

async fn from_kubeconfig(
    kubeconfig: Kubeconfig,
    context: Option<&str>,
    origin: &str,
    counted: Counted<'_>,
    tls: InsecureTls,
) -> Result<Client, ConnectError> {
    install_crypto_provider();
    if let Some(cluster) = insecure_cluster(&kubeconfig, context) {
        match tls {
            InsecureTls::Refuse => {
                return Err(ConnectError::Insecure {
                    origin: origin.into(),
                    cluster,
                });
            }
            InsecureTls::Allow => {
                tracing::warn!(%origin, %cluster, "kubeconfig has insecure-skip-tls-verify: true; TLS verification is off for this connection (allowed by the settings)");
            }
        }
    }
    let secrets = credentials(&kubeconfig);
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
        ..Default::default()
    };
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|source| ConnectError::Context {
            origin: origin.into(),
            context: context.unwrap_or("(current)").into(),
            detail: redact(describe_kubeconfig_error(&source), &secrets),
        })?;
    config.connect_timeout = Some(DEFAULT_CONNECT_TIMEOUT);
    build(config, origin, counted, &secrets)
}

fn build(
    config: Config,
    origin: &str,
    counted: Counted<'_>,
    secrets: &[String],
) -> Result<Client, ConnectError> {
    let builder = ClientBuilder::try_from(config).map_err(|source| ConnectError::Client {
        origin: origin.into(),
        detail: redact(source.to_string(), secrets),
    })?;
    Ok(match counted {
        Some((metrics, site)) => builder
            .with_layer(&count_requests(metrics.clone(), site.to_string()))
            .build(),
        None => builder.build(),
    })
}
