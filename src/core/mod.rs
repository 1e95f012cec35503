//! The pure federation core: no I/O, only functions from inputs to decisions.
//!
//! merge → site object → seeds → validation decide what each site must hold; readiness,
//! rollout and aggregation decide what to do next and what to report.

pub mod aggregate;
pub mod copies;
pub mod evidence;
pub mod federation;
pub mod joining;
pub mod leaving;
pub mod lost_nodes;
pub mod merge;
pub mod readiness;
pub mod rebuild;
pub mod replication;
pub mod rollout;
pub mod seeds;
pub mod site_object;
pub mod status_urgency;
pub mod sync;
pub mod task;
pub mod tenancy;
pub mod validate;
