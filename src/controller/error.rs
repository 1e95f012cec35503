//! Errors of a reconcile, by where they happened.

use crate::core::validate::Finding;

/// What failed while writing to a site, classified by what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    /// The site did not answer (down, network, TLS, timeout) or rejected our credentials.
    #[error("site {site} is unreachable: {message}")]
    Unreachable {
        /// Site.
        site: String,
        /// Cause.
        message: String,
    },
    /// The site's API server refused the object (e.g. CassKop's CRD schema rejected it).
    #[error("site {site} rejected CassandraCluster {namespace}/{name}: {message}")]
    Rejected {
        /// Site.
        site: String,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The API server's explanation.
        message: String,
    },
    /// Any other API error (forbidden, namespace missing, CRD not installed, ...).
    #[error("site {site}: {action} CassandraCluster {namespace}/{name} failed: {message}")]
    Api {
        /// Site.
        site: String,
        /// What we tried.
        action: &'static str,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The API server's explanation, with a hint.
        message: String,
    },
    /// A request about pods at the site failed (listing them, or labelling one for a pod
    /// operation).
    #[error("site {site}: {action} {what} in namespace {namespace} failed: {message}")]
    Pods {
        /// Site.
        site: String,
        /// What we tried.
        action: &'static str,
        /// Namespace.
        namespace: String,
        /// The pods concerned (`pod <name>`, or `pods of <cluster>`).
        what: String,
        /// The API server's explanation.
        message: String,
    },
}

impl SiteError {
    /// Classifies a client error about pods (`what`) at `site`: an unanswered request is
    /// `Unreachable`, anything else is [`SiteError::Pods`].
    pub fn from_kube_pods(
        site: &str,
        action: &'static str,
        namespace: &str,
        what: &str,
        error: kube::Error,
    ) -> Self {
        match Self::from_kube(site, action, namespace, what, error) {
            unreachable @ SiteError::Unreachable { .. } => unreachable,
            SiteError::Rejected { message, .. }
            | SiteError::Api { message, .. }
            | SiteError::Pods { message, .. } => SiteError::Pods {
                site: site.to_string(),
                action,
                namespace: namespace.to_string(),
                what: what.to_string(),
                message,
            },
        }
    }

    /// Classifies a client error from `site` while doing `action` on `namespace/name`.
    pub fn from_kube(
        site: &str,
        action: &'static str,
        namespace: &str,
        name: &str,
        error: kube::Error,
    ) -> Self {
        let (site, namespace, name) = (site.to_string(), namespace.to_string(), name.to_string());
        match error {
            kube::Error::Api(status) => match status.code {
                400 | 422 => SiteError::Rejected {
                    site,
                    namespace,
                    name,
                    message: status.message,
                },
                401 => SiteError::Unreachable {
                    site,
                    message: format!(
                        "credentials rejected (401): {}; renew the site's kubeconfig",
                        status.message
                    ),
                },
                403 => SiteError::Api {
                    site,
                    action,
                    namespace,
                    name,
                    message: format!(
                        "forbidden (403): {}; grant the site's service account the multi-casskop site role in that namespace",
                        status.message
                    ),
                },
                404 => SiteError::Api {
                    site,
                    action,
                    namespace,
                    name,
                    message: format!(
                        "not found (404): {}; create the namespace and install CassKop's CassandraCluster CRD at the site",
                        status.message
                    ),
                },
                code => SiteError::Api {
                    site,
                    action,
                    namespace,
                    name,
                    message: format!("{} ({code})", status.message),
                },
            },
            other => SiteError::Unreachable {
                site,
                message: other.to_string(),
            },
        }
    }
}

/// Errors that fail a whole reconcile (they are retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request to the management cluster failed.
    #[error("{action} MultiCasskop {namespace}/{name} in the management cluster failed: {source}")]
    Management {
        /// What we tried.
        action: &'static str,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// Cause.
        source: kube::Error,
    },
    /// The MultiCasskop has no namespace (cannot happen for a namespaced resource).
    #[error("MultiCasskop {0} has no namespace")]
    NoNamespace(String),
    /// The status could not be serialised.
    #[error("cannot serialise the status of MultiCasskop {0}: {1}")]
    Serialize(String, serde_json::Error),
}

impl Error {
    /// Short label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Error::Management { .. } => "management",
            Error::NoNamespace(_) => "no_namespace",
            Error::Serialize(..) => "serialize",
        }
    }
}

/// Joins findings into one message.
pub fn findings_message(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(
            kube::core::Status::failure(&format!("message {code}"), "Reason").with_code(code),
        ))
    }

    #[test]
    fn site_errors_are_classified_by_what_to_do() {
        let classify = |code| SiteError::from_kube("b", "apply", "ns", "cass", api_error(code));
        assert!(matches!(classify(422), SiteError::Rejected { .. }));
        assert!(matches!(classify(400), SiteError::Rejected { .. }));
        assert!(matches!(classify(401), SiteError::Unreachable { .. }));
        let forbidden = classify(403).to_string();
        assert!(
            forbidden.contains("grant the site's service account"),
            "{forbidden}"
        );
        let missing = classify(404).to_string();
        assert!(
            missing.contains("install CassKop's CassandraCluster CRD"),
            "{missing}"
        );
        assert!(matches!(classify(500), SiteError::Api { .. }));
        let unreachable = SiteError::from_kube(
            "b",
            "apply",
            "ns",
            "cass",
            kube::Error::Service("connection refused".into()),
        );
        assert!(matches!(unreachable, SiteError::Unreachable { .. }));
        assert!(unreachable.to_string().starts_with("site b is unreachable"));
    }
}
