//! One site: a `kube-controlplane` process, its state directory, ports and kubeconfig; can be
//! stopped, started again on the same state (an outage and its recovery), paused and resumed.
//! With [`SiteConfig::with_workloads`], kube-controller-manager, kube-scheduler and kwok run
//! beside it (see [`super::workloads`]) and follow it through all of that.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::error::{SiteError, log_tail};
use super::ports::Ports;
use super::process::{self, STOP_GRACE};
use super::ready::{self, ReadyLine};
use super::workloads::{self, Binaries, Component, WorkloadPorts, Workloads};
use crate::crds::CasskopCrd;

/// How long a control plane may take to print READY (it gives up itself after 3 minutes).
pub const READY_TIMEOUT: Duration = Duration::from_secs(240);

/// Prefix of the temporary state directories, followed by the owning process id.
pub(crate) const TEMP_PREFIX: &str = "mc-e2e-";

/// How one site is to be started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteConfig {
    /// Site name: kubeconfig cluster, user and context name.
    pub name: String,
    /// State directory (certificates, etcd data, log); a temporary directory, removed when the
    /// site is dropped, if `None`.
    pub state_dir: Option<PathBuf>,
    /// Where the site's kubeconfig goes; `<state dir>/kubeconfig` if `None`.
    pub kubeconfig: Option<PathBuf>,
    /// The CassKop CRD variant this site is meant to carry (see [`crate::Sites::install_casskop_crds`]).
    pub casskop_crd: Option<CasskopCrd>,
    /// Controllers, scheduler and fake nodes beside the API server; none if `None` (the default:
    /// a bare API server starts faster and costs less).
    pub workloads: Option<Workloads>,
}

impl SiteConfig {
    /// A site with a temporary state directory and no CassKop CRD.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            state_dir: None,
            kubeconfig: None,
            casskop_crd: None,
            workloads: None,
        }
    }

    /// Keeps the state in `dir` (created if missing, never removed).
    #[must_use]
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// Writes the kubeconfig to `path` (parent directories are created).
    #[must_use]
    pub fn kubeconfig(mut self, path: impl Into<PathBuf>) -> Self {
        self.kubeconfig = Some(path.into());
        self
    }

    /// Marks the CassKop CRD variant this site should carry.
    #[must_use]
    pub fn casskop_crd(mut self, crd: CasskopCrd) -> Self {
        self.casskop_crd = Some(crd);
        self
    }

    /// Runs workloads at this site: kube-controller-manager, kube-scheduler and kwok with
    /// `nodes` fake nodes, each in its own zone (`topology.kubernetes.io/zone=zone-<i>`).
    #[must_use]
    pub fn with_workloads(self, nodes: usize) -> Self {
        self.workloads(Workloads::new(nodes))
    }

    /// Runs workloads at this site as `workloads` says (zones, controllers).
    #[must_use]
    pub fn workloads(mut self, workloads: Workloads) -> Self {
        self.workloads = Some(workloads);
        self
    }
}

/// A handle on a site's control plane. Cloning shares the process; when the last handle is
/// dropped the process is stopped (SIGTERM, SIGKILL after 30 s) and a temporary state
/// directory is removed.
#[derive(Debug, Clone)]
pub struct Site {
    inner: Arc<SiteInner>,
}

#[derive(Debug)]
struct SiteInner {
    name: String,
    binary: PathBuf,
    state_dir: PathBuf,
    kubeconfig: PathBuf,
    casskop_crd: Option<CasskopCrd>,
    workloads: Option<(Workloads, Binaries)>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    ports: Ports,
    child: Option<Child>,
    ready: Option<ReadyLine>,
    last_start: Option<Duration>,
    paused: bool,
    temp: Option<TempDir>,
    workload_ports: Option<WorkloadPorts>,
    /// The processes beside the API server, while they run.
    components: Vec<(Component, Child)>,
    last_workloads_start: Option<Duration>,
}

/// A process that was spawned and has not printed READY yet.
pub(crate) struct Launch {
    child: Child,
    events: mpsc::Receiver<StdoutEvent>,
    started: Instant,
    log_offset: u64,
}

enum StdoutEvent {
    Ready(ReadyLine),
    BadReady(String),
    Closed,
}

