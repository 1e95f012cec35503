//! Settings from environment variables, by one rule: `MULTICASSKOP_`, then each segment of the
//! setting's key in SCREAMING_SNAKE_CASE, with `__` between nesting levels:
//! `httpAddr` → `MULTICASSKOP_HTTP_ADDR`, `secrets.namespace` → `MULTICASSKOP_SECRETS__NAMESPACE`,
//! `leaderElection.leaseDurationSeconds` → `MULTICASSKOP_LEADER_ELECTION__LEASE_DURATION_SECONDS`.
//!
//! Every setting of the file is in [`KEYS`]. Lists and maps (`sites`,
//! `tenancy.allowedNamespaces`) take YAML, as in the file (`[{name: eu, local: true}]`,
//! `{team-a: [cassandra-a]}`); booleans `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
//! An empty variable counts as unset. A variable replaces the file's value of its setting.
//!
//! The names earlier versions read through their flags still work ([`ALIASES`]); when both
//! an alias and the rule's name are set, the rule's name wins.

use std::path::PathBuf;

use super::{LogFormat, Settings, SettingsError, SiteConfig};

/// Prefix of every settings variable.
pub const ENV_PREFIX: &str = "MULTICASSKOP";

/// Variables with the prefix that are not settings: the settings file, read by the flag
/// `--config`.
pub const NOT_SETTINGS: [&str; 1] = ["MULTICASSKOP_CONFIG"];

type Setter = fn(&mut Settings, &str) -> Result<(), String>;

/// Every setting's key (as in the file) and how its variable's text sets it.
pub const KEYS: &[(&str, Setter)] = &[
    ("namespace", |s, v| {
        s.namespace = Some(v.into());
        Ok(())
    }),
    ("management.kubeconfig", |s, v| {
        s.management.kubeconfig = Some(PathBuf::from(v));
        Ok(())
    }),
    ("management.context", |s, v| {
        s.management.context = Some(v.into());
        Ok(())
    }),
    ("sites", |s, v| {
        s.sites = yaml::<Vec<SiteConfig>>(v)?;
        Ok(())
    }),
    ("secrets.namespace", |s, v| {
        s.secrets.namespace = Some(v.into());
        Ok(())
    }),
    ("secrets.labelSelector", |s, v| {
        s.secrets.label_selector = v.into();
        Ok(())
    }),
    ("logFormat", |s, v| {
        s.log_format = match v.to_ascii_lowercase().as_str() {
            "plain" => LogFormat::Plain,
            "json" => LogFormat::Json,
            _ => return Err(format!("{v:?} is not plain or json")),
        };
        Ok(())
    }),
    ("leaderElection.enabled", |s, v| {
        s.leader_election.enabled = boolean(v)?;
        Ok(())
    }),
    ("leaderElection.namespace", |s, v| {
        s.leader_election.namespace = Some(v.into());
        Ok(())
    }),
    ("leaderElection.leaseName", |s, v| {
        s.leader_election.lease_name = v.into();
        Ok(())
    }),
    ("leaderElection.leaseDurationSeconds", |s, v| {
        s.leader_election.lease_duration_seconds = v
            .parse()
            .map_err(|_| format!("{v:?} is not a whole number of seconds"))?;
        Ok(())
    }),
    ("httpAddr", |s, v| {
        s.http_addr = Some(v.into());
        Ok(())
    }),
    ("metricsAddr", |s, v| {
        s.metrics_addr = Some(v.into());
        Ok(())
    }),
    ("tenancy.allowedNamespaces", |s, v| {
        s.tenancy.allowed_namespaces = yaml(v)?;
        Ok(())
    }),
    ("allowInsecureSkipTlsVerify", |s, v| {
        s.allow_insecure_skip_tls_verify = boolean(v)?;
        Ok(())
    }),
];

/// Names earlier versions read (through their flags), and the setting each sets.
pub const ALIASES: &[(&str, &str)] = &[
    ("MULTICASSKOP_KUBECONFIG", "management.kubeconfig"),
    ("MULTICASSKOP_CONTEXT", "management.context"),
    ("MULTICASSKOP_SECRETS_NAMESPACE", "secrets.namespace"),
    ("MULTICASSKOP_LEADER_ELECT", "leaderElection.enabled"),
    (
        "MULTICASSKOP_LEADER_ELECTION_NAMESPACE",
        "leaderElection.namespace",
    ),
];

/// The variable of a setting's key: `leaderElection.leaseName` → `MULTICASSKOP_LEADER_ELECTION__LEASE_NAME`.
pub fn var_name(key: &str) -> String {
    let segments: Vec<String> = key.split('.').map(screaming_snake).collect();
    format!("{ENV_PREFIX}_{}", segments.join("__"))
}

