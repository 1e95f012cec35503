//! Finds the test binaries: `kube-controlplane` (`$KUBE_CONTROLPLANE_BIN`), and for sites with
//! workloads `kube-sitectl` (`$KUBE_SITECTL_BIN`) and `kwok` (`$KWOK_BIN`, its stage files in
//! `stages/` beside it); else the cached build that `e2e/controlplane/build.sh <tool>` prints
//! (building it first if needed, which takes minutes cold).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// Environment variable naming a ready-built `kube-controlplane` binary.
pub const BIN_ENV: &str = "KUBE_CONTROLPLANE_BIN";

/// Environment variable naming a ready-built `kube-sitectl` binary (controller-manager, scheduler).
pub const SITECTL_BIN_ENV: &str = "KUBE_SITECTL_BIN";

/// Environment variable naming a ready-built `kwok` binary, with its stage files in `stages/`
/// beside it (as `build.sh kwok` lays them out).
pub const KWOK_BIN_ENV: &str = "KWOK_BIN";

/// A binary built by `e2e/controlplane/build.sh`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tool {
    /// Embedded etcd + kube-apiserver.
    ControlPlane,
    /// kube-controller-manager and kube-scheduler (same Kubernetes version as the API server).
    Sitectl,
    /// kwok: fake nodes, pods moved to Running/Ready without a kubelet.
    Kwok,
}

impl Tool {
    /// The binary's name, also the argument of `build.sh`.
    pub fn name(self) -> &'static str {
        match self {
            Tool::ControlPlane => "kube-controlplane",
            Tool::Sitectl => "kube-sitectl",
            Tool::Kwok => "kwok",
        }
    }

    /// The environment variable that may name a ready-built binary.
    pub fn env(self) -> &'static str {
        match self {
            Tool::ControlPlane => BIN_ENV,
            Tool::Sitectl => SITECTL_BIN_ENV,
            Tool::Kwok => KWOK_BIN_ENV,
        }
    }
}

impl std::fmt::Display for Tool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why the binary could not be found or built.
#[derive(Debug, thiserror::Error)]
pub enum BinaryError {
    /// The environment variable names something that is not a file.
    #[error(
        "{}={path} is not a file; unset it to build the binary with `bash {script} {tool}`, or point it at a built {tool}", tool.env()
    )]
    EnvNotAFile {
        /// The binary.
        tool: Tool,
        /// The value of the variable.
        path: PathBuf,
        /// The build script that would be used instead.
        script: PathBuf,
    },
    /// The build script could not be run at all.
    #[error("could not run `bash {script} {tool}` to build {tool} (is bash installed?)")]
    RunScript {
        /// The binary.
        tool: Tool,
        /// The build script.
        script: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// The build script failed.
    #[error(
        "`bash {script} {tool}` failed with {status}; its output above says why (Go toolchain missing? no access to the Go proxy?)"
    )]
    BuildFailed {
        /// The binary.
        tool: Tool,
        /// The build script.
        script: PathBuf,
        /// Its exit status.
        status: std::process::ExitStatus,
    },
    /// The build script printed a path that is not a file.
    #[error(
        "`bash {script} {tool}` printed {printed:?}, which is not a {tool} binary; run the script by hand to see what it does"
    )]
    BadOutput {
        /// The binary.
        tool: Tool,
        /// The build script.
        script: PathBuf,
        /// What it printed on stdout.
        printed: String,
    },
}

/// The build script inside this crate.
pub fn build_script() -> PathBuf {
    crate::paths::checkout().join("e2e/controlplane/build.sh")
}

/// Returns the path of the `kube-controlplane` binary, building it if needed.
///
/// Blocking; the answer is cached for the life of the process, and concurrent callers wait for
/// one build instead of starting several.
pub fn locate() -> Result<PathBuf, BinaryError> {
    locate_tool(Tool::ControlPlane)
}

/// Returns the path of `tool`, building it if needed (blocking, cached like [`locate`]).
pub fn locate_tool(tool: Tool) -> Result<PathBuf, BinaryError> {
    static FOUND: Mutex<Vec<(Tool, PathBuf)>> = Mutex::new(Vec::new());
    let mut found = FOUND
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, path)) = found.iter().find(|(t, _)| *t == tool) {
        return Ok(path.clone());
    }
    let path = locate_uncached(tool)?;
    found.push((tool, path.clone()));
    Ok(path)
}

/// The directory of kwok's stage files, beside the kwok binary.
pub fn kwok_stages(kwok: &Path) -> PathBuf {
    kwok.parent().unwrap_or(Path::new(".")).join("stages")
}

fn locate_uncached(tool: Tool) -> Result<PathBuf, BinaryError> {
    let script = build_script();
    if let Some(path) = std::env::var_os(tool.env()).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(BinaryError::EnvNotAFile { tool, path, script })
        };
    }
    tracing::info!(script = %script.display(), %tool, "locating {tool} (a cold build takes minutes)");
    let output = Command::new("bash")
        .arg(&script)
        .arg(tool.name())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|source| BinaryError::RunScript {
            tool,
            script: script.clone(),
            source,
        })?;
    if !output.status.success() {
        return Err(BinaryError::BuildFailed {
            tool,
            script,
            status: output.status,
        });
    }
    let printed = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let path = PathBuf::from(printed.lines().last().unwrap_or_default());
    if path.is_file() {
        Ok(path)
    } else {
        Err(BinaryError::BadOutput {
            tool,
            script,
            printed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_script_is_in_this_crate() {
        assert!(build_script().is_file(), "{}", build_script().display());
    }
}
