//! Logging set-up: `tracing` with `RUST_LOG`-style filters, plain or JSON lines.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Default filter when `RUST_LOG` is unset.
pub const DEFAULT_FILTER: &str = "info,kube=warn,tower=warn,hyper=warn";

/// kube's client logs the whole response body at `warn` when it cannot decode it (a list of
/// every MultiCasskop, megabytes, possibly other tenants' specs). Its decode errors reach us as
/// errors anyway, so its own lines are kept to `error` unless `RUST_LOG` names `kube_client`.
pub const QUIET_BODIES: &str = "kube_client::client=error";

/// The filter for a `RUST_LOG` value (or the default): [`QUIET_BODIES`] is added unless the
/// value names `kube_client` itself.
pub fn filter_directives(rust_log: Option<&str>) -> String {
    let base = rust_log
        .filter(|v| !v.trim().is_empty())
        .unwrap_or(DEFAULT_FILTER);
    if base.contains("kube_client") {
        base.to_string()
    } else {
        format!("{base},{QUIET_BODIES}")
    }
}

/// Installs the global subscriber (once; later calls do nothing).
pub fn init(format: LogFormat) {
    let directives = filter_directives(std::env::var("RUST_LOG").ok().as_deref());
    let filter =
        EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new(filter_directives(None)));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Plain => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_bodies_stay_out_of_the_logs() {
        assert_eq!(
            filter_directives(None),
            "info,kube=warn,tower=warn,hyper=warn,kube_client::client=error"
        );
        assert_eq!(
            filter_directives(Some("debug")),
            "debug,kube_client::client=error"
        );
        assert_eq!(
            filter_directives(Some("kube_client=debug")),
            "kube_client=debug"
        );
    }
}
