//! Test helpers for `CassandraCluster` objects: API handles, a sample the CassKop schemas
//! accept, spec and seed-list edits that retry on conflicts, waits on status, and a watch
//! history that records every status an object went through.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use kube::Client;
use kube::api::{Api, DynamicObject, PostParams};
use kube::runtime::watcher;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::simulator::api_resource;
use crate::simulator::model::ClusterStatus;
use crate::wait::{self, WaitError};

/// How long the helpers wait for a status by default (generous: the machine may be busy).
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(90);

/// `(phase, lastClusterAction, lastClusterActionStatus)`.
pub type State = (String, String, String);

/// Builds a [`State`] from string slices.
pub fn state(phase: &str, action: &str, status: &str) -> State {
    (phase.into(), action.into(), status.into())
}

/// `CassandraCluster` (v2) API in `namespace`.
pub fn api(client: &Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &api_resource())
}

/// A CassandraCluster both CassKop schemas accept: one DC `dc1`, racks `rack1`, `rack2`,
/// two nodes per rack.
pub fn sample(name: &str, namespace: &str) -> DynamicObject {
    from_json(json!({
        "apiVersion": "db.orange.com/v2",
        "kind": "CassandraCluster",
        "metadata": {"name": name, "namespace": namespace, "labels": {"cluster": "casskop"}},
        "spec": {
            "nodesPerRacks": 2,
            "cassandraImage": "cassandra:3.11.10",
            "bootstrapImage": "orangeopensource/cassandra-bootstrap:0.1.9",
            "imagepullpolicy": "IfNotPresent",
            "dataCapacity": "1Gi",
            "maxPodUnavailable": 1,
            "autoPilot": true,
            "resources": {
                "requests": {"cpu": "1", "memory": "2Gi"},
                "limits": {"cpu": "1", "memory": "2Gi"}
            },
            "topology": {"dc": [{"name": "dc1", "rack": [{"name": "rack1"}, {"name": "rack2"}]}]}
        }
    }))
}

/// Turns JSON into a `DynamicObject` (a JSON object always converts).
pub fn from_json(value: Value) -> DynamicObject {
    serde_json::from_value(value).unwrap_or_else(|_| DynamicObject::new("invalid", &api_resource()))
}

/// The status of an object (empty if unreadable).
pub fn status_of(object: &DynamicObject) -> ClusterStatus {
    ClusterStatus::from_value(object.data.get("status")).unwrap_or_default()
}

/// The [`State`] of an object.
pub fn state_of(object: &DynamicObject) -> State {
    let status = status_of(object);
    (
        status.phase,
        status.last_cluster_action,
        status.last_cluster_action_status,
    )
}

/// The `spec` of an object (`null` if missing).
pub fn spec_of(object: &DynamicObject) -> Value {
    object.data.get("spec").cloned().unwrap_or(Value::Null)
}

/// An annotation of an object.
pub fn annotation<'a>(object: &'a DynamicObject, key: &str) -> Option<&'a str> {
    object
        .metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

/// Waits until `name` satisfies `condition`; returns the object.
pub async fn wait_for(
    api: &Api<DynamicObject>,
    name: &str,
    what: &str,
    condition: impl Fn(&DynamicObject) -> bool,
) -> Result<DynamicObject, WaitError> {
    wait::until(
        format!("CassandraCluster {name}: {what}"),
        STATUS_TIMEOUT,
        || async {
            match api.get_opt(name).await {
                Ok(Some(object)) if condition(&object) => Ok(object),
                Ok(Some(object)) => Err(format!(
                    "state {:?}, annotations {:?}, status {}",
                    state_of(&object),
                    object.metadata.annotations,
                    object.data.get("status").unwrap_or(&Value::Null)
                )),
                Ok(None) => Err("not found".into()),
                Err(err) => Err(err.to_string()),
            }
        },
    )
    .await
}

/// Waits until `name` is in `expected` state.
pub async fn wait_state(
    api: &Api<DynamicObject>,
    name: &str,
    expected: &State,
) -> Result<DynamicObject, WaitError> {
    wait_for(api, name, &format!("state {expected:?}"), |o| {
        state_of(o) == *expected
    })
    .await
}

