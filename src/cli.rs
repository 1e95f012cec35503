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
    /// Onboard, list and remove sites held in Secrets of the management cluster.
    Site {
        /// What to do.
        #[command(subcommand)]
        action: SiteCommand,
        /// Kubeconfig of the management cluster (default: $KUBECONFIG, ~/.kube/config or in-cluster).
        #[arg(long, global = true, env = "MULTICASSKOP_KUBECONFIG")]
        management_kubeconfig: Option<PathBuf>,
        /// Context of the management cluster in that kubeconfig.
        #[arg(long, global = true)]
        management_context: Option<String>,
        /// Namespace of the site Secrets (where the controller runs).
        #[arg(long, global = true, env = "MULTICASSKOP_SECRETS_NAMESPACE", default_value = crate::site_admin::DEFAULT_SECRETS_NAMESPACE)]
        secrets_namespace: String,
    },
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

/// `multi-casskop site ...`.
#[derive(Debug, Subcommand)]
pub enum SiteCommand {
    /// Create a least-privilege service account at the site (through your own kubeconfig
    /// context), mint a token for it and store its kubeconfig as a Secret the controller loads.
    Add {
        /// Site name, as used in spec.override.
        name: String,
        /// Your kubeconfig context for the remote cluster.
        #[arg(long)]
        context: String,
        /// Your kubeconfig (default: $KUBECONFIG or ~/.kube/config).
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
        /// Namespace of the CassandraClusters at the site.
        #[arg(long, short = 'n', default_value = "default")]
        namespace: String,
        /// Token lifetime in hours; run `site add` again to rotate.
        #[arg(long, default_value_t = 8760)]
        token_hours: u64,
    },
    /// List the sites with their reachability, Kubernetes version and CassKop CRD.
    List,
    /// Remove a site's Secret; with --revoke also its account at the site.
    Remove {
        /// Site name.
        name: String,
        /// Also delete the service account, role and binding at the site (needs --context).
        #[arg(long, requires = "context")]
        revoke: bool,
        /// Your kubeconfig context for the remote cluster.
        #[arg(long)]
        context: Option<String>,
        /// Your kubeconfig (default: $KUBECONFIG or ~/.kube/config).
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
        /// Namespace used at the site.
        #[arg(long, short = 'n', default_value = "default")]
        namespace: String,
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
    /// Address of /metrics, /healthz and /readyz. Loopback by default: /metrics is
    /// unauthenticated (use 0.0.0.0:8080 in a pod, with --metrics-addr or kube-rbac-proxy).
    #[arg(long, env = "MULTICASSKOP_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: String,
    /// Serve /metrics only on this address (e.g. 127.0.0.1:8443 behind kube-rbac-proxy).
    #[arg(long, env = "MULTICASSKOP_METRICS_ADDR")]
    pub metrics_addr: Option<String>,
    /// Let MultiCasskops of namespace OWNER target SITE_NAMESPACE at the sites, as
    /// OWNER=SITE_NAMESPACE (repeatable; tenancy.allowedNamespaces in the settings file).
    #[arg(long = "allow-namespace", value_parser = crate::config::parse_allow_namespace_flag)]
    pub allow_namespaces: Vec<(String, String)>,
    /// Accept site kubeconfigs with insecure-skip-tls-verify: true (logged as a warning).
    #[arg(long, env = "MULTICASSKOP_ALLOW_INSECURE_SKIP_TLS_VERIFY")]
    pub allow_insecure_skip_tls_verify: bool,
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
