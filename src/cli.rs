//! Command-line interface.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Runs one Apache Cassandra ring across several Kubernetes clusters with CassKop.
#[derive(Debug, Parser)]
#[command(name = "multi-casskop", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the MultiCasskop CustomResourceDefinition (YAML).
    Crd,
    /// Print the CassandraCluster each site would get, without any cluster.
    Render {
        /// MultiCasskop manifest (YAML); `-` reads standard input.
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        /// Only these sites (repeatable); default: every site in spec.override.
        #[arg(long = "site")]
        sites: Vec<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }
}
