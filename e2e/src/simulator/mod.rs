//! A CassKop site simulator: a small controller per site that writes `CassandraCluster`s the
//! way the real CassKop (cscetbon/casskop) does, as recorded in the traces of
//! `shared/casskop-traces/` (see its README) and read from CassKop's source where the traces are
//! silent. By default it is that faithful CassKop:
//!
//! - **Writer.** Field manager `casskop`, `Update` (PUT) with the resourceVersion it read.
//! - **Annotation first, status second** (CRD with a status subresource): a reconcile ends with an
//!   `Update` of the object carrying `cassandraclusters.db.orange.com/last-applied-configuration`
//!   (the JSON of the whole object it acted on: kind, apiVersion, metadata without annotations
//!   and resourceVersion, i.e. with `generation` and `managedFields`, the spec, `status: {}`)
//!   and the *old* status, then `Status().Update` with the new status if it changed. Since the
//!   annotation embeds managedFields, it is rewritten after any write, CassKop's own status
//!   writes included, until a write lands in the same second (the `writer=?` lines of the
//!   summaries). Nothing is written when nothing would change. Without a status subresource
//!   (Orange CRD) one `Update` carries annotation and status.
//! - **Create.** A spec-defaults write alone (Go's encoding drops `autoUpdateSeedList: false`,
//!   adds `imagePullSecret: {}`, `maxPodUnavailable: 1`, DC `resources: {}`), then status
//!   `Initializing` with racks `Initializing`/`Ongoing` and no cluster action (the seed list
//!   filled with CassKop's own only if empty), then the annotation (with `CheckDefaults`:
//!   `bootstrapImage`, `serviceAccountName`, `imagepullpolicy: Always`, probes, ...), then
//!   `Initializing`/`Ongoing` at cluster level, after the action duration sub-phase
//!   `NextPodPerRack`, then `Running`, `Initializing`/`Done`.
//! - **Changes.** The phase stays `Running` (except scaling: `Pending`). Racks roll one at a
//!   time; each rack's action is `Ongoing` (with `startTime`) for the action duration, then
//!   `Done` (with `endTime`). An image change is `UpdateDockerImage`, `spec.config` and other
//!   template changes `UpdateStatefulSet`, `configMapName` `UpdateConfigMap`, a seed list that
//!   differs from the StatefulSets' goes straight to `UpdateSeedList`/`Ongoing`. When a
//!   StatefulSet must change, CassKop's first write comes after the reaction delay (~1.1 s in
//!   the traces).
//! - **Jolokia down** ([`Simulator::set_jolokia_down`]): StatefulSets are not updated; a change
//!   stays `<Action>`/`ToDo` with phase `Running` until Jolokia is back, then `Ongoing`, `Done`.
//! - **Refusals** (`CheckNonAllowedChanges`): `nodesPerRacks: 0`, `dataCapacity` or
//!   `dataStorageClass` changes, rack additions/removals/renames in a DC, removing more than one
//!   DC or a DC that still has nodes, and scaling a DC to 0 while keyspaces replicate to it
//!   ([`SimConfig::keyspaces_replicate_to`]) or Jolokia is down: the previous values are
//!   written back with `lastClusterAction: CorrectCRDConfig` (its status untouched).
//!
//! Besides: [`Mode::Stuck`] never ends an `Ongoing` action, [`Mode::Error`] ends post-create
//! actions with `Error`. Node identities (`cassandraNodeStatus`) are made up, as a Jolokia that
//! answers `HostIdMap` would give them.
//!
//! Two backends, one model: by default the StatefulSets live in the simulator's memory and an
//! action ends after the action duration; with [`SimConfig::real_workloads`] (sites with
//! workloads: StatefulSet controller, scheduler, kwok) the simulator writes CassKop's real
//! StatefulSets and headless Service, an action ends when the rack's pods are updated and Ready,
//! `cassandraNodeStatus` lists the real pods' IPs, and pod operations (`operation-name`,
//! `operation-status=ToDo` pod labels) run and show in `podLastOperation` (see [`workloads`]).
//! Everything above holds in both.
//!
//! It runs in-process ([`Simulator::spawn`], aborted on drop) or as the `casskop-sim` binary.
//! The decisions live in [`plan`] (pure), the I/O in [`reconcile`] and, for real objects,
//! [`workloads`] (rendering and reading back, pure).

pub mod diff;
pub mod lastapplied;
pub mod model;
pub mod plan;
pub mod reconcile;
pub mod topology;
pub mod workloads;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::Client;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use model::LAST_APPLIED_ANNOTATION;
pub use reconcile::{SimError, api_resource};

/// Field manager of the simulator's writes: CassKop's own (visible in `metadata.managedFields`).
pub const FIELD_MANAGER: &str = "casskop";

