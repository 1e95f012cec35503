//! Errors of starting, stopping and signalling control planes.

use std::path::PathBuf;
use std::time::Duration;

use super::binary::BinaryError;

/// Something went wrong with a site's control plane.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    /// The `kube-controlplane` binary is not available.
    #[error(transparent)]
    Binary(#[from] BinaryError),

    /// Two site configurations share a name.
    #[error("two sites are both named {0:?}; give every site its own name")]
    DuplicateName(String),

    /// A site name that cannot be used as kubeconfig context and directory name.
    #[error("site name {0:?} is not usable: use 1-40 characters from [a-z0-9-]")]
    BadName(String),

    /// A directory could not be created or prepared.
    #[error("could not prepare {path} for site {site}")]
    Dir {
        /// The site.
        site: String,
        /// The directory.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },

    /// No free loopback port could be found.
    #[error("could not pick free loopback ports for the control planes")]
    Ports(#[source] std::io::Error),

    /// The process could not be started.
    #[error("could not start {binary} for site {site}")]
    Spawn {
        /// The site.
        site: String,
        /// The binary.
        binary: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },

    /// The process exited before printing its READY line.
    #[error(
        "kube-controlplane for site {site} exited with {status} before it was ready; last lines of {log}:\n{tail}"
    )]
    Exited {
        /// The site.
        site: String,
        /// Its exit status.
        status: String,
        /// Its log file.
        log: PathBuf,
        /// The end of that log.
        tail: String,
    },

    /// The process did not print its READY line in time.
    #[error(
        "kube-controlplane for site {site} was not ready after {timeout:?} (machine overloaded?); \
         it was stopped; last lines of {log}:\n{tail}"
    )]
    NotReady {
        /// The site.
        site: String,
        /// How long we waited.
        timeout: Duration,
        /// Its log file.
        log: PathBuf,
        /// The end of that log.
        tail: String,
    },

    /// The READY line was not the JSON we expect.
    #[error(
        "kube-controlplane for site {site} printed a READY line we cannot read: {line:?}; is the binary from this repository's e2e/controlplane?"
    )]
    BadReadyLine {
        /// The site.
        site: String,
        /// The line.
        line: String,
    },

    /// A component beside the API server (controller-manager, scheduler, kwok) exited while
    /// the site was starting.
    #[error(
        "{component} of site {site} exited with {status} while the site was starting; ends of the logs:\n{logs}"
    )]
    ComponentExited {
        /// The site.
        site: String,
        /// The component.
        component: &'static str,
        /// Its exit status.
        status: String,
        /// The ends of the components' logs.
        logs: String,
    },

    /// The components beside the API server did not become ready in time.
    #[error(
        "the workloads of site {site} were not ready after {timeout:?} (machine overloaded?); \
         they were stopped; last seen: {last}; ends of the logs:\n{logs}"
    )]
    WorkloadsNotReady {
        /// The site.
        site: String,
        /// How long we waited.
        timeout: Duration,
        /// What was missing at the last look.
        last: String,
        /// The ends of the components' logs.
        logs: String,
    },

    /// `start` on a site that runs.
    #[error("site {0} is already running; stop it first")]
    AlreadyRunning(String),

    /// `pause`/`resume` on a site that does not run.
    #[error("site {0} is not running; start it first")]
    NotRunning(String),

    /// Signalling or waiting for the process failed.
    #[error("could not {action} the control plane of site {site}")]
    Process {
        /// The site.
        site: String,
        /// What we tried.
        action: &'static str,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },

    /// The kubeconfig could not be copied where the site's configuration wants it.
    #[error("could not write the kubeconfig of site {site} to {path}")]
    Kubeconfig {
        /// The site.
        site: String,
        /// The destination.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },

    /// A blocking helper task panicked or was cancelled.
    #[error("the blocking task managing the control planes failed: {0}")]
    Join(String),
}

impl SiteError {
    /// Whether a failed first start may succeed with other ports.
    pub(crate) fn is_port_clash(&self) -> bool {
        matches!(self, SiteError::Exited { tail, .. } if tail.contains("address already in use"))
    }
}

/// The last `lines` lines of a log file, starting at byte `from`.
pub(crate) fn log_tail(path: &std::path::Path, from: u64, lines: usize) -> String {
    let Ok(bytes) = std::fs::read(path) else {
        return format!("(could not read {})", path.display());
    };
    let start = usize::try_from(from).unwrap_or(0).min(bytes.len());
    let text = String::from_utf8_lossy(&bytes[start..]);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
