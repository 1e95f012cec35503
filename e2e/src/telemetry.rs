//! Tracing set-up shared by the tests and the binaries of this crate.

use tracing_subscriber::EnvFilter;

/// Default filter when `RUST_LOG` is not set: our own crate at info, kube's chatter at warn.
const DEFAULT_FILTER: &str = "info,kube=warn,hyper=warn,tower=warn,rustls=warn";

/// Installs a plain-text subscriber on stderr; calling it again is harmless.
pub fn init() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    // A second call (or a subscriber installed by someone else) is not an error worth reporting.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Installs a subscriber whose output the test harness captures per test; idempotent.
pub fn init_for_tests() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}