/// How actions end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// Actions finish with `Done` after the action duration.
    #[default]
    Normal,
    /// Actions never finish: they stay `Ongoing` (initialisation too).
    Stuck,
    /// Actions after creation end with status `Error` (phase `Running`).
    Error,
}

/// The settings that can change while the simulator runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Behaviour {
    /// How actions end.
    pub mode: Mode,
    /// Action duration: how long an action (and initialisation) stays `Ongoing`.
    pub delay: Duration,
    /// Pause before CassKop's first write of a reconcile that updates a StatefulSet.
    pub reaction: Duration,
    /// Jolokia does not answer: StatefulSets are not updated, changes stay `ToDo`.
    pub jolokia_down: bool,
    /// DCs that keyspaces replicate to: scaling one to 0 nodes is refused.
    pub keyspaces: BTreeSet<String>,
    /// Jolokia's `HostIdMap` lists the pods: `cassandraNodeStatus` is filled.
    pub host_ids: bool,
    /// Pod operations end with `operation-status=Error` (real workloads only).
    pub pod_operations_fail: bool,
}

/// How to run a simulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// How actions end (changeable later with [`Simulator::set_mode`]).
    pub mode: Mode,
    /// Action duration (changeable later with [`Simulator::set_delay`]); default 0: `Done` on
    /// the next reconcile. The traces show at least 20 s.
    pub delay: Duration,
    /// Reaction delay (changeable later with [`Simulator::set_reaction`]); default 0. The
    /// traces show ~1.1 s.
    pub reaction: Duration,
    /// Start with Jolokia down (changeable later with [`Simulator::set_jolokia_down`]).
    pub jolokia_down: bool,
    /// DCs keyspaces replicate to (changeable later with [`Simulator::set_keyspaces`]).
    pub keyspaces: BTreeSet<String>,
    /// Fill `cassandraNodeStatus` (default `true`, as with a real Cassandra; the traces' Jolokia
    /// stand-in answered `HostIdMap` with `{}`, so nothing there).
    pub host_ids: bool,
    /// Only this namespace (tests sharing a site each run their own simulator); all if `None`.
    pub namespace: Option<String>,
    /// Field manager of the writes.
    pub field_manager: String,
    /// Write real StatefulSets and a Service and follow their pods (sites with workloads), instead
    /// of keeping StatefulSets in memory.
    pub real_workloads: bool,
    /// Pod operations end in `Error` (changeable later with
    /// [`Simulator::set_pod_operations_fail`]).
    pub pod_operations_fail: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Normal,
            delay: Duration::ZERO,
            reaction: Duration::ZERO,
            jolokia_down: false,
            keyspaces: BTreeSet::new(),
            host_ids: true,
            namespace: None,
            field_manager: FIELD_MANAGER.into(),
            real_workloads: false,
            pod_operations_fail: false,
        }
    }
}

impl SimConfig {
    /// The timings of the traces: reaction 1.1 s, actions `Ongoing` for 20 s.
    pub fn traced() -> Self {
        Self::default()
            .reaction(Duration::from_millis(1100))
            .delay(Duration::from_secs(20))
    }

    /// Watches only `namespace`.
    #[must_use]
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Starts in `mode`.
    #[must_use]
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Action duration: how long each action stays `Ongoing` (same as [`Self::action_duration`]).
    #[must_use]
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// How long each action stays `Ongoing`.
    #[must_use]
    pub fn action_duration(self, duration: Duration) -> Self {
        self.delay(duration)
    }

    /// Pause before the first write of a reconcile that updates a StatefulSet.
    #[must_use]
    pub fn reaction(mut self, reaction: Duration) -> Self {
        self.reaction = reaction;
        self
    }

    /// Starts with Jolokia down (`true`) or up.
    #[must_use]
    pub fn jolokia_down(mut self, down: bool) -> Self {
        self.jolokia_down = down;
        self
    }

    /// Whether `cassandraNodeStatus` is filled (the traces: `false`).
    #[must_use]
    pub fn host_ids(mut self, host_ids: bool) -> Self {
        self.host_ids = host_ids;
        self
    }

    /// Real StatefulSets, Service and pods (`true`; the site needs workloads: see
    /// `SiteConfig::with_workloads`) or StatefulSets in memory (`false`, the default).
    #[must_use]
    pub fn real_workloads(mut self, real: bool) -> Self {
        self.real_workloads = real;
        self
    }

    /// Pod operations end in `Error` (`true`) or `Done`.
    #[must_use]
    pub fn pod_operations_fail(mut self, fail: bool) -> Self {
        self.pod_operations_fail = fail;
        self
    }

    /// Keyspaces replicate to `dc`: CassKop refuses to scale it to 0 (`CorrectCRDConfig`).
    #[must_use]
    pub fn keyspaces_replicate_to(mut self, dc: impl Into<String>) -> Self {
        self.keyspaces.insert(dc.into());
        self
    }
}

