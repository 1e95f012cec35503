//! The pure federation core: no I/O, only functions from inputs to decisions.
//!
//! merge → site object → seeds → validation decide what each site must hold; readiness,
//! rollout and aggregation decide what to do next and what to report.

pub mod aggregate;
pub mod evidence;
pub mod federation;
pub mod merge;
pub mod readiness;
pub mod replication;
pub mod rollout;
pub mod seeds;
pub mod site_object;
pub mod status_urgency;
pub mod sync;
pub mod tenancy;
pub mod validate;
