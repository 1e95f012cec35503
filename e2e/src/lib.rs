//! Test environment for multi-casskop: real local Kubernetes control planes (one per "site") and
//! a CassKop simulator that drives `CassandraCluster` status the way CassKop does.
//!
//! - [`controlplane`]: start, stop, restart and pause `kube-controlplane` processes (embedded etcd +
//!   kube-apiserver), one per site, that never outlive the test binary.
//! - [`shared`]: one lazily started set of sites per test binary, stopped at process exit.
//! - [`crds`]: install CRD YAML files and wait until they are served; the two CassKop CRD variants.
//! - [`kubeconfig`]: clients from site kubeconfigs, merged kubeconfig files.
//! - [`namespace`]: unique namespaces so tests sharing sites stay independent.
//! - [`paths`]: the checkout and the shared inputs beside it, found at run time.
//! - [`simulator`]: the CassKop site simulator (in-process, or the `casskop-sim` binary).
//! - [`wait`]: poll until a condition holds, failing with what was last seen.
//! - [`cassandra`]: test helpers for `CassandraCluster` objects (samples, edits, waits, history).
//! - [`telemetry`]: tracing set-up for tests and binaries.

#![warn(missing_docs)]

pub mod cassandra;
pub mod controlplane;
pub mod crds;
pub mod kubeconfig;
pub mod lease;
pub mod namespace;
pub mod paths;
pub mod shared;
pub mod simulator;
pub mod telemetry;
pub mod wait;

pub use controlplane::{Site, SiteConfig, Sites};
pub use crds::CasskopCrd;
pub use simulator::{Mode, SimConfig, Simulator};
