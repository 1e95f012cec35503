//! Local Kubernetes control planes, one per site: `kube-controlplane` processes (embedded etcd +
//! kube-apiserver 1.35 on 127.0.0.1) started concurrently on free ports, each with its own state
//! directory and a kubeconfig whose context is named after the site. A site may also run
//! workloads ([`SiteConfig::with_workloads`]): kube-controller-manager, kube-scheduler and kwok
//! with fake nodes, so that StatefulSets get real pods.
//!
//! Processes never outlive the test binary: each runs in its own process group with a
//! parent-death signal, and is stopped (SIGTERM, then SIGKILL after 30 s) when its last
//! [`Site`] handle is dropped, including during a panic's unwinding.

pub mod binary;
mod error;
pub mod ports;
pub mod process;
pub mod ready;
mod site;
mod sites;
pub mod workloads;

pub use error::SiteError;
pub use ports::Ports;
pub use site::{READY_TIMEOUT, Site, SiteConfig};
pub use sites::Sites;
pub use workloads::{Component, WorkloadPorts, Workloads};
