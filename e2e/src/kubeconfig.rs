//! Site kubeconfigs: clients for a named context, one merged file with every site, private writes.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// A kubeconfig could not be read, merged, written or turned into a client.
#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    /// Reading or parsing a kubeconfig file failed.
    #[error("could not read kubeconfig {path}; is the site started?")]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// The context is missing or unusable.
    #[error("kubeconfig {path} has no usable context {context:?}; contexts are named after sites")]
    Context {
        /// The file.
        path: PathBuf,
        /// The context.
        context: String,
        /// What went wrong.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// The client could not be built from the configuration.
    #[error("could not build a client from kubeconfig {path} context {context:?}")]
    Client {
        /// The file.
        path: PathBuf,
        /// The context.
        context: String,
        /// What went wrong.
        #[source]
        source: kube::Error,
    },
    /// Two kubeconfigs could not be merged.
    #[error("could not merge kubeconfig {path} into the others")]
    Merge {
        /// The file that did not merge.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// No kubeconfig to merge.
    #[error("no kubeconfig given to merge")]
    Nothing,
    /// The merged kubeconfig could not be serialised.
    #[error("could not serialise the merged kubeconfig")]
    Serialize(#[source] serde_yaml::Error),
    /// The file could not be written.
    #[error("could not write kubeconfig {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
}

/// Selects rustls' `ring` crypto provider for the process, unless one is already installed
/// (rustls cannot choose by itself when several providers are compiled in).
pub fn install_crypto_provider() {
    // An error means a provider is already installed, which is all we need.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Builds a client for `context` of the kubeconfig at `path`.
pub async fn client_for(path: &Path, context: &str) -> Result<Client, KubeconfigError> {
    install_crypto_provider();
    let kubeconfig = Kubeconfig::read_from(path).map_err(|source| KubeconfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let options = KubeConfigOptions {
        context: Some(context.to_string()),
        ..KubeConfigOptions::default()
    };
    let config = Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|source| KubeconfigError::Context {
            path: path.to_path_buf(),
            context: context.to_string(),
            source,
        })?;
    Client::try_from(config).map_err(|source| KubeconfigError::Client {
        path: path.to_path_buf(),
        context: context.to_string(),
        source,
    })
}

/// Merges kubeconfig files the way kubectl does (first file wins on name clashes, its current
/// context stays current).
pub fn merge(paths: &[&Path]) -> Result<Kubeconfig, KubeconfigError> {
    let mut merged: Option<Kubeconfig> = None;
    for path in paths {
        let next = Kubeconfig::read_from(path).map_err(|source| KubeconfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        merged = Some(match merged {
            None => next,
            Some(acc) => acc.merge(next).map_err(|source| KubeconfigError::Merge {
                path: path.to_path_buf(),
                source,
            })?,
        });
    }
    merged.ok_or(KubeconfigError::Nothing)
}

/// Writes the merge of `paths` to `out` (mode 0600, atomically).
pub fn write_merged(paths: &[&Path], out: &Path) -> Result<(), KubeconfigError> {
    let merged = merge(paths)?;
    let yaml = serde_yaml::to_string(&merged).map_err(KubeconfigError::Serialize)?;
    write_private(out, yaml.as_bytes()).map_err(|source| KubeconfigError::Write {
        path: out.to_path_buf(),
        source,
    })
}

/// Writes `bytes` to `path` readable by the owner only, through a temporary file and a rename
/// so that readers never see half a file. Creates parent directories.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kubeconfig(name: &str, port: u16) -> String {
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: {name}\nclusters:\n- name: {name}\n  cluster:\n    server: https://127.0.0.1:{port}\n    certificate-authority-data: Zm9v\nusers:\n- name: {name}\n  user:\n    token: t-{name}\ncontexts:\n- name: {name}\n  context:\n    cluster: {name}\n    user: {name}\n"
        )
    }

    #[test]
    fn merges_every_site_as_a_context() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.kubeconfig");
        let b = dir.path().join("b.kubeconfig");
        std::fs::write(&a, kubeconfig("site-a", 1001)).unwrap();
        std::fs::write(&b, kubeconfig("site-b", 1002)).unwrap();
        let out = dir.path().join("out").join("merged.kubeconfig");
        write_merged(&[&a, &b], &out).unwrap();
        let merged = Kubeconfig::read_from(&out).unwrap();
        let contexts: Vec<&str> = merged.contexts.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(contexts, ["site-a", "site-b"]);
        assert_eq!(merged.current_context.as_deref(), Some("site-a"));
        let servers: Vec<_> = merged
            .clusters
            .iter()
            .map(|c| c.cluster.as_ref().unwrap().server.clone().unwrap())
            .collect();
        assert_eq!(
            servers,
            ["https://127.0.0.1:1001", "https://127.0.0.1:1002"]
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn merging_nothing_is_an_error() {
        assert!(matches!(merge(&[]), Err(KubeconfigError::Nothing)));
    }

    #[tokio::test]
    async fn client_for_unknown_context_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.kubeconfig");
        std::fs::write(&a, kubeconfig("site-a", 1001)).unwrap();
        let Err(err) = client_for(&a, "site-z").await else {
            panic!("context site-z should not exist")
        };
        assert!(err.to_string().contains("site-z"), "{err}");
    }
}
