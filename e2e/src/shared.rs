//! One set of sites per test binary, started by whichever test needs it first and shared by all
//! the others (which stay independent by working in their own namespaces).
//!
//! The set lives in a `static`, whose destructor never runs, so an `atexit` hook stops the
//! control planes and removes their temporary directories when the test binary exits (also
//! after failed tests); a killed test binary takes them down through the parent-death signal.
//!
//! Clients are bound to the tokio runtime that created them, and every `#[tokio::test]` has its
//! own runtime: tests build their own clients with [`crate::Site::client`], never share one.

use std::sync::OnceLock;
use std::time::Duration;

use crate::controlplane::{SiteConfig, Sites};
use crate::crds::CasskopCrd;

/// Grace period for each control plane when the test binary exits.
const EXIT_GRACE: Duration = Duration::from_secs(10);

static SHARED: OnceLock<Result<Sites, String>> = OnceLock::new();

/// The shared sites could not be started.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the shared test sites could not be started: {0}")]
pub struct SharedError(pub String);

/// The default layout: three sites, `site-a` with the Orange CRD (no status subresource),
/// `site-b` with the cscetbon CRD (status subresource), `site-c` with the Orange CRD.
pub fn casskop_layout() -> Vec<SiteConfig> {
    vec![
        SiteConfig::new("site-a").casskop_crd(CasskopCrd::Orange),
        SiteConfig::new("site-b").casskop_crd(CasskopCrd::Cscetbon),
        SiteConfig::new("site-c").casskop_crd(CasskopCrd::Orange),
    ]
}

/// Returns the shared sites, starting them (and installing their CassKop CRDs) on first call.
///
/// The first caller's `layout` wins; a failed start is remembered and reported to every caller
/// instead of being retried by each test.
pub async fn sites(layout: fn() -> Vec<SiteConfig>) -> Result<&'static Sites, SharedError> {
    tokio::task::spawn_blocking(move || {
        SHARED
            .get_or_init(|| start(layout))
            .as_ref()
            .map_err(|e| SharedError(e.clone()))
    })
    .await
    .map_err(|e| SharedError(format!("start-up task failed: {e}")))?
}

fn start(layout: fn() -> Vec<SiteConfig>) -> Result<Sites, String> {
    let sites = Sites::start_blocking(layout()).map_err(|e| error_chain(&e))?;
    // SAFETY: registering a plain `extern "C" fn` without captured state.
    if unsafe { libc::atexit(stop_shared_at_exit) } != 0 {
        tracing::warn!(
            "could not register the exit hook; control planes die with the process (parent-death signal) but leave their temp dirs"
        );
    }
    // Clients need a runtime; the caller's is busy blocking on us, so use a private one in a
    // thread of its own (a runtime cannot be started from inside another's threads).
    let installed = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("could not start a runtime to install CRDs: {e}"))?;
                runtime
                    .block_on(sites.install_casskop_crds())
                    .map_err(|e| error_chain(&e))
            })
            .join()
            .map_err(|_| "CRD installation panicked".to_string())?
    });
    installed?;
    tracing::info!(took = ?sites.started_in(), "shared sites ready");
    Ok(sites)
}

extern "C" fn stop_shared_at_exit() {
    if let Some(Ok(sites)) = SHARED.get() {
        sites.shutdown_blocking(EXIT_GRACE);
    }
}

/// An error and all its sources on one line.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}
