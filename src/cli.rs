//! Command-line interface, and how `run`'s flags apply over the settings.

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::config::{DEFAULT_HTTP_ADDR, LogFormat, Settings, SiteConfig};
use crate::sites::SiteSource;

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
    /// Print the MultiCasskop and MultiCasskopTask CustomResourceDefinitions (YAML).
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
    /// Run a CassKop pod operation over a ring's sites, site by site in rollout order: creates a
    /// MultiCasskopTask and prints its name (follow it with `kubectl get mcasstask NAME` or
    /// `kubectl wait --for=condition=Complete mcasstask/NAME`).
    Op {
        /// `cleanup`, `upgradesstables` or `rebuild` (needs --source-dc).
        #[arg(value_parser = ["cleanup", "upgradesstables", "rebuild"])]
        operation: String,
        /// The MultiCasskop.
        ring: String,
        /// Namespace of the MultiCasskop (default: the kubeconfig context's namespace).
        #[arg(long, short = 'n')]
        namespace: Option<String>,
        /// Only these sites, comma-separated (still run in the ring's rollout order).
        #[arg(long, value_delimiter = ',')]
        sites: Vec<String>,
        /// `rebuild`: the DC to stream from.
        #[arg(long, required_if_eq("operation", "rebuild"))]
        source_dc: Option<String>,
        /// Pods of one site operated on at the same time (default 1).
        #[arg(long)]
        concurrency: Option<u32>,
        /// Retries of a pod whose operation ended in Error (default 2).
        #[arg(long)]
        retries: Option<u32>,
        /// Delete the task this many seconds after it finished.
        #[arg(long)]
        ttl: Option<u32>,
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
        /// Also allow copying Secrets and ConfigMaps (spec.copyToSites) into the namespace: with
        /// names (comma-separated), reading, updating and deleting only those (resourceNames);
        /// creating cannot be limited by name in Kubernetes.
        #[arg(long, value_delimiter = ',', num_args = 0..)]
        copy_secrets: Option<Vec<String>>,
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

/// Options of `multi-casskop run`. Each overrides the settings file and the environment
/// (`MULTICASSKOP_*`, see [`crate::config::env`]) only when given.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Settings file (YAML); `MULTICASSKOP_*` environment variables override it, flags override both.
    #[arg(long, env = "MULTICASSKOP_CONFIG")]
    pub config: Option<PathBuf>,
    /// Kubeconfig of the management cluster (default: $KUBECONFIG, ~/.kube/config or in-cluster).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Context in that kubeconfig.
    #[arg(long)]
    pub context: Option<String>,
    /// Namespace whose MultiCasskops are reconciled (default: all).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// The management cluster is also the site NAME (the Go Multi-CassKop's `-l`).
    #[arg(short = 'l', long = "local")]
    pub local: Option<String>,
    /// A remote site NAME (repeatable; the Go Multi-CassKop's `-r`): kubeconfig from
    /// /var/run/secrets/admiralty.io/serviceaccountimports/NAME/config, else the context NAME.
    #[arg(short = 'r', long = "remote")]
    pub remotes: Vec<String>,
    /// A site as NAME=KUBECONFIG[:CONTEXT] (repeatable).
    #[arg(long = "site", value_parser = parse_site_flag)]
    pub sites: Vec<SiteConfig>,
    /// Namespace of Secrets holding site kubeconfigs (reloaded without restart).
    #[arg(long)]
    pub secrets_namespace: Option<String>,
    /// Log format.
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Elect a leader among replicas through a Lease (only the leader reconciles).
    #[arg(long)]
    pub leader_elect: bool,
    /// Namespace of the leader Lease (default: $POD_NAMESPACE, else default).
    #[arg(long)]
    pub leader_election_namespace: Option<String>,
    /// Address of /metrics, /healthz and /readyz [default: 127.0.0.1:8080, loopback: /metrics
    /// is unauthenticated; use 0.0.0.0:8080 in a pod, with --metrics-addr or kube-rbac-proxy].
    #[arg(long)]
    pub http_addr: Option<String>,
    /// Serve /metrics only on this address (e.g. 127.0.0.1:8443 behind kube-rbac-proxy).
    #[arg(long)]
    pub metrics_addr: Option<String>,
    /// Let MultiCasskops of namespace OWNER target SITE_NAMESPACE at the sites, as
    /// OWNER=SITE_NAMESPACE (repeatable; tenancy.allowedNamespaces in the settings file).
    #[arg(long = "allow-namespace", value_parser = parse_allow_namespace_flag)]
    pub allow_namespaces: Vec<(String, String)>,
    /// Accept site kubeconfigs with insecure-skip-tls-verify: true (logged as a warning).
    #[arg(long)]
    pub allow_insecure_skip_tls_verify: bool,
    /// Print the settings in effect (file, environment and flags merged) as YAML, and exit.
    #[arg(long)]
    pub print_settings: bool,
}

