//! Unique namespaces, so that tests sharing the same sites never see each other's objects.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};

/// A namespace could not be created.
#[derive(Debug, thiserror::Error)]
#[error("could not create namespace {name}")]
pub struct NamespaceError {
    /// The namespace.
    pub name: String,
    /// What went wrong.
    #[source]
    pub source: kube::Error,
}

/// A DNS-label name `<prefix>-<pid>-<counter>-<random>` that no other test (in this or another
/// process) uses. The prefix is cut so that the result stays within 63 characters.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let suffix = format!("{}-{n}-{:04x}", std::process::id(), nanos & 0xffff);
    let clean: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(62 - suffix.len())
        .collect();
    let clean = clean.trim_matches('-');
    if clean.is_empty() {
        format!("t-{suffix}")
    } else {
        format!("{clean}-{suffix}")
    }
}

/// Creates namespace `name` (an existing one is fine) and returns it.
pub async fn create_namespace(client: &Client, name: &str) -> Result<Namespace, NamespaceError> {
    let api: Api<Namespace> = Api::all(client.clone());
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    match api.create(&PostParams::default(), &namespace).await {
        Ok(created) => Ok(created),
        Err(kube::Error::Api(status)) if status.is_already_exists() => {
            api.get(name).await.map_err(|source| NamespaceError {
                name: name.to_string(),
                source,
            })
        }
        Err(source) => Err(NamespaceError {
            name: name.to_string(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_dns_labels() {
        let a = unique_name("Simulator_Lifecycle test");
        let b = unique_name("Simulator_Lifecycle test");
        assert_ne!(a, b);
        for name in [&a, &b, &unique_name(&"x".repeat(100)), &unique_name("--")] {
            assert!(name.len() <= 63, "{name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{name}"
            );
            assert!(!name.starts_with('-') && !name.ends_with('-'), "{name}");
        }
    }
}