/// Counters the tests use to know the simulator has looked at an object.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    reconciles: Mutex<HashMap<(String, String), u64>>,
    writes: Mutex<HashMap<(String, String), u64>>,
    handled: Mutex<HashMap<(String, String), String>>,
}

impl Stats {
    fn bump(map: &Mutex<HashMap<(String, String), u64>>, namespace: &str, name: &str) {
        let mut map = map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *map.entry((namespace.to_string(), name.to_string()))
            .or_default() += 1;
    }

    fn get(map: &Mutex<HashMap<(String, String), u64>>, namespace: &str, name: &str) -> u64 {
        let map = map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(&(namespace.to_string(), name.to_string()))
            .copied()
            .unwrap_or(0)
    }

    pub(crate) fn count_reconcile(&self, namespace: &str, name: &str) {
        Self::bump(&self.reconciles, namespace, name);
    }

    pub(crate) fn count_write(&self, namespace: &str, name: &str) {
        Self::bump(&self.writes, namespace, name);
    }

    pub(crate) fn record_handled(&self, namespace: &str, name: &str, resource_version: String) {
        let mut map = self
            .handled
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.insert((namespace.to_string(), name.to_string()), resource_version);
    }
}

/// A running simulator; dropping it stops it.
#[derive(Debug)]
pub struct Simulator {
    behaviour: watch::Sender<Behaviour>,
    stats: Arc<Stats>,
    task: JoinHandle<()>,
}

impl Simulator {
    /// Starts a simulator for the cluster behind `client` on the current tokio runtime.
    pub fn spawn(client: Client, config: SimConfig) -> Self {
        let (behaviour, receiver) = watch::channel(Behaviour {
            mode: config.mode,
            delay: config.delay,
            reaction: config.reaction,
            jolokia_down: config.jolokia_down,
            keyspaces: config.keyspaces.clone(),
            host_ids: config.host_ids,
            pod_operations_fail: config.pod_operations_fail,
        });
        let stats = Arc::new(Stats::default());
        let task = tokio::spawn(reconcile::run(client, config, receiver, stats.clone()));
        Self {
            behaviour,
            stats,
            task,
        }
    }

    /// Changes how actions end; every object is looked at again (a stuck action resumes).
    pub fn set_mode(&self, mode: Mode) {
        self.behaviour.send_modify(|b| b.mode = mode);
    }

    /// Changes the action duration (how long actions stay `Ongoing`).
    pub fn set_delay(&self, delay: Duration) {
        self.behaviour.send_modify(|b| b.delay = delay);
    }

    /// Changes the reaction delay.
    pub fn set_reaction(&self, reaction: Duration) {
        self.behaviour.send_modify(|b| b.reaction = reaction);
    }

    /// Jolokia stops (`true`) or starts answering; every object is looked at again (a `ToDo`
    /// action resumes).
    pub fn set_jolokia_down(&self, down: bool) {
        self.behaviour.send_modify(|b| b.jolokia_down = down);
    }

    /// The DCs keyspaces replicate to (scaling one to 0 is refused).
    pub fn set_keyspaces(&self, dcs: impl IntoIterator<Item = impl Into<String>>) {
        let dcs: BTreeSet<String> = dcs.into_iter().map(Into::into).collect();
        self.behaviour.send_modify(|b| b.keyspaces = dcs);
    }

    /// Pod operations end in `Error` (`true`) or `Done` from now on.
    pub fn set_pod_operations_fail(&self, fail: bool) {
        self.behaviour.send_modify(|b| b.pod_operations_fail = fail);
    }

    /// The current settings.
    pub fn behaviour(&self) -> Behaviour {
        self.behaviour.borrow().clone()
    }

    /// How many times the simulator finished looking at `namespace/name` (whether or not it
    /// wrote). A test that changed the object and sees this grow knows the change was seen.
    pub fn reconcile_count(&self, namespace: &str, name: &str) -> u64 {
        Stats::get(&self.stats.reconciles, namespace, name)
    }

    /// The resourceVersion of `namespace/name` the simulator last read and fully dealt with
    /// (decided on, and wrote if needed). Once it equals the version a test wrote, the simulator
    /// has seen that write; a stuck simulator that has seen it and wrote nothing holds.
    pub fn last_handled_version(&self, namespace: &str, name: &str) -> Option<String> {
        let map = self
            .stats
            .handled
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(&(namespace.to_string(), name.to_string())).cloned()
    }

    /// How many writes (API requests that change the object: main resource or `/status`) the
    /// simulator made to `namespace/name`.
    pub fn write_count(&self, namespace: &str, name: &str) -> u64 {
        Stats::get(&self.stats.writes, namespace, name)
    }

    /// Whether the controller task ended (it only does when aborted).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}
