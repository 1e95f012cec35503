//! The simulator's controller: watches `CassandraCluster`s, reads each one fresh, asks
//! [`plan::decide`] what CassKop's reconcile writes and writes it with optimistic concurrency
//! (replace with the resourceVersion read, field manager `casskop`): the main resource first
//! (spec and last-applied annotation, the status as read), then `/status` when the CRD has a
//! status subresource; one replace otherwise. It keeps each object's simulated StatefulSets,
//! when each rack's action went `Ongoing` (action duration) and when a StatefulSet update was
//! first wanted (reaction delay) in memory.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::utils::Backoff;
use kube::runtime::watcher;
use tokio::sync::watch;

use super::model::{ClusterStatus, LAST_APPLIED_ANNOTATION, action_status, now_rfc3339};
use super::plan::{self, Knobs, Observed, Plan, StatefulSets};
use super::{Behaviour, Mode, SimConfig, Stats};

/// API group of `CassandraCluster`.
pub const GROUP: &str = "db.orange.com";
/// Version the simulator reads and writes.
pub const VERSION: &str = "v2";
/// Kind.
pub const KIND: &str = "CassandraCluster";
/// Plural resource name.
pub const PLURAL: &str = "cassandraclusters";

/// Shortest pause before looking at an object with a pending action again.
const MIN_REQUEUE: Duration = Duration::from_millis(20);

/// The `ApiResource` of `db.orange.com/v2` `CassandraCluster`.
pub fn api_resource() -> ApiResource {
    ApiResource {
        group: GROUP.into(),
        version: VERSION.into(),
        api_version: format!("{GROUP}/{VERSION}"),
        kind: KIND.into(),
        plural: PLURAL.into(),
    }
}

/// A reconcile failed; the object is retried.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A read or write of the object failed (a conflict means someone else wrote first).
    #[error("could not {action} CassandraCluster {namespace}/{name}")]
    Kube {
        /// What we tried.
        action: &'static str,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// What went wrong.
        #[source]
        source: kube::Error,
    },
    /// API discovery failed.
    #[error(
        "could not read API discovery of {GROUP}/{VERSION} to find out whether CassandraCluster has a status subresource (is the CassKop CRD installed?)"
    )]
    Discovery(#[source] kube::Error),
    /// The status could not be encoded.
    #[error("could not encode the status of CassandraCluster {namespace}/{name}")]
    Encode {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// What went wrong.
        #[source]
        source: serde_json::Error,
    },
}

impl SimError {
    fn is_conflict(&self) -> bool {
        matches!(self, SimError::Kube { source: kube::Error::Api(s), .. } if s.is_conflict())
    }
}

/// Shared state of one simulator's reconciles.
pub(crate) struct Context {
    client: Client,
    resource: ApiResource,
    behaviour: watch::Receiver<Behaviour>,
    field_manager: String,
    /// Whether the CRD has a status subresource, once discovered.
    subresource: tokio::sync::Mutex<Option<bool>>,
    /// What the simulator remembers of each object.
    objects: std::sync::Mutex<HashMap<(String, String), Memory>>,
    stats: Arc<Stats>,
}

/// The simulator's memory of one object (reset when its uid changes).
#[derive(Debug, Default)]
struct Memory {
    uid: String,
    /// Its simulated StatefulSets (`None` until the first reconcile).
    statefulsets: Option<StatefulSets>,
    /// When each rack's current action (or initialisation) went `Ongoing`.
    since: BTreeMap<String, Instant>,
    /// When a StatefulSet update was first wanted and not yet written.
    reaction_since: Option<Instant>,
}

/// Runs the controller until the task is aborted.
pub(crate) async fn run(
    client: Client,
    config: SimConfig,
    behaviour: watch::Receiver<Behaviour>,
    stats: Arc<Stats>,
) {
    let resource = api_resource();
    let api: Api<DynamicObject> = match &config.namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    let mode_changes = futures::stream::unfold(behaviour.clone(), |mut rx| async move {
        rx.changed().await.ok()?;
        Some(((), rx))
    });
    let context = Arc::new(Context {
        client,
        resource: resource.clone(),
        behaviour,
        field_manager: config.field_manager.clone(),
        subresource: tokio::sync::Mutex::new(None),
        objects: std::sync::Mutex::new(HashMap::new()),
        stats,
    });
    // Sites go down and come back in tests: retry watches quickly rather than after 30 s.
    let backoff = QuickBackoff::default();
    tracing::info!(namespace = ?config.namespace, "CassKop simulator watching CassandraClusters");
    Controller::new_with(api, watcher::Config::default(), resource)
        .reconcile_all_on(mode_changes)
        .trigger_backoff(backoff)
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            match result {
                Ok(_) => {}
                Err(kube::runtime::controller::Error::ReconcilerFailed(err, obj))
                    if err.is_conflict() =>
                {
                    tracing::debug!(object = %obj, "write conflict; retrying with a fresh read");
                }
                Err(err) => tracing::warn!(error = %crate::shared::error_chain(&err), "simulator"),
            }
        })
        .await;
}

