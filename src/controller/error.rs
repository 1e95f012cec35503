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
}

impl SiteError {
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

/// What failed while reading or labelling the pods of a site's CassandraCluster (the pod
/// operations of a joining site's rebuild).
#[derive(Debug, thiserror::Error)]
pub enum PodError {
    /// The site did not answer in time or at all.
    #[error(
        "site {site} is unreachable while {action} pods of CassandraCluster {namespace}/{cluster}: {message}"
    )]
    Unreachable {
        /// Site.
        site: String,
        /// What we tried.
        action: &'static str,
        /// Namespace.
        namespace: String,
        /// CassandraCluster whose pods these are.
        cluster: String,
        /// Cause.
        message: String,
    },
    /// The site's API server refused the request.
    #[error("site {site}: {action} pod(s) {namespace}/{name} failed: {message}")]
    Api {
        /// Site.
        site: String,
        /// What we tried.
        action: &'static str,
        /// Namespace.
        namespace: String,
        /// Pod (or the selector of the list).
        name: String,
        /// The API server's explanation, with a hint.
        message: String,
    },
}

impl PodError {
    /// Classifies a client error from `site` while doing `action` on pods `namespace/name` of
    /// CassandraCluster `cluster`.
    pub fn from_kube(
        site: &str,
        action: &'static str,
        (namespace, cluster, name): (&str, &str, &str),
        error: kube::Error,
    ) -> Self {
        match error {
            kube::Error::Api(status) => {
                let hint = match status.code {
                    403 => {
                        "; the site's service account needs get, list and patch on pods in that namespace: run `multi-casskop site add` again (deploy/site-rbac)"
                    }
                    404 => "; the pod is gone (it is looked for again at the next reconcile)",
                    _ => "",
                };
                PodError::Api {
                    site: site.into(),
                    action,
                    namespace: namespace.into(),
                    name: name.into(),
                    message: format!("{} ({}){hint}", status.message, status.code),
                }
            }
            other => PodError::Unreachable {
                site: site.into(),
                action,
                namespace: namespace.into(),
                cluster: cluster.into(),
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

    #[test]
    fn pod_errors_say_what_to_grant() {
        let forbidden = PodError::from_kube(
            "d",
            "label",
            ("ns", "cass", "cass-dc4-rack1-0"),
            api_error(403),
        );
        let text = forbidden.to_string();
        assert!(
            text.starts_with("site d: label pod(s) ns/cass-dc4-rack1-0 failed"),
            "{text}"
        );
        assert!(text.contains("get, list and patch on pods"), "{text}");
        let down = PodError::from_kube(
            "d",
            "list",
            ("ns", "cass", "-"),
            kube::Error::Service("refused".into()),
        );
        assert!(matches!(down, PodError::Unreachable { .. }), "{down}");
    }
}
