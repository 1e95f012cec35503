//! Where a site's connection comes from. Every way to reach a site (the settings file, the
//! `-l`/`-r`/`--site` flags, a Secret of the management cluster, the CLI's own kubeconfig) is a
//! [`SiteSource`]; the registry connects every site through [`SiteSource::connect`] (see
//! [`crate::sites::SiteRegistry::connect`]), so a new way to reach a site is one variant here
//! and one provider feeding the registry, like multicluster-runtime's `Provider`s.
//!
//! The providers today: the settings (`run.rs`, once at start) and the site Secrets
//! (`secrets.rs`, watched).

use std::fmt;
use std::path::{Path, PathBuf};

use kube::Client;

use crate::sites::connect::{self, ConnectError, Counted, InsecureTls, SecretReadError};

/// Where the Go Multi-CassKop's Helm chart mounted each remote site's kubeconfig.
pub const ADMIRALTY_IMPORT_DIR: &str = "/var/run/secrets/admiralty.io/serviceaccountimports";

/// How to reach one site.
#[derive(Clone, PartialEq, Eq)]
pub enum SiteSource {
    /// The management cluster's own connection (settings `local: true`, flag `-l NAME`).
    Management,
    /// A kubeconfig file, and a context in it (default: its current context). Settings
    /// `kubeconfig:`, flag `--site NAME=FILE[:CONTEXT]`, flag `-r NAME` when admiralty's import
    /// is mounted.
    File {
        /// The kubeconfig file.
        path: PathBuf,
        /// The context (default: the file's current context).
        context: Option<String>,
    },
    /// A context of the default kubeconfig (`$KUBECONFIG`, else `~/.kube/config`). Settings
    /// `context:` without `kubeconfig:`, flag `-r NAME` when no import is mounted.
    DefaultKubeconfig {
        /// The context.
        context: String,
    },
    /// The default connection: `$KUBECONFIG` or `~/.kube/config` with its current context,
    /// else the pod's service account (in-cluster).
    Default,
    /// Kubeconfig text held in a Secret of the management cluster (`secrets.namespace`).
    Secret {
        /// `secret <namespace>/<name> sha256:<hash>`: names it in messages and tells rotations.
        origin: String,
        /// The kubeconfig, or why the Secret holds none.
        kubeconfig: Result<String, SecretReadError>,
    },
}

/// Never shows a Secret's kubeconfig: it holds credentials.
impl fmt::Debug for SiteSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SiteSource::Secret { origin, kubeconfig } => f
                .debug_struct("Secret")
                .field("origin", origin)
                .field("kubeconfig", &kubeconfig.as_ref().map(|_| "(withheld)"))
                .finish(),
            SiteSource::Management => f.write_str("Management"),
            SiteSource::File { path, context } => f
                .debug_struct("File")
                .field("path", path)
                .field("context", context)
                .finish(),
            SiteSource::DefaultKubeconfig { context } => f
                .debug_struct("DefaultKubeconfig")
                .field("context", context)
                .finish(),
            SiteSource::Default => f.write_str("Default"),
        }
    }
}

impl SiteSource {
    /// A kubeconfig file and context; without a file, the default kubeconfig's context; with
    /// neither, the default connection.
    pub fn kubeconfig(path: Option<&Path>, context: Option<&str>) -> SiteSource {
        match (path, context) {
            (Some(path), context) => SiteSource::File {
                path: path.to_path_buf(),
                context: context.map(str::to_string),
            },
            (None, Some(context)) => SiteSource::DefaultKubeconfig {
                context: context.to_string(),
            },
            (None, None) => SiteSource::Default,
        }
    }

    /// The Go Multi-CassKop's `-r NAME`: the kubeconfig its Helm chart mounted from admiralty's
    /// export when present, else the default kubeconfig's context NAME.
    pub fn go_remote(name: &str) -> SiteSource {
        Self::go_remote_in(Path::new(ADMIRALTY_IMPORT_DIR), name)
    }

    fn go_remote_in(import_dir: &Path, name: &str) -> SiteSource {
        let mounted = import_dir.join(name).join("config");
        if mounted.is_file() {
            SiteSource::File {
                path: mounted,
                context: None,
            }
        } else {
            SiteSource::DefaultKubeconfig {
                context: name.to_string(),
            }
        }
    }