async fn reconcile(object: Arc<DynamicObject>, ctx: Arc<Context>) -> Result<Action, SimError> {
    let (Some(name), Some(namespace)) = (
        object.metadata.name.clone(),
        object.metadata.namespace.clone(),
    ) else {
        tracing::warn!("skipping a CassandraCluster without name or namespace");
        return Ok(Action::await_change());
    };
    let result = reconcile_one(&ctx, &namespace, &name).await;
    ctx.stats.count_reconcile(&namespace, &name);
    result
}

async fn reconcile_one(ctx: &Context, namespace: &str, name: &str) -> Result<Action, SimError> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), namespace, &ctx.resource);
    let kube_error = |action, source| SimError::Kube {
        action,
        namespace: namespace.to_string(),
        name: name.to_string(),
        source,
    };
    // Read fresh rather than trusting the watch cache, so writes carry the latest resourceVersion.
    let Some(current) = api.get_opt(name).await.map_err(|e| kube_error("read", e))? else {
        return Ok(Action::await_change());
    };
    if current.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let behaviour = ctx.behaviour.borrow().clone();
    let key = (namespace.to_string(), name.to_string());
    let uid = current.metadata.uid.clone().unwrap_or_default();

    let null = serde_json::Value::Null;
    let spec = current.data.get("spec").unwrap_or(&null);
    let status = match ClusterStatus::from_value(current.data.get("status")) {
        Ok(status) => status,
        Err(err) => {
            tracing::warn!(%namespace, %name, %err, "skipping CassandraCluster with a status CassKop would not write");
            return Ok(Action::await_change());
        }
    };
    let (statefulsets, due) = {
        let mut objects = ctx.lock_objects();
        let memory = objects.entry(key.clone()).or_default();
        if memory.uid != uid {
            *memory = Memory {
                uid: uid.clone(),
                ..Memory::default()
            };
        }
        let due: BTreeSet<String> = status
            .cassandra_rack_status
            .keys()
            .filter(|rack| {
                memory
                    .since
                    .get(*rack)
                    .is_none_or(|t| t.elapsed() >= behaviour.delay)
            })
            .cloned()
            .collect();
        (memory.statefulsets.clone(), due)
    };
    let observed = Observed {
        meta: &current.metadata,
        spec,
        status,
    };
    let knobs = Knobs {
        mode: behaviour.mode,
        jolokia_down: behaviour.jolokia_down,
        keyspaces: &behaviour.keyspaces,
        host_ids: behaviour.host_ids,
        due: &due,
        now: now_rfc3339(),
    };
    let plan = match plan::decide(&observed, statefulsets.as_ref(), &knobs) {
        Ok(plan) => plan,
        Err(err) => {
            tracing::warn!(%namespace, %name, %err, "skipping CassandraCluster with a spec CassKop could not use");
            return Ok(Action::await_change());
        }
    };
    let version = current
        .metadata
        .resource_version
        .clone()
        .unwrap_or_default();

    // CassKop updates the StatefulSet before its writes; the traces show ~1.1 s.
    if plan.statefulset_updated && !behaviour.reaction.is_zero() {
        let waited = {
            let mut objects = ctx.lock_objects();
            let memory = objects.entry(key.clone()).or_default();
            *memory.reaction_since.get_or_insert_with(Instant::now)
        }
        .elapsed();
        if waited < behaviour.reaction {
            return Ok(Action::requeue(behaviour.reaction - waited));
        }
    }

    let old_status = observed.status.clone();
    if plan.writes() {
        if plan.what.is_empty() {
            tracing::debug!(%namespace, %name, "simulating CassKop: last-applied annotation rewrite");
        } else {
            tracing::info!(%namespace, %name, what = ?plan.what, "simulating CassKop");
        }
        ctx.write(&api, current.clone(), &plan).await?;
    }
    let next = {
        let mut objects = ctx.lock_objects();
        let memory = objects.entry(key).or_default();
        memory.reaction_since = None;
        memory.statefulsets = Some(plan.statefulsets.clone());
        let now = Instant::now();
        for rack in &plan.started {
            memory.since.insert(rack.clone(), now);
        }
        let status = plan.status.as_ref().unwrap_or(&old_status);
        memory.since.retain(|rack, _| {
            status
                .cassandra_rack_status
                .get(rack)
                .is_some_and(|r| r.cassandra_last_action.status == action_status::ONGOING)
        });
        next_due(memory, &behaviour)
    };
    ctx.stats.record_handled(namespace, name, version);
    Ok(match next {
        Some(wait) => Action::requeue(wait.max(MIN_REQUEUE)),
        None => Action::await_change(),
    })
}

