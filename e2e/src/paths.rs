//! Where the checkout and the shared inputs beside it are, found at run time: a cached build can
//! have been compiled in another checkout, so a path baked in at compile time may be stale.

use std::path::{Path, PathBuf};

/// The repository checkout: the nearest directory holding `e2e/controlplane/build.sh`, searched
/// from the package directory cargo names at run time, then the working directory, then the
/// directory this crate was compiled in.
pub fn checkout() -> PathBuf {
    let starts = [
        std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from),
        std::env::current_dir().ok(),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR"))),
    ];
    starts
        .into_iter()
        .flatten()
        .find_map(|start| find_checkout(&start))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
}

/// The nearest ancestor of `start` (itself included) that holds `e2e/controlplane/build.sh`.
fn find_checkout(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|dir| dir.join("e2e/controlplane/build.sh").is_file())
        .map(Path::to_path_buf)
}

/// `shared/<name>` beside the checkout (the workplace's CassKop CRDs and traces).
pub fn beside_checkout(name: &str) -> PathBuf {
    checkout().join("../shared").join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checkout_is_found_from_inside_it() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let found = find_checkout(&root.join("e2e/src")).expect("found");
        assert_eq!(
            found.canonicalize().expect("found exists"),
            root.canonicalize().expect("root exists")
        );
        assert_eq!(find_checkout(Path::new("/")), None);
    }
}
