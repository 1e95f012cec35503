//! Installs CRD YAML files exactly as written (server-side apply) and waits until the API
//! server serves them; names the two CassKop `CassandraCluster` CRD variants.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use serde::Deserialize;
use serde_json::Value;

use crate::kubeconfig::KubeconfigError;
use crate::wait;

/// Environment variable overriding the directory holding the CassKop CRD files.
pub const CRDS_DIR_ENV: &str = "CASSKOP_CRDS_DIR";

/// Field manager of the CRD installation.
pub const FIELD_MANAGER: &str = "multi-casskop-e2e";

/// How long a CRD may take to become established and served.
const SERVED_TIMEOUT: Duration = Duration::from_secs(60);

/// The `CassandraCluster` CRD as shipped by one CassKop line. Both define
/// `cassandraclusters.db.orange.com`, so a site carries one or the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CasskopCrd {
    /// Orange-OpenSource CassKop v2.1.0: versions v1alpha1 + v2, **no** status subresource.
    Orange,
    /// cscetbon/casskop (maintained successor): version v2 **with** a status subresource.
    Cscetbon,
}

impl CasskopCrd {
    /// Both variants.
    pub const ALL: [CasskopCrd; 2] = [CasskopCrd::Orange, CasskopCrd::Cscetbon];

    /// The CRD file name inside [`crds_dir`].
    pub fn file_name(self) -> &'static str {
        match self {
            CasskopCrd::Orange => "casskop-orange-v2.1.0-cassandraclusters.yaml",
            CasskopCrd::Cscetbon => "casskop-cscetbon-cassandraclusters.yaml",
        }
    }

    /// The CRD file.
    pub fn path(self) -> PathBuf {
        crds_dir().join(self.file_name())
    }

    /// Whether status is written through `/status` (and ignored on the main resource).
    pub fn has_status_subresource(self) -> bool {
        matches!(self, CasskopCrd::Cscetbon)
    }
}

/// `$CASSKOP_CRDS_DIR`, else `shared/crds` beside the repository checkout.
pub fn crds_dir() -> PathBuf {
    match std::env::var_os(CRDS_DIR_ENV).filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => crate::paths::beside_checkout("crds"),
    }
}

/// A CRD could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    /// The file could not be read.
    #[error(
        "could not read CRD file {path} (set {CRDS_DIR_ENV} if the CassKop CRDs live elsewhere)"
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// The file is not YAML.
    #[error("CRD file {path} is not valid YAML")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: serde_yaml::Error,
    },
    /// A document of the file is not a CustomResourceDefinition.
    #[error(
        "document {index} of {path} is a {kind:?}, not an apiextensions.k8s.io/v1 CustomResourceDefinition with a name"
    )]
    NotACrd {
        /// The file.
        path: PathBuf,
        /// Zero-based document index.
        index: usize,
        /// The kind found.
        kind: String,
    },
    /// The API server refused the CRD.
    #[error("the API server refused CRD {name} from {path}")]
    Apply {
        /// The CRD name.
        name: String,
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: Box<kube::Error>,
    },
    /// The CRD did not become established and served in time.
    #[error("CRD {name} was not served in time")]
    NotServed {
        /// The CRD name.
        name: String,
        /// What went wrong.
        #[source]
        source: wait::WaitError,
    },
    /// No client for a site.
    #[error("no client for site {site}")]
    Client {
        /// The site.
        site: String,
        /// What went wrong.
        #[source]
        source: Box<KubeconfigError>,
    },
}

