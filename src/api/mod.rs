//! Resource types: the `MultiCasskop` CRD and the views of CassKop's `CassandraCluster` we read.

pub mod cassandracluster;
pub mod guarded;
pub mod multicasskop;

pub use cassandracluster::*;
pub use multicasskop::*;
