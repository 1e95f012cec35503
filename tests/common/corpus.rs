//! Loads the hostile corpus `tests/hostile/*.yaml` (see tests/hostile_corpus.rs for the format).

/// One corpus file.
pub struct Hostile {
    pub file: String,
    pub apiserver: String,
    pub controller: String,
    pub body: String,
}

pub fn corpus() -> Vec<Hostile> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/hostile exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("readable");
            let header = |key: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(&format!("# {key}: ")))
                    .unwrap_or_else(|| panic!("{}: no `# {key}:` line", path.display()))
                    .to_string()
            };
            Hostile {
                file: path.file_name().expect("name").to_string_lossy().into(),
                apiserver: header("apiserver"),
                controller: header("controller"),
                body: text
                    .lines()
                    .filter(|l| !l.starts_with('#'))
                    .collect::<Vec<_>>()
                    .join("\n"),
            }
        })
        .collect()
}

pub const KNOWN_SITES: [&str; 3] = ["site-a", "site-b", "site-c"];
