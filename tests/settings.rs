//! Settings precedence as the real binary applies it: the settings file, then real
//! `MULTICASSKOP_*` environment variables of the process, then the flags given. Each case runs
//! `multi-casskop run --print-settings` with a clean environment and reads back what it would
//! run with. No cluster is needed.

use std::path::PathBuf;
use std::process::Command;

use serde_yaml::Value;

const FILE: &str = "namespace: file-ns
httpAddr: 127.0.0.1:9000
logFormat: json
leaderElection:
  leaseDurationSeconds: 20
secrets:
  namespace: file-secrets
  labelSelector: file=label
tenancy:
  allowedNamespaces:
    team-a: [cassandra-a]
sites:
  - name: a
    local: true
  - name: b
    kubeconfig: /k/b
    context: ctx-b
";

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

fn settings_file(name: &str) -> (Dir, PathBuf) {
    let dir = std::env::temp_dir().join(format!("mc-settings-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("settings.yaml");
    std::fs::write(&file, FILE).expect("write");
    (Dir(dir), file)
}

/// What `multi-casskop run --print-settings ARGS` prints under exactly `env`.
fn printed(args: &[&str], env: &[(&str, &str)]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_multi-casskop"))
        .arg("run")
        .args(args)
        .arg("--print-settings")
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "multi-casskop run {args:?} under {env:?} failed: {}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_yaml::from_str(&stdout).unwrap_or_else(|e| panic!("not YAML ({e}): {stdout}"))
}

fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |v, k| &v[k])
}

fn text<'a>(v: &'a Value, path: &str) -> Option<&'a str> {
    at(v, path).as_str()
}

#[test]
fn the_file_alone_wins_over_flag_defaults() {
    let (_dir, file) = settings_file("file");
    let file = file.to_str().expect("utf8");
    let s = printed(&["--config", file], &[]);
    assert_eq!(text(&s, "namespace"), Some("file-ns"));
    assert_eq!(
        text(&s, "httpAddr"),
        Some("127.0.0.1:9000"),
        "the --http-addr default does not replace the file's address"
    );
    assert_eq!(text(&s, "logFormat"), Some("json"));
    assert_eq!(text(&s, "secrets.namespace"), Some("file-secrets"));
    assert_eq!(
        at(&s, "leaderElection.leaseDurationSeconds").as_u64(),
        Some(20)
    );
    assert_eq!(
        at(&s, "sites"),
        &serde_yaml::from_str::<Value>(
            "[{name: a, local: true}, {name: b, kubeconfig: /k/b, context: ctx-b}]"
        )
        .expect("yaml")
    );
}

#[test]
fn the_environment_overrides_the_file() {
    let (_dir, file) = settings_file("env");
    let s = printed(
        &[],
        &[
            ("MULTICASSKOP_CONFIG", file.to_str().expect("utf8")),
            ("MULTICASSKOP_SECRETS__NAMESPACE", "env-secrets"),
            ("MULTICASSKOP_SECRETS__LABEL_SELECTOR", "env=label"),
            ("MULTICASSKOP_HTTP_ADDR", "0.0.0.0:8080"),
            ("MULTICASSKOP_LOG_FORMAT", "plain"),
            ("MULTICASSKOP_LEADER_ELECTION__ENABLED", "true"),
            ("MULTICASSKOP_LEADER_ELECTION__LEASE_DURATION_SECONDS", "42"),
            ("MULTICASSKOP_METRICS_ADDR", "127.0.0.1:8443"),
            ("MULTICASSKOP_ALLOW_INSECURE_SKIP_TLS_VERIFY", "true"),
            (
                "MULTICASSKOP_TENANCY__ALLOWED_NAMESPACES",
                "{team-b: [cassandra-b]}",
            ),
            ("MULTICASSKOP_SITES", "[{name: c, context: ctx-c}]"),
        ],
    );
    assert_eq!(
        text(&s, "namespace"),
        Some("file-ns"),
        "not set: the file's"
    );
    assert_eq!(text(&s, "secrets.namespace"), Some("env-secrets"));
    assert_eq!(text(&s, "secrets.labelSelector"), Some("env=label"));
    assert_eq!(text(&s, "httpAddr"), Some("0.0.0.0:8080"));
    assert_eq!(text(&s, "logFormat"), Some("plain"));
    assert_eq!(at(&s, "leaderElection.enabled").as_bool(), Some(true));
    assert_eq!(
        at(&s, "leaderElection.leaseDurationSeconds").as_u64(),
        Some(42)
    );
    assert_eq!(text(&s, "metricsAddr"), Some("127.0.0.1:8443"));
    assert_eq!(at(&s, "allowInsecureSkipTlsVerify").as_bool(), Some(true));
    assert_eq!(
        at(&s, "tenancy.allowedNamespaces"),
        &serde_yaml::from_str::<Value>("{team-b: [cassandra-b]}").expect("yaml")
    );
    assert_eq!(
        at(&s, "sites"),
        &serde_yaml::from_str::<Value>("[{name: c, context: ctx-c}]").expect("yaml")
    );
}

