//! Parses the one `READY {json}` line `kube-controlplane` prints on stdout once it serves requests.

use std::path::PathBuf;

use serde::Deserialize;

/// What a ready control plane reports about itself.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ReadyLine {
    /// Cluster, user and context name in its kubeconfig.
    pub name: String,
    /// The kubeconfig it wrote (inside its state directory).
    pub kubeconfig: PathBuf,
    /// `https://127.0.0.1:PORT`.
    pub server: String,
    /// The admin bearer token.
    pub token: String,
    /// `http://127.0.0.1:PORT` of the embedded etcd.
    pub etcd: String,
    /// Its process id.
    pub pid: u32,
}

/// Returns the parsed line if `line` is a READY line; other lines (or a malformed READY) give
/// `None` or an error respectively.
pub fn parse(line: &str) -> Option<Result<ReadyLine, serde_json::Error>> {
    line.trim_end()
        .strip_prefix("READY ")
        .map(serde_json::from_str::<ReadyLine>)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_ready_line() {
        let line = r#"READY {"name":"site-a","kubeconfig":"/tmp/x/kubeconfig","server":"https://127.0.0.1:4443","token":"abc","etcd":"http://127.0.0.1:2379","pid":42}"#;
        let ready = parse(line).unwrap().unwrap();
        assert_eq!(ready.name, "site-a");
        assert_eq!(ready.pid, 42);
        assert_eq!(ready.server, "https://127.0.0.1:4443");
    }

    #[test]
    fn ignores_other_lines_and_reports_bad_json() {
        assert!(parse("starting").is_none());
        assert!(parse("READY {nope").unwrap().is_err());
    }
}