    /// Where the connection comes from, in words (for logs and `SiteHandle::source`). For a
    /// Secret it includes a fingerprint of the content, so a rotation shows as a change.
    pub fn describe(&self) -> String {
        let context = |c: &Option<String>| c.clone().unwrap_or_else(|| "(current)".into());
        match self {
            SiteSource::Management => "the management cluster's connection".into(),
            SiteSource::File { path, context: c } => {
                format!("{} context {}", path.display(), context(c))
            }
            SiteSource::DefaultKubeconfig { context } => {
                format!("default kubeconfig context {context}")
            }
            SiteSource::Default => "the default connection (KUBECONFIG or in-cluster)".into(),
            SiteSource::Secret { origin, .. } => origin.clone(),
        }
    }

    /// A client for the site named `site`. `management` is the management cluster's client,
    /// when there is one; `counted` says where the client counts its requests; `tls` whether
    /// the kubeconfig may turn TLS verification off.
    pub async fn connect(
        &self,
        site: &str,
        management: Option<&Client>,
        counted: Counted<'_>,
        tls: InsecureTls,
    ) -> Result<Client, ConnectError> {
        match self {
            SiteSource::Management => {
                management
                    .cloned()
                    .ok_or_else(|| ConnectError::NoManagement {
                        site: site.to_string(),
                    })
            }
            SiteSource::File { path, context } => {
                connect::from_file(path, context.as_deref(), counted, tls).await
            }
            SiteSource::DefaultKubeconfig { context } => {
                connect::from_default_kubeconfig(Some(context), counted, tls).await
            }
            SiteSource::Default => connect::default_client(counted).await,
            SiteSource::Secret { origin, kubeconfig } => match kubeconfig {
                Ok(yaml) => connect::from_yaml(yaml, None, origin, counted, tls).await,
                Err(e) => Err(e.clone().into()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_forms() {
        assert_eq!(SiteSource::kubeconfig(None, None), SiteSource::Default);
        assert_eq!(
            SiteSource::kubeconfig(None, Some("c")),
            SiteSource::DefaultKubeconfig {
                context: "c".into()
            }
        );
        assert_eq!(
            SiteSource::kubeconfig(Some(Path::new("/k")), None),
            SiteSource::File {
                path: "/k".into(),
                context: None
            }
        );
    }

    #[test]
    fn go_remote_prefers_the_mounted_import() {
        let dir = std::env::temp_dir().join(format!("mc-import-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("east")).expect("dir");
        std::fs::write(dir.join("east/config"), "x").expect("write");
        assert_eq!(
            SiteSource::go_remote_in(&dir, "east"),
            SiteSource::File {
                path: dir.join("east/config"),
                context: None
            }
        );
        assert_eq!(
            SiteSource::go_remote_in(&dir, "west"),
            SiteSource::DefaultKubeconfig {
                context: "west".into()
            },
            "falls back to the kubeconfig context named after the site"
        );
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn debug_withholds_secret_content() {
        let source = SiteSource::Secret {
            origin: "secret mc/east sha256:00".into(),
            kubeconfig: Ok("token: hunter2hunter2".into()),
        };
        let shown = format!("{source:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("secret mc/east"), "{shown}");
    }

    #[tokio::test]
    async fn management_source_needs_the_management_connection() {
        let Err(err) = SiteSource::Management
            .connect("east", None, None, InsecureTls::Refuse)
            .await
        else {
            panic!("connected without a management connection")
        };
        assert!(matches!(err, ConnectError::NoManagement { site } if site == "east"));
        let unreadable = SiteSource::Secret {
            origin: "o".into(),
            kubeconfig: Err(SecretReadError::NotText {
                secret: "mc/east".into(),
            }),
        };
        let Err(err) = unreadable
            .connect("east", None, None, InsecureTls::Refuse)
            .await
        else {
            panic!("connected without a kubeconfig")
        };
        assert!(matches!(
            err,
            ConnectError::Secret(SecretReadError::NotText { .. })
        ));
    }
}