fn screaming_snake(camel: &str) -> String {
    let mut out = String::new();
    for c in camel.chars() {
        if c.is_ascii_uppercase() && !out.is_empty() {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

fn boolean(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!("{v:?} is not true or false")),
    }
}

fn yaml<T: serde::de::DeserializeOwned>(v: &str) -> Result<T, String> {
    serde_yaml::from_str(v).map_err(|e| format!("not valid YAML for this setting: {e}"))
}

/// The process's variables that start with the prefix, as text (others, and names or values
/// that are not Unicode, are left out: no setting can use them).
pub fn process_vars() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect()
}

/// Variables with the prefix that set nothing (likely typos), for a warning.
pub fn unrecognised(vars: impl IntoIterator<Item = (String, String)>) -> Vec<String> {
    let mut unknown: Vec<String> = vars
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with(&format!("{ENV_PREFIX}_")))
        .filter(|k| {
            !NOT_SETTINGS.contains(&k.as_str())
                && !ALIASES.iter().any(|(alias, _)| alias == k)
                && !KEYS.iter().any(|(key, _)| var_name(key) == *k)
        })
        .collect();
    unknown.sort();
    unknown
}

/// Applies the variables to `settings`: first the aliases, then the rule's names.
pub fn apply(
    settings: &mut Settings,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<(), SettingsError> {
    let vars: std::collections::BTreeMap<String, String> =
        vars.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    let named = ALIASES
        .iter()
        .map(|(var, key)| ((*var).to_string(), *key))
        .chain(KEYS.iter().map(|(key, _)| (var_name(key), *key)));
    for (var, key) in named {
        let Some(value) = vars.get(&var) else {
            continue;
        };
        let Some((_, set)) = KEYS.iter().find(|(k, _)| *k == key) else {
            continue;
        };
        set(settings, value).map_err(|message| SettingsError::Environment {
            var: var.clone(),
            key: key.to_string(),
            message,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sites::SiteSource;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn names_follow_the_rule() {
        for (key, var) in [
            ("namespace", "MULTICASSKOP_NAMESPACE"),
            ("httpAddr", "MULTICASSKOP_HTTP_ADDR"),
            ("secrets.namespace", "MULTICASSKOP_SECRETS__NAMESPACE"),
            (
                "secrets.labelSelector",
                "MULTICASSKOP_SECRETS__LABEL_SELECTOR",
            ),
            (
                "leaderElection.leaseDurationSeconds",
                "MULTICASSKOP_LEADER_ELECTION__LEASE_DURATION_SECONDS",
            ),
            (
                "tenancy.allowedNamespaces",
                "MULTICASSKOP_TENANCY__ALLOWED_NAMESPACES",
            ),
            (
                "allowInsecureSkipTlsVerify",
                "MULTICASSKOP_ALLOW_INSECURE_SKIP_TLS_VERIFY",
            ),
        ] {
            assert_eq!(var_name(key), var, "{key}");
        }
        for (alias, key) in ALIASES {
            assert!(KEYS.iter().any(|(k, _)| k == key), "{alias} sets {key}");
        }
    }

    /// Every key of a settings file with every field set is one of [`KEYS`] (or a parent of
    /// them): a new setting cannot be forgotten here.
    #[test]
    fn every_setting_has_a_variable() {
        let mut full = Settings {
            namespace: Some("n".into()),
            http_addr: Some("a".into()),
            metrics_addr: Some("m".into()),
            ..Settings::default()
        };
        full.management.kubeconfig = Some("/k".into());
        full.management.context = Some("c".into());
        full.secrets.namespace = Some("s".into());
        full.leader_election.namespace = Some("l".into());
        let value = serde_json::to_value(&full).expect("serialises");
        let mut leaves = Vec::new();
        fn walk(prefix: &str, v: &serde_json::Value, out: &mut Vec<String>) {
            match v.as_object() {
                Some(map) if !["tenancy.allowedNamespaces"].contains(&prefix) => {
                    for (k, v) in map {
                        let key = if prefix.is_empty() {
                            k.clone()
                        } else {
                            format!("{prefix}.{k}")
                        };
                        walk(&key, v, out);
                    }
                }
                _ => out.push(prefix.to_string()),
            }
        }
        walk("", &value, &mut leaves);
        for leaf in &leaves {
            assert!(
                KEYS.iter().any(|(k, _)| k == leaf),
                "setting {leaf} has no environment variable"
            );
        }
        assert_eq!(leaves.len(), KEYS.len(), "{leaves:?}");
    }

    #[test]
    fn every_key_from_its_variable() {
        let mut s = Settings::default();
        apply(
            &mut s,
            vars(&[
                ("MULTICASSKOP_NAMESPACE", "ring"),
                ("MULTICASSKOP_MANAGEMENT__KUBECONFIG", "/k/m"),
                ("MULTICASSKOP_MANAGEMENT__CONTEXT", "m"),
                (
                    "MULTICASSKOP_SITES",
                    "[{name: eu, local: true}, {name: us, kubeconfig: /k/us, namespace: c}]",
                ),
                ("MULTICASSKOP_SECRETS__NAMESPACE", "mc"),
                ("MULTICASSKOP_SECRETS__LABEL_SELECTOR", "x=y"),
                ("MULTICASSKOP_LOG_FORMAT", "JSON"),
                ("MULTICASSKOP_LEADER_ELECTION__ENABLED", "true"),
                ("MULTICASSKOP_LEADER_ELECTION__NAMESPACE", "le"),
                ("MULTICASSKOP_LEADER_ELECTION__LEASE_NAME", "lease"),
                ("MULTICASSKOP_LEADER_ELECTION__LEASE_DURATION_SECONDS", "30"),
                ("MULTICASSKOP_HTTP_ADDR", "0.0.0.0:8080"),
                ("MULTICASSKOP_METRICS_ADDR", "127.0.0.1:8443"),
                (
                    "MULTICASSKOP_TENANCY__ALLOWED_NAMESPACES",
                    "{team-a: [cassandra-a]}",
                ),
                ("MULTICASSKOP_ALLOW_INSECURE_SKIP_TLS_VERIFY", "yes"),
            ]),
        )
        .expect("applies");
        assert_eq!(s.namespace.as_deref(), Some("ring"));
        assert_eq!(s.management.kubeconfig, Some("/k/m".into()));
        assert_eq!(s.management.context.as_deref(), Some("m"));
        assert_eq!(
            s.sites,
            vec![
                SiteConfig::new("eu", SiteSource::Management),
                SiteConfig {
                    namespace: Some("c".into()),
                    ..SiteConfig::new("us", SiteSource::kubeconfig(Some("/k/us".as_ref()), None))
                }
            ]
        );
        assert_eq!(s.secrets.namespace.as_deref(), Some("mc"));
        assert_eq!(s.secrets.label_selector, "x=y");
        assert_eq!(s.log_format, LogFormat::Json);
        assert!(s.leader_election.enabled);
        assert_eq!(s.leader_election.namespace.as_deref(), Some("le"));
        assert_eq!(s.leader_election.lease_name, "lease");
        assert_eq!(s.leader_election.lease_duration_seconds, 30);
        assert_eq!(s.http_addr.as_deref(), Some("0.0.0.0:8080"));
        assert_eq!(s.metrics_addr.as_deref(), Some("127.0.0.1:8443"));
        assert!(s.tenancy.allows("team-a", "cassandra-a"));
        assert!(s.allow_insecure_skip_tls_verify);
    }

    #[test]
    fn aliases_lose_to_the_rule_and_empty_is_unset() {
        let mut s = Settings::default();
        apply(
            &mut s,
            vars(&[
                ("MULTICASSKOP_SECRETS_NAMESPACE", "old"),
                ("MULTICASSKOP_SECRETS__NAMESPACE", "new"),
                ("MULTICASSKOP_LEADER_ELECT", "true"),
                ("MULTICASSKOP_NAMESPACE", ""),
            ]),
        )
        .expect("applies");
        assert_eq!(s.secrets.namespace.as_deref(), Some("new"));
        assert!(s.leader_election.enabled);
        assert_eq!(s.namespace, None);
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (var, value, expected) in [
            ("MULTICASSKOP_LOG_FORMAT", "xml", "is not plain or json"),
            (
                "MULTICASSKOP_LEADER_ELECTION__ENABLED",
                "maybe",
                "is not true or false",
            ),
            (
                "MULTICASSKOP_LEADER_ELECTION__LEASE_DURATION_SECONDS",
                "-1",
                "whole number",
            ),
            (
                "MULTICASSKOP_SITES",
                "[{name: a, local: true, context: x}]",
                "not both",
            ),
        ] {
            let err = apply(&mut Settings::default(), vars(&[(var, value)]))
                .expect_err(var)
                .to_string();
            assert!(err.contains(var) && err.contains(expected), "{err}");
        }
    }

    #[test]
    fn unrecognised_names() {
        assert_eq!(
            unrecognised(vars(&[
                ("MULTICASSKOP_SECRET__NAMESPACE", "typo"),
                ("MULTICASSKOP_SECRETS__NAMESPACE", "ok"),
                ("MULTICASSKOP_CONFIG", "/f"),
                ("MULTICASSKOP_KUBECONFIG", "/k"),
                ("OTHER", "x"),
            ])),
            vec!["MULTICASSKOP_SECRET__NAMESPACE".to_string()]
        );
    }
}
