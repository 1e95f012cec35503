//! The simulator's controller: watches `CassandraCluster`s, reads each one fresh, asks
//! [`plan::decide`] what CassKop's reconcile writes and writes it with optimistic concurrency
//! (replace with the resourceVersion read, field manager `casskop`): the main resource first
//! (spec and last-applied annotation, the status as read), then `/status` when the CRD has a
//! status subresource; one replace otherwise. It keeps each object's simulated StatefulSets,
//! when each rack's action went `Ongoing` (action duration) and when a StatefulSet update was
//! first wanted (reaction delay) in memory. With real workloads it reads the CassandraCluster's
//! StatefulSets and pods first (they decide which racks are due and what the StatefulSets are),
//! and writes StatefulSets, Service and pod labels before the CassandraCluster, as CassKop does.

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

use k8s_openapi::api::apps::v1::StatefulSet as KubeStatefulSet;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::ResourceExt;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;

use super::model::{ClusterStatus, LAST_APPLIED_ANNOTATION, action_status, now_rfc3339, phase};
use super::plan::{self, Knobs, Observed, Plan, StatefulSets};
use super::topology::Topology;
use super::workloads::{self, Owner, label};
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
/// Pause before looking again at an object whose real StatefulSets or pod operations are still
/// moving (their watches usually bring it back sooner).
const WORKLOAD_REQUEUE: Duration = Duration::from_millis(500);

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
    /// Real StatefulSets and pods instead of memory.
    real: bool,
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
    /// The headless Service was created (real workloads).
    service: bool,
}

/// A CassandraCluster's real StatefulSets (per `dc-rack` label) and pods.
struct Real {
    statefulsets: BTreeMap<String, KubeStatefulSet>,
    pods: Vec<Pod>,
}

impl Real {
    /// What the StatefulSets were built from, as they are.
    fn built(&self) -> StatefulSets {
        self.statefulsets
            .iter()
            .filter_map(|(k, s)| Some((k.clone(), workloads::built_of(s)?)))
            .collect()
    }

    /// Whether the rack's StatefulSet has settled at the replicas it was built for.
    fn settled(&self, key: &str) -> bool {
        self.statefulsets.get(key).is_some_and(|s| {
            workloads::built_of(s).is_some_and(|b| {
                workloads::settled(s, i32::try_from(b.replicas).unwrap_or(i32::MAX))
            })
        })
    }

