//! Turns a site's configuration (a kubeconfig file and context, Secret bytes, or the
//! management cluster's own connection) into a Kubernetes client. Building a client does not
//! contact the site, so a site that is down never delays start-up.

use std::path::{Path, PathBuf};
use std::time::Duration;

use std::sync::Arc;

use kube::client::ClientBuilder;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::metrics::{Metrics, count_requests};

/// How long a request may wait to connect to a site before the site counts as unreachable.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a site has no client.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The kubeconfig file could not be read.
    #[error("cannot read kubeconfig {path}: {source}")]
    ReadKubeconfig {
        /// File.
        path: PathBuf,
        /// Cause.
        source: kube::config::KubeconfigError,
    },
    /// The kubeconfig text is not valid.
    #[error("kubeconfig in {origin} is not valid: {source}")]
    ParseKubeconfig {
        /// Where it came from.
        origin: String,
        /// Cause.
        source: kube::config::KubeconfigError,
    },
    /// The context or its cluster/user cannot be used.
    #[error("cannot use context {context:?} of the kubeconfig in {origin}: {source}")]
    Context {
        /// Where it came from.
        origin: String,
        /// Context asked for.
        context: String,
        /// Cause.
        source: kube::config::KubeconfigError,
    },
    /// The default connection (KUBECONFIG or in-cluster) cannot be set up.
    #[error(
        "cannot configure the default connection (KUBECONFIG or in-cluster service account): {0}"
    )]
    Default(#[source] kube::config::InferConfigError),
    /// The client cannot be built (e.g. TLS material invalid).
    #[error("cannot build a client from the kubeconfig in {origin}: {source}")]
    Client {
        /// Where it came from.
        origin: String,
        /// Cause.
        source: kube::Error,
    },
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
) -> Result<Client, ConnectError> {
    let kubeconfig =
        Kubeconfig::read_from(path).map_err(|source| ConnectError::ReadKubeconfig {
            path: path.to_path_buf(),
            source,
        })?;
    from_kubeconfig(kubeconfig, context, &path.display().to_string(), counted).await
}

/// Client for kubeconfig YAML (e.g. from a Secret); `origin` names it in errors.
pub async fn from_yaml(
    yaml: &str,
    context: Option<&str>,
    origin: &str,
    counted: Counted<'_>,
) -> Result<Client, ConnectError> {
    let kubeconfig =
        Kubeconfig::from_yaml(yaml).map_err(|source| ConnectError::ParseKubeconfig {
            origin: origin.into(),
            source,
        })?;
    from_kubeconfig(kubeconfig, context, origin, counted).await
}

/// Client for the default connection: `$KUBECONFIG`/`~/.kube/config` or in-cluster.
pub async fn default_client(counted: Counted<'_>) -> Result<Client, ConnectError> {
    install_crypto_provider();
    let mut config = Config::infer().await.map_err(ConnectError::Default)?;
    config.connect_timeout = Some(DEFAULT_CONNECT_TIMEOUT);
    build(config, "the default connection", counted)
}

async fn from_kubeconfig(
    kubeconfig: Kubeconfig,
    context: Option<&str>,
    origin: &str,
    counted: Counted<'_>,
) -> Result<Client, ConnectError> {
    install_crypto_provider();
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
        ..Default::default()
    };
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|source| ConnectError::Context {
            origin: origin.into(),
            context: context.unwrap_or("(current)").into(),
            source,
        })?;
    config.connect_timeout = Some(DEFAULT_CONNECT_TIMEOUT);
    build(config, origin, counted)
}

fn build(config: Config, origin: &str, counted: Counted<'_>) -> Result<Client, ConnectError> {
    let builder = ClientBuilder::try_from(config).map_err(|source| ConnectError::Client {
        origin: origin.into(),
        source,
    })?;
    Ok(match counted {
        Some((metrics, site)) => builder
            .with_layer(&count_requests(metrics.clone(), site.to_string()))
            .build(),
        None => builder.build(),
    })
}
