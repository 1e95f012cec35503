//! The tenant boundary: which namespaces at the sites a MultiCasskop may target.
//!
//! A MultiCasskop author is trusted only with their own namespace. By default a MultiCasskop
//! in namespace `team-a` only ever targets CassandraClusters in namespace `team-a` at each site.
//! Other site namespaces (the Go version's `metadata.namespace` in `base` or an override) are
//! allowed only where the controller's administrator lists them in the settings
//! (`tenancy.allowedNamespaces`), never by the MultiCasskop alone.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What the controller's administrator allows beyond the default tenant boundary.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct TenancyPolicy {
    /// MultiCasskop namespace → the other namespaces its MultiCasskops may target at the sites.
    /// `"*"` as a value allows every namespace (for a cluster-admin's own namespace only).
    pub allowed_namespaces: BTreeMap<String, Vec<String>>,
}

/// The rule, as quoted in every refusal.
pub const RULE: &str = "a MultiCasskop only manages CassandraClusters in its own namespace at each site, unless the controller's settings allow another (tenancy.allowedNamespaces)";

impl TenancyPolicy {
    /// Whether a MultiCasskop in `owner_namespace` may target `target` at a site. Its own
    /// namespace is always allowed.
    pub fn allows(&self, owner_namespace: &str, target: &str) -> bool {
        target == owner_namespace
            || self
                .allowed_namespaces
                .get(owner_namespace)
                .is_some_and(|allowed| allowed.iter().any(|a| a == target || a == "*"))
    }

    /// `Err(message)` naming the rule when `target` is outside what `owner_namespace` may use.
    pub fn check(&self, owner_namespace: &str, target: &str) -> Result<(), String> {
        if self.allows(owner_namespace, target) {
            return Ok(());
        }
        let allowed: Vec<&str> = std::iter::once(owner_namespace)
            .chain(
                self.allowed_namespaces
                    .get(owner_namespace)
                    .into_iter()
                    .flatten()
                    .map(String::as_str),
            )
            .collect();
        Err(format!(
            "namespace {target:?} is refused: {RULE}; this MultiCasskop may use {}; remove metadata.namespace, or ask the administrator to add {target:?} to tenancy.allowedNamespaces.{owner_namespace}",
            allowed.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenancy_table() {
        let policy = TenancyPolicy {
            allowed_namespaces: [
                ("team-a".to_string(), vec!["cassandra-a".to_string()]),
                ("admin".to_string(), vec!["*".to_string()]),
            ]
            .into(),
        };
        let cases = [
            (
                "own namespace, no policy",
                TenancyPolicy::default(),
                "team-a",
                "team-a",
                true,
            ),
            (
                "other namespace, no policy",
                TenancyPolicy::default(),
                "team-a",
                "team-b",
                false,
            ),
            (
                "kube-system, no policy",
                TenancyPolicy::default(),
                "team-a",
                "kube-system",
                false,
            ),
            (
                "listed namespace",
                policy.clone(),
                "team-a",
                "cassandra-a",
                true,
            ),
            (
                "unlisted namespace",
                policy.clone(),
                "team-a",
                "team-b",
                false,
            ),
            (
                "another tenant's allowance is not ours",
                policy.clone(),
                "team-b",
                "cassandra-a",
                false,
            ),
            (
                "wildcard for the admin namespace",
                policy.clone(),
                "admin",
                "anything",
                true,
            ),
            (
                "empty target is not the own namespace",
                TenancyPolicy::default(),
                "team-a",
                "",
                false,
            ),
        ];
        for (name, policy, owner, target, want) in cases {
            assert_eq!(policy.allows(owner, target), want, "{name}");
            assert_eq!(policy.check(owner, target).is_ok(), want, "{name}");
        }
        let message = TenancyPolicy::default()
            .check("team-a", "team-b")
            .expect_err("refused");
        assert!(message.contains(RULE), "{message}");
        assert!(
            message.contains("tenancy.allowedNamespaces.team-a"),
            "{message}"
        );
    }
}
