//! Resource types: the `MultiCasskop` and `MultiCasskopTask` CRDs and the views of CassKop's `CassandraCluster` we read.

pub mod cassandracluster;
pub mod guarded;
pub mod multicasskop;
pub mod task;

pub use cassandracluster::*;
pub use multicasskop::*;
pub use task::*;
