//! A CassKop site simulator: a small controller per site that drives `CassandraCluster` status
//! the way CassKop does (creation, spec changes, seed-list changes, rolling restarts), with a
//! configurable delay per transition and stuck / error modes that can change at runtime.
//!
//! It runs in-process ([`Simulator::spawn`], aborted on drop) or as the `casskop-sim` binary.
//! The decisions live in [`plan`] (pure), the I/O in [`reconcile`].

pub mod diff;
pub mod model;
pub mod plan;
pub mod reconcile;
pub mod topology;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::Client;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use model::{LAST_APPLIED_ANNOTATION, STATEFULSET_SEEDS_ANNOTATION};
pub use reconcile::{SimError, api_resource};

/// Default field manager of the simulator's writes (visible in `metadata.managedFields`).
pub const FIELD_MANAGER: &str = "casskop-simulator";

/// How actions end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// Actions finish with `Done`.
    #[default]
    Normal,
    /// Actions never finish: they stay `Ongoing`.
    Stuck,
    /// Actions end with status `Error`.
    Error,
}

/// The settings that can change while the simulator runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Behaviour {
    /// How actions end.
    pub mode: Mode,
    /// Pause before each transition after the first write of an action (0: next reconcile).
    pub delay: Duration,
}

/// How to run a simulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// How actions end (changeable later with [`Simulator::set_mode`]).
    pub mode: Mode,
    /// Delay before each transition (changeable later with [`Simulator::set_delay`]).
    pub delay: Duration,
    /// Only this namespace (tests sharing a site each run their own simulator); all if `None`.
    pub namespace: Option<String>,
    /// Field manager of the writes.
    pub field_manager: String,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Normal,
            delay: Duration::ZERO,
            namespace: None,
            field_manager: FIELD_MANAGER.into(),
        }
    }
}

impl SimConfig {
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

    /// Waits `delay` before each transition.
    #[must_use]
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
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

    /// Changes the delay before each transition.
    pub fn set_delay(&self, delay: Duration) {
        self.behaviour.send_modify(|b| b.delay = delay);
    }

    /// The current settings.
    pub fn behaviour(&self) -> Behaviour {
        *self.behaviour.borrow()
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

    /// How many writes the simulator made to `namespace/name`.
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