/// Reads `name`, applies `edit` to it and replaces it; retries on conflicts (the simulator
/// writes concurrently). Returns the written object.
pub async fn edit(
    api: &Api<DynamicObject>,
    name: &str,
    mut edit: impl FnMut(&mut DynamicObject),
) -> Result<DynamicObject, kube::Error> {
    let mut attempts = 0;
    loop {
        let mut object = api.get(name).await?;
        object.metadata.managed_fields = None;
        edit(&mut object);
        match api.replace(name, &PostParams::default(), &object).await {
            Err(kube::Error::Api(s)) if s.is_conflict() && attempts < 50 => attempts += 1,
            other => return other,
        }
    }
}

/// Like [`edit`], but through `/status`.
pub async fn edit_status(
    api: &Api<DynamicObject>,
    name: &str,
    mut edit: impl FnMut(&mut DynamicObject),
) -> Result<DynamicObject, kube::Error> {
    let mut attempts = 0;
    loop {
        let mut object = api.get(name).await?;
        object.metadata.managed_fields = None;
        edit(&mut object);
        match api
            .replace_status(name, &PostParams::default(), &object)
            .await
        {
            Err(kube::Error::Api(s)) if s.is_conflict() && attempts < 50 => attempts += 1,
            other => return other,
        }
    }
}

/// Edits the spec (see [`edit`]).
pub async fn edit_spec(
    api: &Api<DynamicObject>,
    name: &str,
    mut change: impl FnMut(&mut Value),
) -> Result<DynamicObject, kube::Error> {
    edit(api, name, |object| {
        if let Some(spec) = object.data.get_mut("spec") {
            change(spec);
        }
    })
    .await
}

/// Sets `status.seedlist`, through `/status` when the CRD has a status subresource and through
/// the main resource otherwise (as Multi-CassKop does on CRDs without one).
pub async fn set_seedlist(
    api: &Api<DynamicObject>,
    name: &str,
    seeds: &[&str],
    status_subresource: bool,
) -> Result<DynamicObject, kube::Error> {
    let set = |object: &mut DynamicObject| {
        if let Some(data) = object.data.as_object_mut() {
            let status = data.entry("status").or_insert_with(|| json!({}));
            if let Some(status) = status.as_object_mut() {
                status.insert("seedlist".into(), json!(seeds));
            }
        }
    };
    if status_subresource {
        edit_status(api, name, set).await
    } else {
        edit(api, name, set).await
    }
}

/// Every distinct state each object of a namespace went through, as seen by a watch.
#[derive(Debug)]
pub struct History {
    seen: Arc<Mutex<Vec<(String, State)>>>,
    task: JoinHandle<()>,
}

impl History {
    /// Starts recording `api`'s objects; start it before the changes to observe.
    pub fn record(api: Api<DynamicObject>) -> Self {
        let seen: Arc<Mutex<Vec<(String, State)>>> = Arc::default();
        let sink = seen.clone();
        let task = tokio::spawn(async move {
            let mut events = watcher(api, watcher::Config::default()).boxed();
            while let Some(event) = events.next().await {
                let object = match event {
                    Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => o,
                    Ok(_) => continue,
                    Err(err) => {
                        tracing::debug!(%err, "history watch error; the watcher retries");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                };
                let name = object.metadata.name.clone().unwrap_or_default();
                let state = state_of(&object);
                let mut seen = sink
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if seen.iter().rev().find(|(n, _)| *n == name).map(|(_, s)| s) != Some(&state) {
                    seen.push((name, state));
                }
            }
        });
        Self { seen, task }
    }

    /// The distinct consecutive states `name` went through.
    pub fn states(&self, name: &str) -> Vec<State> {
        let seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        seen.iter()
            .filter(|(n, _)| n == name)
            .map(|(_, s)| s.clone())
            .collect()
    }

    /// Whether `name` went through `expected` in this order (other states may come between).
    pub fn went_through(&self, name: &str, expected: &[State]) -> bool {
        let states = self.states(name);
        let mut rest = states.iter();
        expected.iter().all(|want| rest.any(|s| s == want))
    }

    /// Waits until `name` went through `expected` in order; fails with the states seen.
    pub async fn wait_went_through(&self, name: &str, expected: &[State]) -> Result<(), WaitError> {
        wait::until(
            format!("{name} to go through {expected:?}"),
            STATUS_TIMEOUT,
            || async {
                if self.went_through(name, expected) {
                    Ok(())
                } else {
                    Err(format!("{:?}", self.states(name)))
                }
            },
        )
        .await
    }
}

impl Drop for History {
    fn drop(&mut self) {
        self.task.abort();
    }
}
