//! multi-casskop: runs one Apache Cassandra ring across several Kubernetes clusters ("sites")
//! by writing, at each site, the CassKop `CassandraCluster` that its `MultiCasskop` asks for.
//!
//! - [`api`]: the `MultiCasskop` CRD and the views of `CassandraCluster` we read.
//! - [`core`]: pure decisions (merge, seeds, validation, readiness, rollout, status).
//! - [`crd`], [`render`]: the `crd` and `render` commands.

// Table-driven tests list their cases as tuples, which is clearer than a struct per table.
#![cfg_attr(test, allow(clippy::type_complexity))]

pub mod api;
pub mod cli;
pub mod config;
pub mod controller;
pub mod core;
pub mod crd;
pub mod http;
pub mod labels;
pub mod leader;
pub mod metrics;
pub mod poison;
pub mod render;
pub mod run;
pub mod site_admin;
pub mod sites;
pub mod status_table;
pub mod telemetry;