/// When the next `Ongoing` action is due, if one is and it can end.
fn next_due(memory: &Memory, behaviour: &Behaviour) -> Option<Duration> {
    if behaviour.mode == Mode::Stuck {
        return None;
    }
    memory
        .since
        .values()
        .map(|t| behaviour.delay.saturating_sub(t.elapsed()))
        .min()
}

fn error_policy(_object: Arc<DynamicObject>, err: &SimError, _ctx: Arc<Context>) -> Action {
    if err.is_conflict() {
        Action::requeue(Duration::from_millis(50))
    } else {
        tracing::warn!(error = %crate::shared::error_chain(err), "simulator reconcile failed; retrying in 1 s");
        Action::requeue(Duration::from_secs(1))
    }
}

impl Context {
    fn lock_objects(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Memory>> {
        self.objects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `cassandraclusters/status` is served (cached after the first answer).
    async fn has_status_subresource(&self) -> Result<bool, SimError> {
        let mut cached = self.subresource.lock().await;
        if let Some(known) = *cached {
            return Ok(known);
        }
        let resources = self
            .client
            .list_api_group_resources(&format!("{GROUP}/{VERSION}"))
            .await
            .map_err(SimError::Discovery)?;
        let status = format!("{PLURAL}/status");
        let known = resources.resources.iter().any(|r| r.name == status);
        tracing::info!(
            status_subresource = known,
            "discovered CassandraCluster CRD variant"
        );
        *cached = Some(known);
        Ok(known)
    }

    /// `updateCassandraStatus`: the main resource (spec, annotation, the status as read), then
    /// `/status`; or everything in one replace without a status subresource.
    async fn write(
        &self,
        api: &Api<DynamicObject>,
        current: DynamicObject,
        plan: &Plan,
    ) -> Result<(), SimError> {
        let namespace = current.metadata.namespace.clone().unwrap_or_default();
        let name = current.metadata.name.clone().unwrap_or_default();
        let kube_error = |action, source| SimError::Kube {
            action,
            namespace: namespace.clone(),
            name: name.clone(),
            source,
        };
        let params = PostParams {
            dry_run: false,
            field_manager: Some(self.field_manager.clone()),
        };
        let status = plan
            .status
            .as_ref()
            .map(serde_json::to_value)
            .transpose()
            .map_err(|source| SimError::Encode {
                namespace: namespace.clone(),
                name: name.clone(),
                source,
            })?;
        let mut object = current;
        // Unset managedFields keep the server's bookkeeping as it is.
        object.metadata.managed_fields = None;
        if let Some(spec) = &plan.spec {
            set_data(&mut object, "spec", spec.clone());
        }
        if let Some(annotation) = &plan.last_applied {
            object
                .metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(LAST_APPLIED_ANNOTATION.to_string(), annotation.clone());
        }
        let main = plan.spec.is_some() || plan.last_applied.is_some();
        if self.has_status_subresource().await? {
            if main {
                object = api
                    .replace(&name, &params, &object)
                    .await
                    .map_err(|e| kube_error("write", e))?;
                self.stats.count_write(&namespace, &name);
                object.metadata.managed_fields = None;
            }
            if let Some(status) = status {
                set_data(&mut object, "status", status);
                if let Err(err) = api.replace_status(&name, &params, &object).await {
                    if matches!(&err, kube::Error::Api(s) if s.is_not_found()) {
                        // The CRD may have been swapped for the other variant: rediscover.
                        *self.subresource.lock().await = None;
                    }
                    return Err(kube_error("write /status of", err));
                }
                self.stats.count_write(&namespace, &name);
            }
        } else {
            if let Some(status) = status {
                set_data(&mut object, "status", status);
            }
            api.replace(&name, &params, &object)
                .await
                .map_err(|e| kube_error("write", e))?;
            self.stats.count_write(&namespace, &name);
        }
        Ok(())
    }
}

/// Watch retry delays: 200 ms doubling up to 3 s (kube's default goes up to 30 s).
#[derive(Debug, Clone, Copy)]
struct QuickBackoff {
    next: Duration,
}

impl QuickBackoff {
    const MIN: Duration = Duration::from_millis(200);
    const MAX: Duration = Duration::from_secs(3);
}

impl Default for QuickBackoff {
    fn default() -> Self {
        Self { next: Self::MIN }
    }
}

impl Iterator for QuickBackoff {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        let current = self.next;
        self.next = (current * 2).min(Self::MAX);
        Some(current)
    }
}

impl Backoff for QuickBackoff {
    fn reset(&mut self) {
        self.next = Self::MIN;
    }
}

fn set_data(object: &mut DynamicObject, key: &str, value: serde_json::Value) {
    match object.data.as_object_mut() {
        Some(data) => {
            data.insert(key.to_string(), value);
        }
        None => object.data = serde_json::json!({ key: value }),
    }
}
