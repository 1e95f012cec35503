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
    /// Run the controller.
    Run(RunArgs),
    /// Show MultiCasskops and the state of each of their sites.
    Status {
        /// Only this MultiCasskop (default: all in the namespace).
        name: Option<String>,
        /// Namespace (default: all namespaces).
        #[arg(long, short = 'n')]
        namespace: Option<String>,
        /// Kubeconfig of the management cluster (default: $KUBECONFIG, ~/.kube/config or in-cluster).
        #[arg(long, env = "MULTICASSKOP_KUBECONFIG")]
        kubeconfig: Option<PathBuf>,
        /// Context in that kubeconfig.
        #[arg(long)]
        context: Option<String>,
    },
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

/// Options of `multi-casskop run`; each also reads from the environment.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Settings file (YAML); `MULTICASSKOP_*` environment variables override it.
    #[arg(long, env = "MULTICASSKOP_CONFIG")]
    pub config: Option<PathBuf>,
    /// Kubeconfig of the management cluster (default: $KUBECONFIG, ~/.kube/config or in-cluster).
    #[arg(long, env = "MULTICASSKOP_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Context in that kubeconfig.
    #[arg(long, env = "MULTICASSKOP_CONTEXT")]
    pub context: Option<String>,
    /// Namespace whose MultiCasskops are reconciled (default: all).
    #[arg(long, short = 'n', env = "MULTICASSKOP_NAMESPACE")]
    pub namespace: Option<String>,
    /// The management cluster is also the site NAME (the Go Multi-CassKop's `-l`).
    #[arg(short = 'l', long = "local")]
    pub local: Option<String>,
    /// A remote site NAME (repeatable; the Go Multi-CassKop's `-r`): kubeconfig from
    /// /var/run/secrets/admiralty.io/serviceaccountimports/NAME/config, else the context NAME.
    #[arg(short = 'r', long = "remote")]
    pub remotes: Vec<String>,
    /// A site as NAME=KUBECONFIG[:CONTEXT] (repeatable).
    #[arg(long = "site", value_parser = crate::config::parse_site_flag)]
    pub sites: Vec<crate::config::SiteConfig>,
    /// Namespace of Secrets holding site kubeconfigs (reloaded without restart).
    #[arg(long, env = "MULTICASSKOP_SECRETS_NAMESPACE")]
    pub secrets_namespace: Option<String>,
    /// Log format.
    #[arg(long, value_enum, env = "MULTICASSKOP_LOG_FORMAT")]
    pub log_format: Option<crate::config::LogFormat>,
    /// Elect a leader among replicas through a Lease (only the leader reconciles).
    #[arg(long, env = "MULTICASSKOP_LEADER_ELECT")]
    pub leader_elect: bool,
    /// Namespace of the leader Lease (default: $POD_NAMESPACE, else default).
    #[arg(long, env = "MULTICASSKOP_LEADER_ELECTION_NAMESPACE")]
    pub leader_election_namespace: Option<String>,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "MULTICASSKOP_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: String,
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
