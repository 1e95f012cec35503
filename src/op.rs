//! `multi-casskop op`: creates a MultiCasskopTask for a ring and returns its name.

use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};

use crate::api::{MultiCasskopTask, MultiCasskopTaskSpec, TaskOperation};

/// What `op` was asked for.
#[derive(Clone, Debug, Default)]
pub struct OpRequest {
    /// `cleanup`, `upgradesstables` or `rebuild`.
    pub operation: String,
    /// The MultiCasskop.
    pub ring: String,
    /// Its namespace (`None`: the client's default namespace).
    pub namespace: Option<String>,
    /// Only these sites.
    pub sites: Vec<String>,
    /// `rebuild`: the DC to stream from.
    pub source_dc: Option<String>,
    /// Pods per site at the same time.
    pub concurrency: Option<u32>,
    /// Retries per pod.
    pub retries: Option<u32>,
    /// Seconds to keep the task after it finished.
    pub ttl: Option<u32>,
}

/// What went wrong creating the task.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// An operation this version does not know.
    #[error("unknown operation {0:?}: use cleanup, upgradesstables or rebuild")]
    UnknownOperation(String),
    /// The API server refused the task.
    #[error(
        "cannot create a MultiCasskopTask for {namespace}/{ring}: {source} (is the MultiCasskopTask CRD installed? `multi-casskop crd | kubectl apply --server-side -f -`)"
    )]
    Create {
        /// Namespace.
        namespace: String,
        /// The MultiCasskop.
        ring: String,
        /// The API server's answer.
        source: kube::Error,
    },
}

/// The task `request` describes (named `<ring>-<operation>-<random>` by the API server).
pub fn task(request: &OpRequest) -> Result<MultiCasskopTask, OpError> {
    let operation: TaskOperation =
        serde_json::from_value(serde_json::Value::String(request.operation.clone()))
            .map_err(|_| OpError::UnknownOperation(request.operation.clone()))?;
    Ok(MultiCasskopTask {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-{}-", request.ring, request.operation)),
            ..Default::default()
        },
        spec: MultiCasskopTaskSpec {
            multi_casskop: request.ring.clone(),
            operation,
            source_dc: request.source_dc.clone(),
            sites: request.sites.clone(),
            concurrency: request.concurrency,
            retries: request.retries,
            ttl_seconds_after_finished: request.ttl,
        },
        status: None,
    })
}

/// Creates the task and returns its name.
pub async fn create(client: &Client, request: &OpRequest) -> Result<String, OpError> {
    let task = task(request)?;
    let namespace = request
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let api: Api<MultiCasskopTask> = Api::namespaced(client.clone(), &namespace);
    let created = api
        .create(&PostParams::default(), &task)
        .await
        .map_err(|source| OpError::Create {
            namespace: namespace.clone(),
            ring: request.ring.clone(),
            source,
        })?;
    Ok(created.metadata.name.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_to_task() {
        let request = OpRequest {
            operation: "rebuild".into(),
            ring: "orders".into(),
            sites: vec!["b".into()],
            source_dc: Some("dc1".into()),
            concurrency: Some(2),
            ..Default::default()
        };
        let t = task(&request).expect("task");
        assert_eq!(t.metadata.generate_name.as_deref(), Some("orders-rebuild-"));
        assert_eq!(t.spec.operation, TaskOperation::Rebuild);
        assert_eq!(t.spec.source_dc.as_deref(), Some("dc1"));
        assert_eq!(t.spec.sites, vec!["b".to_string()]);
        assert_eq!(t.spec.concurrency, Some(2));
        assert!(matches!(
            task(&OpRequest {
                operation: "compact".into(),
                ..request
            }),
            Err(OpError::UnknownOperation(_))
        ));
    }
}
