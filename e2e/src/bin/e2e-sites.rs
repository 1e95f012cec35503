//! `e2e-sites`: starts local sites (control planes) for a demo or manual testing, installs the
//! CassKop CRDs, optionally simulates CassKop on each, and stops everything on SIGINT/SIGTERM.
//!
//! ```text
//! e2e-sites                                  # site-1..3, kubeconfigs in <repo>/kubeconfigs
//! e2e-sites --site paris=orange --site nice=cscetbon --simulate --delay-ms 2000
//! e2e-sites --workloads 3                    # plus controller-manager, scheduler, 3 kwok nodes each
//! ```
//!
//! Prints one `SITE {json}` line per site, then `ALL-READY`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Parser, ValueEnum};
use multi_casskop_e2e::{CasskopCrd, SimConfig, Simulator, SiteConfig, Sites, telemetry};

/// Which CassKop CRD the sites get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CrdChoice {
    /// Orange v2.1.0 (no status subresource) everywhere.
    Orange,
    /// cscetbon (status subresource) everywhere.
    Cscetbon,
    /// Alternating: Orange, cscetbon, Orange, ...
    Mixed,
    /// No CassKop CRD.
    None,
}

/// Starts local Kubernetes control planes, one per site.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// A site, optionally with its CRD: `NAME` or `NAME=orange|cscetbon|none`. Repeatable.
    #[arg(long = "site")]
    sites: Vec<String>,
    /// Without --site: start `site-1` .. `site-N`.
    #[arg(long, default_value_t = 3)]
    count: usize,
    /// CRD for sites that do not name one.
    #[arg(long, value_enum, default_value_t = CrdChoice::Mixed)]
    crd: CrdChoice,
    /// Where `<site>.kubeconfig` files go.
    #[arg(long, default_value_os_t = default_kubeconfig_dir())]
    kubeconfig_dir: PathBuf,
    /// Also write one kubeconfig with every site as a context.
    #[arg(long)]
    merged_kubeconfig: Option<PathBuf>,
    /// Keep state in `<DIR>/<site>` (reused by a later run) instead of temporary directories.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Run the CassKop simulator on every site.
    #[arg(long)]
    simulate: bool,
    /// Simulator delay before each status transition, in milliseconds.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Run kube-controller-manager, kube-scheduler and kwok with this many fake nodes (one
    /// zone each) at every site, so that StatefulSets get pods; 0: API servers only.
    #[arg(long, default_value_t = 0)]
    workloads: usize,
}

fn default_kubeconfig_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../kubeconfigs"))
}

fn site_configs(args: &Args) -> anyhow::Result<Vec<SiteConfig>> {
    let pick = |i: usize| match args.crd {
        CrdChoice::Orange => Some(CasskopCrd::Orange),
        CrdChoice::Cscetbon => Some(CasskopCrd::Cscetbon),
        CrdChoice::Mixed if i.is_multiple_of(2) => Some(CasskopCrd::Orange),
        CrdChoice::Mixed => Some(CasskopCrd::Cscetbon),
        CrdChoice::None => None,
    };
    let named: Vec<(String, Option<CasskopCrd>)> = if args.sites.is_empty() {
        (1..=args.count)
            .map(|i| (format!("site-{i}"), pick(i - 1)))
            .collect()
    } else {
        args.sites
            .iter()
            .enumerate()
            .map(|(i, spec)| match spec.split_once('=') {
                None => Ok((spec.clone(), pick(i))),
                Some((name, "orange")) => Ok((name.to_string(), Some(CasskopCrd::Orange))),
                Some((name, "cscetbon")) => Ok((name.to_string(), Some(CasskopCrd::Cscetbon))),
                Some((name, "none")) => Ok((name.to_string(), None)),
                Some((_, other)) => {
                    bail!("--site {spec}: unknown CRD {other:?}; use orange, cscetbon or none")
                }
            })
            .collect::<anyhow::Result<_>>()?
    };
    Ok(named
        .into_iter()
        .map(|(name, crd)| {
            let mut config = SiteConfig::new(&name)
                .kubeconfig(args.kubeconfig_dir.join(format!("{name}.kubeconfig")));
            if let Some(dir) = &args.state_dir {
                config = config.state_dir(dir.join(&name));
            }
            if let Some(crd) = crd {
                config = config.casskop_crd(crd);
            }
            if args.workloads > 0 {
                config = config.with_workloads(args.workloads);
            }
            config
        })
        .collect())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init();
    let args = Args::parse();
    let configs = site_configs(&args)?;
    let sites = Sites::start(configs).await.context("starting the sites")?;
    sites
        .install_casskop_crds()
        .await
        .context("installing the CassKop CRDs")?;
    if let Some(path) = &args.merged_kubeconfig {
        sites
            .write_merged_kubeconfig(path)
            .with_context(|| format!("writing the merged kubeconfig {}", path.display()))?;
    }
    let mut simulators = Vec::new();
    for site in &sites {
        if args.simulate {
            let client = site
                .client()
                .await
                .with_context(|| format!("client for site {}", site.name()))?;
            simulators.push(Simulator::spawn(
                client,
                SimConfig::default().delay(Duration::from_millis(args.delay_ms)),
            ));
        }
        let line = serde_json::json!({
            "name": site.name(),
            "pid": site.pid(),
            "server": site.server(),
            "kubeconfig": site.kubeconfig_path(),
            "state_dir": site.state_dir(),
            "casskop_crd": site.casskop_crd().map(|c| format!("{c:?}")),
            "start_ms": site.last_start_duration().map(|d| d.as_millis()),
            "rss_kib": site.rss_kib(),
        });
        println!("SITE {line}");
    }
    println!("ALL-READY in {} ms", sites.started_in().as_millis());
    multi_casskop_e2e::wait::shutdown_signal()
        .await
        .context("waiting for Ctrl-C or SIGTERM")?;
    drop(simulators);
    tracing::info!("stopping the sites");
    drop(sites);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn default_layout_is_three_mixed_sites() {
        let args = Args::parse_from(["e2e-sites"]);
        let configs = site_configs(&args).unwrap();
        let names: Vec<_> = configs.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["site-1", "site-2", "site-3"]);
        assert_eq!(configs[1].casskop_crd, Some(CasskopCrd::Cscetbon));
        assert!(
            configs[0]
                .kubeconfig
                .as_ref()
                .unwrap()
                .ends_with("kubeconfigs/site-1.kubeconfig")
        );
    }

    #[test]
    fn named_sites_take_their_crd() {
        let args = Args::parse_from([
            "e2e-sites",
            "--site",
            "a=cscetbon",
            "--site",
            "b=none",
            "--site",
            "c",
        ]);
        let crds: Vec<_> = site_configs(&args)
            .unwrap()
            .into_iter()
            .map(|c| c.casskop_crd)
            .collect();
        assert_eq!(
            crds,
            [Some(CasskopCrd::Cscetbon), None, Some(CasskopCrd::Orange)]
        );
        let bad = Args::parse_from(["e2e-sites", "--site", "a=kind"]);
        assert!(site_configs(&bad).is_err());
    }
}