impl Site {
    /// Prepares a site (directories; nothing runs yet).
    pub(crate) fn prepare(
        config: SiteConfig,
        binary: PathBuf,
        ports: Ports,
        extra: Option<(Binaries, WorkloadPorts)>,
    ) -> Result<Self, SiteError> {
        let name = config.name;
        if name.is_empty()
            || name.len() > 40
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(SiteError::BadName(name));
        }
        let (state_dir, temp) = match config.state_dir {
            Some(dir) => {
                std::fs::create_dir_all(&dir).map_err(|source| SiteError::Dir {
                    site: name.clone(),
                    path: dir.clone(),
                    source,
                })?;
                (dir, None)
            }
            None => {
                let prefix = format!("{TEMP_PREFIX}{}-{name}-", std::process::id());
                let temp =
                    tempfile::Builder::new()
                        .prefix(&prefix)
                        .tempdir()
                        .map_err(|source| SiteError::Dir {
                            site: name.clone(),
                            path: std::env::temp_dir().join(&prefix),
                            source,
                        })?;
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        let kubeconfig = config
            .kubeconfig
            .unwrap_or_else(|| state_dir.join("kubeconfig"));
        Ok(Self {
            inner: Arc::new(SiteInner {
                name,
                binary,
                state_dir,
                kubeconfig,
                casskop_crd: config.casskop_crd,
                workloads: config
                    .workloads
                    .zip(extra.as_ref().map(|(bins, _)| bins.clone())),
                state: Mutex::new(State {
                    ports,
                    child: None,
                    ready: None,
                    last_start: None,
                    paused: false,
                    temp,
                    workload_ports: extra.map(|(_, ports)| ports),
                    components: Vec::new(),
                    last_workloads_start: None,
                }),
            }),
        })
    }

    /// The site's name (also its kubeconfig context).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The site's kubeconfig (context named after the site).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.inner.kubeconfig
    }

    /// The state directory (certificates, etcd data, `controlplane.log`).
    pub fn state_dir(&self) -> &Path {
        &self.inner.state_dir
    }

    /// The control plane's log (kube-apiserver and etcd output).
    pub fn log_path(&self) -> PathBuf {
        self.inner.state_dir.join("controlplane.log")
    }

    /// The CassKop CRD variant this site was configured with.
    pub fn casskop_crd(&self) -> Option<CasskopCrd> {
        self.inner.casskop_crd
    }

    /// The site's ports (fixed after the first successful start).
    pub fn ports(&self) -> Ports {
        self.lock().ports
    }

    /// `https://127.0.0.1:PORT` of the API server.
    pub fn server(&self) -> String {
        format!("https://127.0.0.1:{}", self.ports().api)
    }