impl RunArgs {
    /// The settings with the flags given on the command line applied over them: sites from
    /// `-l`, `-r` and `--site` are added after the configured ones, `--allow-namespace` adds
    /// to `tenancy.allowedNamespaces`, the switches can only turn their setting on, and every
    /// other flag replaces its setting. Then the HTTP address defaults to
    /// [`DEFAULT_HTTP_ADDR`].
    pub fn apply(&self, settings: Settings) -> Settings {
        let mut s = settings.with_flag_sites(self.local.as_deref(), &self.remotes, &self.sites);
        let replace = |flag: &Option<String>, setting: &mut Option<String>| {
            if let Some(value) = flag {
                *setting = Some(value.clone());
            }
        };
        replace(&self.namespace, &mut s.namespace);
        replace(&self.secrets_namespace, &mut s.secrets.namespace);
        replace(&self.context, &mut s.management.context);
        replace(
            &self.leader_election_namespace,
            &mut s.leader_election.namespace,
        );
        replace(&self.http_addr, &mut s.http_addr);
        replace(&self.metrics_addr, &mut s.metrics_addr);
        if let Some(file) = &self.kubeconfig {
            s.management.kubeconfig = Some(file.clone());
        }
        if let Some(format) = self.log_format {
            s.log_format = format;
        }
        s.leader_election.enabled |= self.leader_elect;
        s.allow_insecure_skip_tls_verify |= self.allow_insecure_skip_tls_verify;
        s.http_addr = s.http_addr.or_else(|| Some(DEFAULT_HTTP_ADDR.into()));
        s.with_allowed_namespaces(&self.allow_namespaces)
    }
}

/// Parses a `--site NAME=KUBECONFIG[:CONTEXT]` flag.
pub fn parse_site_flag(flag: &str) -> Result<SiteConfig, String> {
    let (name, rest) = flag
        .split_once('=')
        .ok_or_else(|| format!("--site {flag:?}: expected NAME=KUBECONFIG[:CONTEXT]"))?;
    let (file, context) = match rest.rsplit_once(':') {
        Some((file, context)) if !context.contains('/') => (file, Some(context)),
        _ => (rest, None),
    };
    if name.is_empty() || file.is_empty() {
        return Err(format!(
            "--site {flag:?}: expected NAME=KUBECONFIG[:CONTEXT]"
        ));
    }
    Ok(SiteConfig::new(
        name,
        SiteSource::kubeconfig(Some(Path::new(file)), context),
    ))
}

/// Parses an `--allow-namespace OWNER=SITE_NAMESPACE` flag (tenancy.allowedNamespaces).
pub fn parse_allow_namespace_flag(flag: &str) -> Result<(String, String), String> {
    match flag.split_once('=') {
        Some((owner, target)) if !owner.is_empty() && !target.is_empty() => {
            Ok((owner.to_string(), target.to_string()))
        }
        _ => Err(format!(
            "--allow-namespace {flag:?}: expected MULTICASSKOP_NAMESPACE=SITE_NAMESPACE"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    fn run_args(args: &[&str]) -> RunArgs {
        let cli = Cli::try_parse_from(["multi-casskop", "run"].iter().chain(args)).expect("parses");
        match cli.command {
            Command::Run(run) => run,
            other => panic!("{other:?}"),
        }
    }

    /// Flags override only when given: a flag left out (even one with a documented default)
    /// keeps the file's or the environment's value.
    #[test]
    fn flags_override_only_when_given() {
        let from_file = Settings {
            namespace: Some("file".into()),
            http_addr: Some("0.0.0.0:9000".into()),
            log_format: LogFormat::Json,
            ..Settings::default()
        };
        let kept = run_args(&[]).apply(from_file.clone());
        assert_eq!(kept.http_addr.as_deref(), Some("0.0.0.0:9000"));
        assert_eq!(kept.namespace.as_deref(), Some("file"));
        assert_eq!(kept.log_format, LogFormat::Json);
        let given = run_args(&[
            "--http-addr",
            "127.0.0.1:1",
            "-n",
            "flag",
            "--log-format",
            "plain",
            "--allow-namespace",
            "team-b=cass-b",
        ])
        .apply(from_file);
        assert_eq!(given.http_addr.as_deref(), Some("127.0.0.1:1"));
        assert_eq!(given.namespace.as_deref(), Some("flag"));
        assert_eq!(given.log_format, LogFormat::Plain);
        assert!(given.tenancy.allows("team-b", "cass-b"));
        assert_eq!(
            run_args(&[])
                .apply(Settings::default())
                .http_addr
                .as_deref(),
            Some(DEFAULT_HTTP_ADDR),
            "the default applies only when nothing sets the address"
        );
    }

    #[test]
    fn site_flag_forms() {
        assert_eq!(
            parse_site_flag("a=/x/y").expect("ok").source,
            SiteSource::File {
                path: "/x/y".into(),
                context: None
            }
        );
        assert_eq!(
            parse_site_flag("a=/x/y:ctx").expect("ok").source,
            SiteSource::File {
                path: "/x/y".into(),
                context: Some("ctx".into())
            }
        );
        assert!(parse_site_flag("nameonly").is_err());
        assert!(parse_site_flag("=/x").is_err());
        assert!(parse_allow_namespace_flag("team-b").is_err());
    }
}