    fn pods_of(&self, key: &str) -> Vec<&Pod> {
        self.pods
            .iter()
            .filter(|p| p.labels().get(label::DC_RACK).map(String::as_str) == Some(key))
            .collect()
    }
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
        client: client.clone(),
        resource: resource.clone(),
        behaviour,
        field_manager: config.field_manager.clone(),
        real: config.real_workloads,
        subresource: tokio::sync::Mutex::new(None),
        objects: std::sync::Mutex::new(HashMap::new()),
        stats,
    });
    // Sites go down and come back in tests: retry watches quickly rather than after 30 s.
    let backoff = QuickBackoff::default();
    tracing::info!(namespace = ?config.namespace, real_workloads = config.real_workloads, "CassKop simulator watching CassandraClusters");
    let mut controller = Controller::new_with(api, watcher::Config::default(), resource.clone());
    if config.real_workloads {
        let ours = watcher::Config::default().labels(&format!("{}={}", label::APP, workloads::APP));
        let (statefulsets, pods): (Api<KubeStatefulSet>, Api<Pod>) = match &config.namespace {
            Some(ns) => (
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client, ns),
            ),
            None => (Api::all(client.clone()), Api::all(client)),
        };
        controller = controller
            .owns_with(statefulsets, (), ours.clone())
            .watches_with(pods, (), ours, move |pod: Pod| {
                let cluster = pod.labels().get(label::CLUSTER)?.clone();
                let namespace = pod.namespace()?;
                Some(ObjectRef::new_with(&cluster, resource.clone()).within(&namespace))
            });
    }
    controller
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
    let real = if ctx.real {
        Some(
            observe(&ctx.client, namespace, name)
                .await
                .map_err(|e| kube_error("read the StatefulSets and pods of", e))?,
        )
    } else {
        None
    };

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
                    && real.as_ref().is_none_or(|r| r.settled(rack))
            })
            .cloned()
            .collect();
        let statefulsets = match &real {
            Some(real) => Some(real.built()),
            None => memory.statefulsets.clone(),
        };
        (statefulsets, due)
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
    let mut plan = match plan::decide(&observed, statefulsets.as_ref(), &knobs) {
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
    let mut moving = false;
    if let Some(real) = &real {
        moving = ctx
            .apply_workloads(&current, spec, &old_status, &mut plan, real, &behaviour)
            .await
            .map_err(|e| kube_error("write the StatefulSets, Service or pods of", e))?;
    }
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
        let next = next_due(memory, &behaviour);
        if moving {
            Some(next.map_or(WORKLOAD_REQUEUE, |n| n.min(WORKLOAD_REQUEUE)))
        } else {
            next
        }
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

/// Reads the CassandraCluster's StatefulSets and pods (CassKop's labels).
async fn observe(client: &Client, namespace: &str, name: &str) -> Result<Real, kube::Error> {
    let selector = format!(
        "{}={},{}={name}",
        label::APP,
        workloads::APP,
        label::CLUSTER
    );
    let params = ListParams::default().labels(&selector);
    let statefulsets: Api<KubeStatefulSet> = Api::namespaced(client.clone(), namespace);
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let statefulsets = statefulsets
        .list(&params)
        .await?
        .items
        .into_iter()
        .filter_map(|s| Some((s.labels().get(label::DC_RACK)?.clone(), s)))
        .collect();
    let mut pods = pods.list(&params).await?.items;
    pods.sort_by_key(ResourceExt::name_any);
    Ok(Real { statefulsets, pods })
}

impl Context {
    /// The real backend's writes, before the CassandraCluster's: the headless Service, each
    /// rack's StatefulSet as the plan wants it (replicas one step at a time), StatefulSets of
    /// racks that left, pod operation labels; then the status the plan writes gets the real
    /// pods' `cassandraNodeStatus` and each rack's `podLastOperation`. Returns whether anything
    /// still moves (StatefulSets not settled, operations running).
    async fn apply_workloads(
        &self,
        current: &DynamicObject,
        spec: &serde_json::Value,
        old: &ClusterStatus,
        plan: &mut Plan,
        real: &Real,
        behaviour: &Behaviour,
    ) -> Result<bool, kube::Error> {
        let owner = Owner {
            name: current.name_any(),
            namespace: current.namespace().unwrap_or_default(),
            uid: current.uid().unwrap_or_default(),
            labels: current.labels().clone(),
        };
        let key = (owner.namespace.clone(), owner.name.clone());
        let apply = PatchParams::apply(&self.field_manager).force();
        let mut moving = false;

        if !self.lock_objects().get(&key).is_some_and(|m| m.service) {
            let services: Api<Service> = Api::namespaced(self.client.clone(), &owner.namespace);
            match services
                .create(&PostParams::default(), &workloads::service(&owner))
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.is_already_exists() => {}
                Err(e) => return Err(e),
            }
            if let Some(m) = self.lock_objects().get_mut(&key) {
                m.service = true;
            }
        }

        let statefulsets: Api<KubeStatefulSet> =
            Api::namespaced(self.client.clone(), &owner.namespace);
        if let Ok(topology) = Topology::from_spec(plan.spec.as_ref().unwrap_or(spec)) {
            for (rack_key, built) in &plan.statefulsets {
                let Some(rack) = topology.rack(rack_key) else {
                    continue;
                };
                let existing = real.statefulsets.get(rack_key);
                let target = i32::try_from(built.replicas).unwrap_or(i32::MAX);
                let replicas = workloads::next_replicas(existing, target);
                let same = existing.is_some_and(|s| {
                    workloads::built_of(s).as_ref() == Some(built)
                        && s.spec.as_ref().and_then(|x| x.replicas) == Some(replicas)
                });
                if !same {
                    let sts = workloads::render(&owner, rack, built, replicas);
                    tracing::info!(statefulset = %sts.name_any(), replicas, target, "simulating CassKop: StatefulSet");
                    statefulsets
                        .patch(&sts.name_any(), &apply, &Patch::Apply(&sts))
                        .await?;
                    moving = true;
                } else if !existing.is_some_and(|s| workloads::settled(s, target)) {
                    moving = true;
                }
            }
        }
        if !plan.statefulsets.is_empty() {
            for (rack_key, sts) in &real.statefulsets {
                if !plan.statefulsets.contains_key(rack_key) {
                    tracing::info!(statefulset = %sts.name_any(), "simulating CassKop: StatefulSet of a removed rack deleted");
                    match statefulsets
                        .delete(&sts.name_any(), &DeleteParams::background())
                        .await
                    {
                        Ok(_) => {}
                        Err(kube::Error::Api(s)) if s.is_not_found() => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }

        let mut status = plan.status.clone().unwrap_or_else(|| old.clone());
        if !behaviour.jolokia_down {
            if status.last_cluster_action_status == action_status::DONE {
                let pods: Api<Pod> = Api::namespaced(self.client.clone(), &owner.namespace);
                let params = PatchParams {
                    field_manager: Some(self.field_manager.clone()),
                    ..PatchParams::default()
                };
                let now = jiff::Timestamp::now();
                for (rack_key, rs) in &mut status.cassandra_rack_status {
                    let ops = workloads::pod_operations(
                        &real.pods_of(rack_key),
                        rs,
                        now,
                        behaviour.delay,
                        behaviour.pod_operations_fail,
                    );
                    for (pod, labels) in ops.labels {
                        tracing::info!(%pod, ?labels, "simulating CassKop: pod operation");
                        let patch = serde_json::json!({"metadata": {"labels": labels}});
                        pods.patch(&pod, &params, &Patch::Merge(&patch)).await?;
                    }
                    moving |= ops.busy;
                }
            }
            if behaviour.host_ids {
                let mut nodes = BTreeMap::new();
                for (rack_key, rs) in &status.cassandra_rack_status {
                    if rs.phase == phase::INITIALIZING {
                        continue;
                    }
                    nodes.extend(workloads::node_statuses(
                        &owner.uid,
                        real.pods_of(rack_key),
                        &status.cassandra_node_status,
                    ));
                }
                status.cassandra_node_status = nodes;
            }
        }
        plan.status = (status != *old).then_some(status);
        Ok(moving)
    }

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