    /// The process id while the control plane runs.
    pub fn pid(&self) -> Option<u32> {
        let mut state = self.lock();
        let running = state
            .child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)));
        running
            .then(|| state.child.as_ref().map(Child::id))
            .flatten()
    }

    /// Whether the control plane process runs (paused counts as running).
    pub fn is_running(&self) -> bool {
        self.pid().is_some()
    }

    /// How long the last start took, from spawning the process to its READY line.
    pub fn last_start_duration(&self) -> Option<Duration> {
        self.lock().last_start
    }

    /// Resident memory of the running control plane in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> Option<u64> {
        self.pid().and_then(process::rss_kib)
    }

    /// What runs beside the API server, if the site has workloads.
    pub fn workloads(&self) -> Option<&Workloads> {
        self.inner.workloads.as_ref().map(|(w, _)| w)
    }

    /// Health ports of kube-controller-manager and kube-scheduler, if the site has workloads.
    pub fn workload_ports(&self) -> Option<WorkloadPorts> {
        self.lock().workload_ports
    }

    /// Process ids of the components running beside the API server.
    pub fn component_pids(&self) -> Vec<(Component, u32)> {
        let mut state = self.lock();
        state
            .components
            .iter_mut()
            .filter_map(|(component, child)| {
                matches!(child.try_wait(), Ok(None)).then(|| (*component, child.id()))
            })
            .collect()
    }

    /// Resident memory of each component beside the API server, in KiB.
    pub fn component_rss_kib(&self) -> Vec<(Component, u64)> {
        self.component_pids()
            .into_iter()
            .filter_map(|(component, pid)| process::rss_kib(pid).map(|rss| (component, rss)))
            .collect()
    }

    /// Resident memory of everything the site runs (API server and components), in KiB.
    pub fn total_rss_kib(&self) -> Option<u64> {
        let components: u64 = self.component_rss_kib().iter().map(|(_, rss)| rss).sum();
        self.rss_kib().map(|rss| rss + components)
    }

    /// How long the components took to be ready after the API server was (the fake nodes
    /// Ready and schedulable, both health endpoints answering), at the last start.
    pub fn last_workloads_start_duration(&self) -> Option<Duration> {
        self.lock().last_workloads_start
    }

    /// A component's log in the state directory.
    pub fn component_log_path(&self, component: Component) -> PathBuf {
        component.log_path(&self.inner.state_dir)
    }

    /// A client for this site, built from its kubeconfig and context.
    pub async fn client(&self) -> Result<kube::Client, crate::kubeconfig::KubeconfigError> {
        crate::kubeconfig::client_for(self.kubeconfig_path(), self.name()).await
    }

    /// Starts the control plane again on the same state directory and ports (after [`Site::stop`]),
    /// so existing kubeconfigs and clients keep working.
    pub async fn start(&self) -> Result<(), SiteError> {
        let site = self.clone();
        blocking(move || site.start_blocking()).await
    }

    /// Blocking form of [`Site::start`].
    pub fn start_blocking(&self) -> Result<(), SiteError> {
        if self.is_running() {
            return Err(SiteError::AlreadyRunning(self.inner.name.clone()));
        }
        let launch = self.spawn()?;
        self.await_ready(launch)?;
        self.start_workloads_blocking()
    }

    /// Stops the control plane (SIGTERM, SIGKILL after 30 s) and waits until it exited; the
    /// state directory stays, so [`Site::start`] brings the same cluster back.
    pub async fn stop(&self) -> Result<Option<ExitStatus>, SiteError> {
        let site = self.clone();
        blocking(move || site.stop_blocking()).await
    }

    /// Blocking form of [`Site::stop`]; `None` if it was not running. The components beside
    /// the API server stop first.
    pub fn stop_blocking(&self) -> Result<Option<ExitStatus>, SiteError> {
        let (child, components) = {
            let mut state = self.lock();
            state.paused = false;
            state.ready = None;
            (state.child.take(), std::mem::take(&mut state.components))
        };
        stop_components(&self.inner.name, components, STOP_GRACE);
        let Some(mut child) = child else {
            return Ok(None);
        };
        let pid = child.id();
        let status =
            process::terminate(&mut child, STOP_GRACE).map_err(|source| SiteError::Process {
                site: self.inner.name.clone(),
                action: "stop",
                source,
            })?;
        tracing::info!(site = %self.inner.name, pid, %status, "control plane stopped");
        Ok(Some(status))
    }

    /// Freezes the control plane (SIGSTOP): connections hang instead of being refused. The
    /// components beside it freeze too.
    pub fn pause(&self) -> Result<(), SiteError> {
        self.signal(libc::SIGSTOP, "pause")?;
        self.lock().paused = true;
        Ok(())
    }

    /// Unfreezes a paused control plane and its components (SIGCONT).
    pub fn resume(&self) -> Result<(), SiteError> {
        self.signal(libc::SIGCONT, "resume")?;
        self.lock().paused = false;
        Ok(())
    }

    /// Whether the site is paused.
    pub fn is_paused(&self) -> bool {
        self.lock().paused
    }

    /// Stops the control plane and removes a temporary state directory now; the site cannot be
    /// started again afterwards. Used at process exit, where destructors of statics do not run.
    pub fn shutdown_blocking(&self, grace: Duration) {
        let (child, components, temp) = {
            let mut state = self.lock();
            (
                state.child.take(),
                std::mem::take(&mut state.components),
                state.temp.take(),
            )
        };
        stop_components(&self.inner.name, components, grace);
        if let Some(mut child) = child
            && let Err(err) = process::terminate(&mut child, grace)
        {
            tracing::warn!(site = %self.inner.name, %err, "could not stop control plane");
        }
        drop(temp);
    }

    fn signal(&self, signal: libc::c_int, action: &'static str) -> Result<(), SiteError> {
        let pid = self
            .pid()
            .ok_or_else(|| SiteError::NotRunning(self.inner.name.clone()))?;
        // Components first on SIGSTOP (nothing sees the API server vanish), last on SIGCONT.
        let components: Vec<u32> = self.component_pids().into_iter().map(|(_, p)| p).collect();
        let mut order: Vec<u32> = components.clone();
        if signal == libc::SIGCONT {
            order.insert(0, pid);
        } else {
            order.push(pid);
        }
        for pid in order {
            process::signal_group(pid, signal).map_err(|source| SiteError::Process {
                site: self.inner.name.clone(),
                action,
                source,
            })?;
        }
        Ok(())
    }

    /// Spawns the process; does not wait for it to be ready.
    pub(crate) fn spawn(&self) -> Result<Launch, SiteError> {
        let inner = &self.inner;
        let ports = self.ports();
        let log_path = self.log_path();
        let dir_error = |source| SiteError::Dir {
            site: inner.name.clone(),
            path: log_path.clone(),
            source,
        };
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(dir_error)?;
        let log_offset = log.metadata().map(|m| m.len()).unwrap_or(0);
        let stderr = log.try_clone().map_err(dir_error)?;
        let mut cmd = Command::new(&inner.binary);
        cmd.arg("--dir")
            .arg(&inner.state_dir)
            .arg("--name")
            .arg(&inner.name)
            .arg("--port")
            .arg(ports.api.to_string())
            .arg("--etcd-port")
            .arg(ports.etcd.to_string())
            .arg("--etcd-peer-port")
            .arg(ports.etcd_peer.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let started = Instant::now();
        let mut child = process::spawn_guarded(cmd).map_err(|source| SiteError::Spawn {
            site: inner.name.clone(),
            binary: inner.binary.clone(),
            source,
        })?;
        let (tx, events) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            let name = inner.name.clone();
            // Reads the READY line, then keeps draining stdout so the child never gets EPIPE.
            let reader = thread::Builder::new()
                .name(format!("cp-stdout-{name}"))
                .spawn(move || {
                    for line in BufReader::new(stdout).lines() {
                        let Ok(line) = line else { break };
                        match ready::parse(&line) {
                            Some(Ok(ready)) => {
                                let _ = tx.send(StdoutEvent::Ready(ready));
                            }
                            Some(Err(_)) => {
                                let _ = tx.send(StdoutEvent::BadReady(line));
                            }
                            None => tracing::debug!(site = %name, %line, "control plane stdout"),
                        }
                    }
                    let _ = tx.send(StdoutEvent::Closed);
                });
            if let Err(err) = reader {
                tracing::warn!(%err, "could not start stdout reader thread; waiting will time out");
            }
        }
        tracing::info!(site = %inner.name, pid = child.id(), api_port = ports.api, "control plane starting");
        Ok(Launch {
            child,
            events,
            started,
            log_offset,
        })
    }

    /// Waits for the READY line of a spawned process and records the running process.
    pub(crate) fn await_ready(&self, launch: Launch) -> Result<(), SiteError> {
        let Launch {
            mut child,
            events,
            started,
            log_offset,
        } = launch;
        let inner = &self.inner;
        let log = self.log_path();
        let exited = |child: &mut Child| {
            let status = process::terminate(child, Duration::from_secs(10))
                .map_or_else(|e| format!("unknown status ({e})"), |s| s.to_string());
            SiteError::Exited {
                site: inner.name.clone(),
                status,
                log: log.clone(),
                tail: log_tail(&log, log_offset, 25),
            }
        };
        let ready = loop {
            match events.recv_timeout(Duration::from_millis(200)) {
                Ok(StdoutEvent::Ready(ready)) => break ready,
                Ok(StdoutEvent::BadReady(line)) => {
                    let _ = process::terminate(&mut child, STOP_GRACE);
                    return Err(SiteError::BadReadyLine {
                        site: inner.name.clone(),
                        line,
                    });
                }
                Ok(StdoutEvent::Closed) | Err(RecvTimeoutError::Disconnected) => {
                    return Err(exited(&mut child));
                }
                Err(RecvTimeoutError::Timeout) => {
                    if matches!(child.try_wait(), Ok(Some(_))) {
                        return Err(exited(&mut child));
                    }
                    if started.elapsed() > READY_TIMEOUT {
                        let _ = process::terminate(&mut child, STOP_GRACE);
                        return Err(SiteError::NotReady {
                            site: inner.name.clone(),
                            timeout: READY_TIMEOUT,
                            log: log.clone(),
                            tail: log_tail(&log, log_offset, 25),
                        });
                    }
                }
            }
        };
        let took = started.elapsed();
        if ready.kubeconfig != inner.kubeconfig {
            let copied = std::fs::read(&ready.kubeconfig)
                .and_then(|bytes| crate::kubeconfig::write_private(&inner.kubeconfig, &bytes));
            if let Err(source) = copied {
                let _ = process::terminate(&mut child, STOP_GRACE);
                return Err(SiteError::Kubeconfig {
                    site: inner.name.clone(),
                    path: inner.kubeconfig.clone(),
                    source,
                });
            }
        }
        tracing::info!(site = %inner.name, pid = ready.pid, server = %ready.server, ?took, "control plane ready");
        let mut state = self.lock();
        state.child = Some(child);
        state.ready = Some(ready);
        state.last_start = Some(took);
        state.paused = false;
        Ok(())
    }

    /// Starts the components beside a ready API server (nothing if the site has no workloads),
    /// creates the fake nodes that are missing, and waits until both health endpoints answer
    /// and every node is Ready without the not-ready taint. On failure the components are
    /// stopped again and the error carries the end of their logs.
    pub(crate) fn start_workloads_blocking(&self) -> Result<(), SiteError> {
        let Some((workloads, bins)) = &self.inner.workloads else {
            return Ok(());
        };
        let inner = &self.inner;
        let (kubeconfig, ports) = {
            let state = self.lock();
            let kubeconfig = state.ready.as_ref().map(|r| r.kubeconfig.clone());
            (kubeconfig, state.workload_ports)
        };
        let (Some(kubeconfig), Some(ports)) = (kubeconfig, ports) else {
            return Err(SiteError::NotRunning(inner.name.clone()));
        };
        // Leftovers of a control plane that died on its own would run twice.
        self.stop_components_now();
        let released = run_private(async {
            let client = crate::kubeconfig::client_for(self.kubeconfig_path(), &inner.name)
                .await
                .map_err(|e| e.to_string())?;
            workloads::release_leases(&client, &inner.name, workloads)
                .await
                .map_err(|e| e.to_string())
        });
        if let Err(err) | Ok(Err(err)) = released {
            // Only slower: kwok takes the nodes over once the old leases expire.
            tracing::warn!(site = %inner.name, %err, "could not delete the old node leases");
        }
        let started = Instant::now();
        let mut offsets = Vec::new();
        for component in Component::ALL {
            let cmd = workloads::command(
                component,
                bins,
                workloads,
                &inner.state_dir,
                &kubeconfig,
                ports,
            );
            let binary = PathBuf::from(cmd.get_program());
            match workloads::spawn(component, cmd, &inner.state_dir) {
                Ok((child, offset)) => {
                    tracing::info!(site = %inner.name, %component, pid = child.id(), "component starting");
                    offsets.push((component, offset));
                    self.lock().components.push((component, child));
                }
                Err(source) => {
                    self.stop_components_now();
                    return Err(SiteError::Spawn {
                        site: inner.name.clone(),
                        binary,
                        source,
                    });
                }
            }
        }
        let outcome = run_private(self.wait_for_workloads(workloads, ports));
        let tails = || {
            offsets
                .iter()
                .map(|(component, offset)| {
                    let log = component.log_path(&inner.state_dir);
                    format!("--- {} ---\n{}", log.display(), log_tail(&log, *offset, 12))
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        let failure = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(Halt::Exited(component, status))) => Some(SiteError::ComponentExited {
                site: inner.name.clone(),
                component: component.name(),
                status,
                logs: tails(),
            }),
            Ok(Err(Halt::Timeout(last))) => Some(SiteError::WorkloadsNotReady {
                site: inner.name.clone(),
                timeout: READY_TIMEOUT,
                last,
                logs: tails(),
            }),
            Err(reason) => Some(SiteError::WorkloadsNotReady {
                site: inner.name.clone(),
                timeout: READY_TIMEOUT,
                last: reason,
                logs: tails(),
            }),
        };
        if let Some(err) = failure {
            self.stop_components_now();
            return Err(err);
        }
        let took = started.elapsed();
        tracing::info!(site = %inner.name, nodes = workloads.nodes, ?took, "workloads ready");
        self.lock().last_workloads_start = Some(took);
        Ok(())
    }

    async fn wait_for_workloads(
        &self,
        workloads: &Workloads,
        ports: WorkloadPorts,
    ) -> Result<(), Halt> {
        let name = &self.inner.name;
        let client = crate::kubeconfig::client_for(self.kubeconfig_path(), name)
            .await
            .map_err(|e| Halt::Timeout(format!("no client for the site: {e}")))?;
        let health = Component::ALL
            .into_iter()
            .filter_map(|c| ports.of(c).map(|port| (c, port)))
            .map(|(c, port)| workloads::health_client(port).map(|client| (c, port, client)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Halt::Timeout)?;
        let probe = || async {
            if let Some(exited) = self.exited_component() {
                return Ok(Err(exited));
            }
            workloads::ensure_nodes(&client, name, workloads)
                .await
                .map_err(|e| format!("creating fake nodes: {e}"))?;
            let mut waiting = Vec::new();
            for (component, port, health) in &health {
                if let Err(e) = workloads::healthz(health, *port).await {
                    waiting.push(format!("{component}: {e}"));
                }
            }
            if let Err(e) = workloads::nodes_ready(&client, name, workloads).await {
                waiting.push(e);
            }
            if waiting.is_empty() {
                Ok(Ok(()))
            } else {
                Err(waiting.join("; "))
            }
        };
        match crate::wait::until("workloads ready", READY_TIMEOUT, probe).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err((component, status))) => Err(Halt::Exited(component, status)),
            Err(e) => Err(Halt::Timeout(e.last)),
        }
    }

    /// A component that exited, with its status.
    fn exited_component(&self) -> Option<(Component, String)> {
        let mut state = self.lock();
        state
            .components
            .iter_mut()
            .find_map(|(component, child)| match child.try_wait() {
                Ok(Some(status)) => Some((*component, status.to_string())),
                _ => None,
            })
    }

    fn stop_components_now(&self) {
        let components = std::mem::take(&mut self.lock().components);
        stop_components(&self.inner.name, components, STOP_GRACE);
    }

    /// Replaces the ports before a retried first start, and forgets a half-initialised etcd.
    pub(crate) fn reset_ports(&self, ports: Ports) {
        let _ = std::fs::remove_dir_all(self.inner.state_dir.join("etcd"));
        self.lock().ports = ports;
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for SiteInner {
    fn drop(&mut self) {
        let state = self
            .state
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        stop_components(
            &self.name,
            std::mem::take(&mut state.components),
            STOP_GRACE,
        );
        if let Some(mut child) = state.child.take() {
            match process::terminate(&mut child, STOP_GRACE) {
                Ok(status) => {
                    tracing::debug!(site = %self.name, %status, "control plane stopped on drop")
                }
                Err(err) => {
                    tracing::warn!(site = %self.name, %err, "could not stop control plane on drop")
                }
            }
        }
        // The temporary state directory (if any) is removed when `state.temp` drops, after the
        // process is gone.
    }
}

/// Why waiting for the components ended early.
enum Halt {
    Exited(Component, String),
    Timeout(String),
}

/// Stops components in parallel (SIGTERM, SIGKILL after `grace`), reaping them.
fn stop_components(site: &str, components: Vec<(Component, Child)>, grace: Duration) {
    if components.is_empty() {
        return;
    }
    thread::scope(|scope| {
        for (component, mut child) in components {
            scope.spawn(move || match process::terminate(&mut child, grace) {
                Ok(status) => tracing::debug!(site, %component, %status, "component stopped"),
                Err(err) => tracing::warn!(site, %component, %err, "could not stop component"),
            });
        }
    });
}

/// Runs `work` to completion on a private runtime in a thread of its own, so that blocking code
/// can use async clients whether or not it is called from inside another runtime.
fn run_private<T: Send>(work: impl std::future::Future<Output = T> + Send) -> Result<T, String> {
    thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map(|runtime| runtime.block_on(work))
                    .map_err(|e| format!("could not start a runtime: {e}"))
            })
            .join()
            .map_err(|_| "the waiting thread panicked".to_string())?
    })
}

/// Runs blocking control-plane work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, SiteError> + Send + 'static,
) -> Result<T, SiteError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| SiteError::Join(e.to_string()))?
}