/// Reads every CRD document of a YAML file (empty documents are skipped).
pub fn load_crds(path: &Path) -> Result<Vec<Value>, CrdError> {
    let text = std::fs::read_to_string(path).map_err(|source| CrdError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut crds = Vec::new();
    for (index, document) in serde_yaml::Deserializer::from_str(&text).enumerate() {
        let value = Value::deserialize(document).map_err(|source| CrdError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        if value.is_null() {
            continue;
        }
        let is_crd = value["apiVersion"] == "apiextensions.k8s.io/v1"
            && value["kind"] == "CustomResourceDefinition"
            && value["metadata"]["name"].is_string();
        if !is_crd {
            return Err(CrdError::NotACrd {
                path: path.to_path_buf(),
                index,
                kind: value["kind"].as_str().unwrap_or("(none)").to_string(),
            });
        }
        crds.push(value);
    }
    Ok(crds)
}

/// Server-side applies every CRD of the given files, as written, then waits until each is
/// established and its served versions appear in discovery. Returns the CRD names.
pub async fn install_crds(
    client: &Client,
    paths: &[impl AsRef<Path>],
) -> Result<Vec<String>, CrdError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut installed = Vec::new();
    for path in paths {
        let path = path.as_ref();
        for crd in load_crds(path)? {
            let name = crd["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            api.patch(&name, &params, &Patch::Apply(&crd))
                .await
                .map_err(|source| CrdError::Apply {
                    name: name.clone(),
                    path: path.to_path_buf(),
                    source: Box::new(source),
                })?;
            wait_served(client, &api, &crd, &name).await?;
            installed.push(name);
        }
    }
    Ok(installed)
}

async fn wait_served(
    client: &Client,
    api: &Api<CustomResourceDefinition>,
    crd: &Value,
    name: &str,
) -> Result<(), CrdError> {
    let not_served = |source| CrdError::NotServed {
        name: name.to_string(),
        source,
    };
    wait::until(
        format!("CRD {name} to be Established"),
        SERVED_TIMEOUT,
        || async {
            let current = api.get(name).await.map_err(|e| e.to_string())?;
            let conditions = current
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default();
            if conditions
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
            {
                Ok(())
            } else {
                Err(format!("conditions {conditions:?}"))
            }
        },
    )
    .await
    .map_err(not_served)?;

    let group = crd["spec"]["group"].as_str().unwrap_or_default();
    let plural = crd["spec"]["names"]["plural"].as_str().unwrap_or_default();
    let versions = crd["spec"]["versions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for version in versions.iter().filter(|v| v["served"] == true) {
        let group_version = format!("{group}/{}", version["name"].as_str().unwrap_or_default());
        wait::until(
            format!("{plural} in discovery of {group_version}"),
            SERVED_TIMEOUT,
            || async {
                let resources = client
                    .list_api_group_resources(&group_version)
                    .await
                    .map_err(|e| e.to_string())?;
                if resources.resources.iter().any(|r| r.name == plural) {
                    Ok(())
                } else {
                    Err(format!(
                        "resources {:?}",
                        resources
                            .resources
                            .iter()
                            .map(|r| &r.name)
                            .collect::<Vec<_>>()
                    ))
                }
            },
        )
        .await
        .map_err(not_served)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_casskop_crds_are_found_and_parse() {
        for variant in CasskopCrd::ALL {
            let crds = load_crds(&variant.path()).unwrap();
            assert_eq!(crds.len(), 1, "{variant:?}");
            let crd = &crds[0];
            assert_eq!(crd["metadata"]["name"], "cassandraclusters.db.orange.com");
            let versions = crd["spec"]["versions"].as_array().unwrap();
            let v2 = versions.iter().find(|v| v["name"] == "v2").unwrap();
            assert_eq!(
                v2["subresources"]["status"].is_object(),
                variant.has_status_subresource(),
                "{variant:?}"
            );
        }
    }

    #[test]
    fn rejects_a_non_crd_document() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.yaml");
        std::fs::write(
            &path,
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
        )
        .unwrap();
        let err = load_crds(&path).unwrap_err();
        assert!(err.to_string().contains("ConfigMap"), "{err}");
    }

    #[test]
    fn missing_file_names_the_override() {
        let err = load_crds(Path::new("/nonexistent/crd.yaml")).unwrap_err();
        assert!(err.to_string().contains(CRDS_DIR_ENV), "{err}");
    }
}
