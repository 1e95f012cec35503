//! Finds the `kube-controlplane` binary: `$KUBE_CONTROLPLANE_BIN`, else the cached build that
//! `e2e/controlplane/build.sh` prints (building it first if needed, which takes 10-20 minutes cold).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// Environment variable naming a ready-built `kube-controlplane` binary.
pub const BIN_ENV: &str = "KUBE_CONTROLPLANE_BIN";

/// Why the binary could not be found or built.
#[derive(Debug, thiserror::Error)]
pub enum BinaryError {
    /// `$KUBE_CONTROLPLANE_BIN` names something that is not a file.
    #[error(
        "{BIN_ENV}={path} is not a file; unset it to build the binary with {script}, or point it at a built kube-controlplane"
    )]
    EnvNotAFile {
        /// The value of the variable.
        path: PathBuf,
        /// The build script that would be used instead.
        script: PathBuf,
    },
    /// The build script could not be run at all.
    #[error("could not run `bash {script}` to build kube-controlplane (is bash installed?)")]
    RunScript {
        /// The build script.
        script: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// The build script failed.
    #[error(
        "`bash {script}` failed with {status}; its output above says why (Go toolchain missing? no access to the Go proxy?)"
    )]
    BuildFailed {
        /// The build script.
        script: PathBuf,
        /// Its exit status.
        status: std::process::ExitStatus,
    },
    /// The build script printed a path that is not a file.
    #[error(
        "`bash {script}` printed {printed:?}, which is not a kube-controlplane binary; run the script by hand to see what it does"
    )]
    BadOutput {
        /// The build script.
        script: PathBuf,
        /// What it printed on stdout.
        printed: String,
    },
}

/// The build script inside this crate.
pub fn build_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("controlplane")
        .join("build.sh")
}

/// Returns the path of the `kube-controlplane` binary, building it if needed.
///
/// Blocking; the answer is cached for the life of the process, and concurrent callers wait for
/// one build instead of starting several.
pub fn locate() -> Result<PathBuf, BinaryError> {
    static FOUND: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut found = FOUND
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(path) = found.as_ref() {
        return Ok(path.clone());
    }
    let path = locate_uncached()?;
    *found = Some(path.clone());
    Ok(path)
}

fn locate_uncached() -> Result<PathBuf, BinaryError> {
    let script = build_script();
    if let Some(path) = std::env::var_os(BIN_ENV).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(BinaryError::EnvNotAFile { path, script })
        };
    }
    tracing::info!(script = %script.display(), "locating kube-controlplane (a cold build takes 10-20 min)");
    let output = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|source| BinaryError::RunScript {
            script: script.clone(),
            source,
        })?;
    if !output.status.success() {
        return Err(BinaryError::BuildFailed {
            script,
            status: output.status,
        });
    }
    let printed = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let path = PathBuf::from(printed.lines().last().unwrap_or_default());
    if path.is_file() {
        Ok(path)
    } else {
        Err(BinaryError::BadOutput { script, printed })
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
