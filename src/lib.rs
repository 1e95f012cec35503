//! multi-casskop: runs one Apache Cassandra ring across several Kubernetes clusters ("sites")
//! by writing, at each site, the CassKop `CassandraCluster` that its `MultiCasskop` asks for.
//!
//! Modules (public where the binary, the tests or the examples use them):
//! - [`api`]: the `MultiCasskop` CRD and the views of `CassandraCluster` we read.
//! - [`cli`]: the command line, and how `run`'s flags apply over the settings.
//! - [`config`]: the controller's settings: file, then environment, then flags.
//! - [`controller`]: the reconcile pipeline (dereference, build, apply, update status).
//! - [`core`]: pure decisions (merge, seeds, validation, readiness, rollout, status).
//! - [`crd`]: the `crd` command (the generated CRD).
//! - `http` (private): `/metrics`, `/healthz` and `/readyz`.
//! - [`labels`]: label, annotation and field-manager names shared with the sites.
//! - `leader` (private): leader election on a Lease; only the leader reconciles.
//! - `lease` (private): the Lease loop of leader election (acquire, renew, release).
//! - [`metrics`]: Prometheus metrics, including requests counted per site.
//! - [`render`]: the `render` command (what each site would get, without a cluster).
//! - [`run`]: `multi-casskop run`: connect the management cluster and the sites, then run.
//! - [`site_admin`]: `multi-casskop site add|list|remove`.
//! - [`sites`]: one client, watch and health per site, from each site's [`sites::SiteSource`].
//! - [`status_table`]: the `status` command's tables.
//! - [`telemetry`]: logging (plain or JSON), with credential-bearing bodies kept out.

// Table-driven tests list their cases as tuples, which is clearer than a struct per table.
#![cfg_attr(test, allow(clippy::type_complexity))]

pub mod api;
pub mod cli;
pub mod config;
pub mod controller;
pub mod core;
pub mod crd;
mod http;
pub mod labels;
mod leader;
mod lease;
pub mod metrics;
pub mod render;
pub mod run;
pub mod site_admin;
pub mod sites;
pub mod status_table;
pub mod telemetry;
