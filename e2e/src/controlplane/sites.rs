//! A set of sites started together (concurrently) and stopped together.

use std::collections::HashSet;
use std::path::Path;
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use super::binary::{self, Tool};
use super::error::SiteError;
use super::ports::{self, Ports};
use super::site::{Site, SiteConfig, TEMP_PREFIX, blocking};
use super::workloads::{Binaries, WorkloadPorts};
use crate::crds::{self, CrdError};
use crate::kubeconfig::{self, KubeconfigError};

/// How often a first start is retried when another process took one of its ports.
const PORT_CLASH_ATTEMPTS: usize = 3;

/// Several running sites. Dropping the set stops every site in parallel (temporary state
/// directories go when the last handle on each site is dropped).
#[derive(Debug)]
pub struct Sites {
    sites: Vec<Site>,
    started_in: Duration,
}

impl Sites {
    /// Starts one control plane per configuration, all at once, and waits until all are ready.
    pub async fn start(configs: Vec<SiteConfig>) -> Result<Self, SiteError> {
        blocking(move || Self::start_blocking(configs)).await
    }

    /// Blocking form of [`Sites::start`]. Locates (or builds) the binaries first. Sites with
    /// workloads start their components once every API server is ready, in parallel.
    pub fn start_blocking(configs: Vec<SiteConfig>) -> Result<Self, SiteError> {
        let mut names = HashSet::new();
        for config in &configs {
            if !names.insert(config.name.clone()) {
                return Err(SiteError::DuplicateName(config.name.clone()));
            }
        }
        remove_stale_temp_dirs();
        let binary = binary::locate()?;
        let with_workloads = configs.iter().filter(|c| c.workloads.is_some()).count();
        let bins = if with_workloads > 0 {
            Some(Binaries {
                sitectl: binary::locate_tool(Tool::Sitectl)?,
                kwok: binary::locate_tool(Tool::Kwok)?,
            })
        } else {
            None
        };
        let began = Instant::now();
        // All ports at once, so that no two overlap.
        let free =
            ports::pick_ports(configs.len() * 3 + with_workloads * 2).map_err(SiteError::Ports)?;
        let mut free = free.into_iter();
        let mut next = || free.next().unwrap_or_default();
        let sites = configs
            .into_iter()
            .map(|config| {
                let ports = Ports {
                    api: next(),
                    etcd: next(),
                    etcd_peer: next(),
                };
                let extra = match (&config.workloads, &bins) {
                    (Some(_), Some(bins)) => Some((
                        bins.clone(),
                        WorkloadPorts {
                            controller_manager: next(),
                            scheduler: next(),
                        },
                    )),
                    _ => None,
                };
                Site::prepare(config, binary.clone(), ports, extra)
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Spawn everything first so the control planes boot in parallel, then collect them.
        let launches = sites.iter().map(Site::spawn).collect::<Vec<_>>();
        let mut first_error = None;
        for (site, launch) in sites.iter().zip(launches) {
            let result = launch.and_then(|launch| site.await_ready(launch));
            let result = match result {
                Err(err) if err.is_port_clash() => retry_with_new_ports(site, err),
                other => other,
            };
            if let Err(err) = result {
                first_error.get_or_insert(err);
            }
        }
        if first_error.is_none() {
            let results: Vec<Result<(), SiteError>> = thread::scope(|scope| {
                let handles: Vec<_> = sites
                    .iter()
                    .map(|site| scope.spawn(move || site.start_workloads_blocking()))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Err(SiteError::Join("starting workloads panicked".into()))
                        })
                    })
                    .collect()
            });
            first_error = results.into_iter().find_map(Result::err);
        }
        let set = Self {
            sites,
            started_in: began.elapsed(),
        };
        match first_error {
            // Dropping `set` stops the sites that did start.
            Some(err) => Err(err),
            None => {
                tracing::info!(sites = set.sites.len(), took = ?set.started_in, "all control planes ready");
                Ok(set)
            }
        }
    }

    /// The sites, in configuration order.
    pub fn iter(&self) -> std::slice::Iter<'_, Site> {
        self.sites.iter()
    }

    /// The sites as a slice.
    pub fn as_slice(&self) -> &[Site] {
        &self.sites
    }

    /// The site with this name.
    pub fn get(&self, name: &str) -> Option<&Site> {
        self.sites.iter().find(|s| s.name() == name)
    }

    /// Wall-clock time from the first spawn until every site was ready.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// Writes one kubeconfig holding every site as a context (current context: the first site).
    pub fn write_merged_kubeconfig(&self, path: &Path) -> Result<(), KubeconfigError> {
        let paths: Vec<&Path> = self.sites.iter().map(Site::kubeconfig_path).collect();
        kubeconfig::write_merged(&paths, path)
    }

    /// Installs on every site the CassKop CRD variant its configuration names (sites without
    /// one are left alone), concurrently.
    pub async fn install_casskop_crds(&self) -> Result<(), CrdError> {
        let installs = self.sites.iter().filter_map(|site| {
            site.casskop_crd().map(|crd| async move {
                let client = site.client().await.map_err(|source| CrdError::Client {
                    site: site.name().to_string(),
                    source: Box::new(source),
                })?;
                crds::install_crds(&client, &[crd.path()]).await?;
                tracing::info!(site = site.name(), ?crd, "CassKop CRD installed");
                Ok::<(), CrdError>(())
            })
        });
        futures::future::try_join_all(installs).await?;
        Ok(())
    }

    /// Stops every site in parallel (blocking); they can be started again one by one.
    pub fn stop_all_blocking(&self) {
        thread::scope(|scope| {
            for site in &self.sites {
                scope.spawn(move || {
                    if let Err(err) = site.stop_blocking() {
                        tracing::warn!(site = site.name(), %err, "could not stop control plane");
                    }
                });
            }
        });
    }

    /// Stops every site in parallel and removes temporary state directories now.
    pub fn shutdown_blocking(&self, grace: Duration) {
        thread::scope(|scope| {
            for site in &self.sites {
                scope.spawn(move || site.shutdown_blocking(grace));
            }
        });
    }
}

impl Drop for Sites {
    fn drop(&mut self) {
        self.stop_all_blocking();
    }
}

impl<'a> IntoIterator for &'a Sites {
    type Item = &'a Site;
    type IntoIter = std::slice::Iter<'a, Site>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

fn retry_with_new_ports(site: &Site, mut err: SiteError) -> Result<(), SiteError> {
    for attempt in 2..=PORT_CLASH_ATTEMPTS {
        tracing::warn!(site = site.name(), attempt, %err, "port taken meanwhile; retrying with other ports");
        let ports = ports::pick(1).map_err(SiteError::Ports)?;
        let Some(ports) = ports.first() else { break };
        site.reset_ports(*ports);
        match site.spawn().and_then(|launch| site.await_ready(launch)) {
            Ok(()) => return Ok(()),
            Err(e) if e.is_port_clash() => err = e,
            Err(e) => return Err(e),
        }
    }
    Err(err)
}

/// Removes temporary state directories left by test processes that were killed (their control
/// planes died with them, through the parent-death signal). Runs once per process.
fn remove_stale_temp_dirs() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(owner) = name
                .to_str()
                .and_then(|n| n.strip_prefix(TEMP_PREFIX))
                .and_then(|rest| rest.split('-').next())
                .and_then(|pid| pid.parse::<u32>().ok())
            else {
                continue;
            };
            if owner != std::process::id() && !Path::new(&format!("/proc/{owner}")).exists() {
                tracing::info!(dir = %entry.path().display(), "removing state left by a killed test process");
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    });
}