#[test]
fn flags_given_override_the_environment() {
    let (_dir, file) = settings_file("flags");
    let s = printed(
        &[
            "--config",
            file.to_str().expect("utf8"),
            "--http-addr",
            "127.0.0.1:7000",
            "--secrets-namespace",
            "flag-secrets",
            "-n",
            "flag-ns",
            "-l",
            "local-site",
            "--site",
            "d=/k/d:ctx-d",
        ],
        &[
            ("MULTICASSKOP_SECRETS__NAMESPACE", "env-secrets"),
            ("MULTICASSKOP_HTTP_ADDR", "0.0.0.0:8080"),
            ("MULTICASSKOP_NAMESPACE", "env-ns"),
        ],
    );
    assert_eq!(text(&s, "httpAddr"), Some("127.0.0.1:7000"));
    assert_eq!(text(&s, "secrets.namespace"), Some("flag-secrets"));
    assert_eq!(text(&s, "namespace"), Some("flag-ns"));
    assert_eq!(
        at(&s, "sites"),
        &serde_yaml::from_str::<Value>(
            "[{name: a, local: true}, {name: b, kubeconfig: /k/b, context: ctx-b}, {name: local-site, local: true}, {name: d, kubeconfig: /k/d, context: ctx-d}]"
        )
        .expect("yaml"),
        "flag sites come after the file's"
    );
}

#[test]
fn defaults_and_older_names() {
    let s = printed(
        &["-r", "remote-site"],
        &[
            ("MULTICASSKOP_SECRETS_NAMESPACE", "old-name"),
            ("MULTICASSKOP_KUBECONFIG", "/k/management"),
            ("MULTICASSKOP_LEADER_ELECT", "true"),
        ],
    );
    assert_eq!(
        text(&s, "httpAddr"),
        Some("127.0.0.1:8080"),
        "loopback default"
    );
    assert_eq!(text(&s, "secrets.namespace"), Some("old-name"));
    assert_eq!(text(&s, "management.kubeconfig"), Some("/k/management"));
    assert_eq!(at(&s, "leaderElection.enabled").as_bool(), Some(true));
    assert_eq!(
        at(&s, "sites"),
        &serde_yaml::from_str::<Value>("[{name: remote-site, context: remote-site}]")
            .expect("yaml"),
        "-r NAME without a mounted import: the kubeconfig context NAME"
    );
}

#[test]
fn a_bad_variable_is_refused_by_name() {
    let out = Command::new(env!("CARGO_BIN_EXE_multi-casskop"))
        .args(["run", "--print-settings"])
        .env_clear()
        .env(
            "MULTICASSKOP_LEADER_ELECTION__LEASE_DURATION_SECONDS",
            "soon",
        )
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("MULTICASSKOP_LEADER_ELECTION__LEASE_DURATION_SECONDS")
            && stderr.contains("leaderElection.leaseDurationSeconds"),
        "{stderr}"
    );
}
