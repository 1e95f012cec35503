//! Checks on a MultiCasskop and on each site's merged CassandraCluster, before anything is written.
//!
//! Every finding names the field path and says how to fix it. Errors stop the MultiCasskop from
//! being rolled out (nothing is written or deleted); warnings are reported and do not stop it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

use crate::api::{MultiCasskopSpec, SpecView};
use crate::core::seeds::DcNodes;

/// Longest Kubernetes label value, and so the longest MultiCasskop name (it goes in a label).
pub const MAX_LABEL_VALUE: usize = 63;

/// Most Cassandra nodes per rack. CassKop runs a rack as one StatefulSet and adds or removes
/// one pod at a time, so a rack of 1,000 nodes already takes days to scale; larger values are
/// typos (or attacks) that would make CassKop and multi-casskop plan millions of pods.
pub const MAX_NODES_PER_RACK: i32 = 1000;
/// Most DCs at one site (a DC is a Cassandra replication unit; real rings use a handful).
pub const MAX_DCS_PER_SITE: usize = 16;
/// Most racks per DC (racks are usually availability zones: 1 to 6).
pub const MAX_RACKS_PER_DC: usize = 16;
/// Most sites in one ring (keys of `spec.override`).
pub const MAX_SITES: usize = 32;
/// Most hand-written seeds (CassKop uses at most 3 per DC).
pub const MAX_MANUAL_SEEDS: usize = 64;
/// Longest `spec.rollout.progressDeadlineSeconds`: a week.
pub const MAX_PROGRESS_DEADLINE_SECONDS: u32 = 7 * 24 * 3600;
/// Longest DNS name (seed hosts and seed domains).
pub const MAX_DNS_NAME: usize = 253;

/// A problem found in the input, with the path of the field it is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    /// Field path, e.g. `spec.override.site-a.spec.topology.dc[0].name`.
    pub path: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl Finding {
    /// A finding about `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Finding {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

static DNS1123_LABEL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$").expect("valid regex"));
static CASSKOP_DC_RACK_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[^-]+$").expect("valid regex"));

/// Whether `s` is a DNS-1123 label (lowercase alphanumerics and `-`, at most 63 characters).
pub fn is_dns1123_label(s: &str) -> bool {
    s.len() <= MAX_LABEL_VALUE && DNS1123_LABEL.is_match(s)
}

/// CassandraCluster spec fields CassKop v2 knows; others are passed on but flagged as likely typos.
pub const CASSKOP_SPEC_FIELDS: &[&str] = &[
    "nodesPerRacks",
    "cassandraImage",
    "imagepullpolicy",
    "bootstrapImage",
    "configBuilderImage",
    "runAsUser",
    "fsGroup",
    "readOnlyRootFilesystem",
    "resources",
    "hardAntiAffinity",
    "pod",
    "service",
    "deletePVC",
    "debug",
    "autoPilot",
    "noCheckStsAreEqual",
    "autoUpdateSeedList",
    "maxPodUnavailable",
    "restartCountBeforePodDeletion",
    "unlockNextOperation",
    "dataCapacity",
    "dataStorageClass",
    "storageConfigs",
    "sidecarConfigs",
    "configMapName",
    "serverVersion",
    "serverType",
    "config",
    "imagePullSecret",
    "imageJolokiaSecret",
    "topology",
    "livenessInitialDelaySeconds",
    "livenessHealthCheckTimeout",
    "livenessHealthCheckPeriod",
    "livenessFailureThreshold",
    "livenessSuccessThreshold",
    "readinessInitialDelaySeconds",
    "readinessHealthCheckTimeout",
    "readinessHealthCheckPeriod",
    "readinessFailureThreshold",
    "readinessSuccessThreshold",
    "shareProcessNamespace",
    "backRestSidecar",
    "serviceAccountName",
    // v1alpha1-only fields, still accepted by CassKop's v1alpha1 schema.
    "gcStdout",
    "initContainerCmd",
    "initContainerImage",
];

/// Checks on the MultiCasskop as a whole: its name, its sites and its policies.
/// `known_sites` is the controller's site list when known (not when rendering offline).
pub fn validate_multicasskop(
    name: &str,
    spec: &MultiCasskopSpec,
    known_sites: Option<&[String]>,
) -> Vec<Finding> {
    let mut errors = Vec::new();
    if name.len() > MAX_LABEL_VALUE {
        errors.push(Finding::new(
            "metadata.name",
            format!("{} characters; at most {MAX_LABEL_VALUE}, because it is written as a label value on every site's CassandraCluster: choose a shorter name", name.len()),
        ));
    }
    if !spec.base.is_object() {
        errors.push(Finding::new(
            "spec.base",
            "must be a CassandraCluster object (apiVersion, kind, metadata, spec)",
        ));
    }
    if spec.overrides.len() > MAX_SITES {
        errors.push(Finding::new(
            "spec.override",
            format!(
                "{} sites; at most {MAX_SITES} per ring",
                spec.overrides.len()
            ),
        ));
    }
    if spec.overrides.is_empty() {
        errors.push(Finding::new(
            "spec.override",
            "names no site: add one key per site (e.g. `override: {site-a: {}}`); only sites named there get a CassandraCluster",
        ));
    }
    for (site, value) in &spec.overrides {
        let path = format!("spec.override.{site}");
        if site.is_empty() {
            errors.push(Finding::new(
                "spec.override[\"\"]",
                "empty site name: every key of spec.override must name a configured site",
            ));
        } else if !is_dns1123_label(site) {
            errors.push(Finding::new(&path, "site names must be DNS-1123 labels (lowercase letters, digits, '-'; at most 63): they are written as label values"));
        }
        if let Some(known) = known_sites
            && !known.iter().any(|k| k == site)
        {
            errors.push(Finding::new(
                &path,
                format!("unknown site {site:?}: the controller knows {}; fix the key or add the site to the controller's configuration", known.join(", ")),
            ));
        }
        if !value.is_object() && !value.is_null() {
            errors.push(Finding::new(
                &path,
                "must be an object (a partial CassandraCluster)",
            ));
        }
    }
    if let Some(rollout) = &spec.rollout {
        check_site_list(&mut errors, "spec.rollout.order", &rollout.order, spec);
        check_site_list(&mut errors, "spec.rollout.paused", &rollout.paused, spec);
        if let Some(seconds) = rollout.progress_deadline_seconds
            && !(1..=MAX_PROGRESS_DEADLINE_SECONDS).contains(&seconds)
        {
            errors.push(Finding::new(
                "spec.rollout.progressDeadlineSeconds",
                format!("{seconds} is out of range: 1 to {MAX_PROGRESS_DEADLINE_SECONDS} (a week)"),
            ));
        }
    }
    if let Some(seeds) = &spec.seeds {
        if let Some(per_dc) = seeds.per_dc
            && !(1..=3).contains(&per_dc)
        {
            errors.push(Finding::new(
                "spec.seeds.perDc",
                format!("{per_dc} is out of range: CassKop uses 1 to 3 seeds per DC"),
            ));
        }
        for (site, domain) in &seeds.domains {
            if !spec.overrides.contains_key(site) {
                errors.push(Finding::new(
                    format!("spec.seeds.domains.{site}"),
                    format!("{site:?} is not a site of spec.override; remove it or fix the name"),
                ));
            }
            if domain.len() > MAX_DNS_NAME {
                errors.push(Finding::new(
                    format!("spec.seeds.domains.{site}"),
                    format!(
                        "{} characters; a DNS name has at most {MAX_DNS_NAME}",
                        domain.len()
                    ),
                ));
            }
        }
        if let Some(manual) = &seeds.manual {
            if manual.is_empty() {
                errors.push(Finding::new(
                    "spec.seeds.manual",
                    "is empty: a ring without seeds cannot start or heal; list the seeds, or remove spec.seeds.manual to have them computed",
                ));
            }
            if manual.len() > MAX_MANUAL_SEEDS {
                errors.push(Finding::new(
                    "spec.seeds.manual",
                    format!(
                        "{} seeds; at most {MAX_MANUAL_SEEDS} (CassKop uses 3 per DC)",
                        manual.len()
                    ),
                ));
            }
            if manual.iter().any(|s| s.trim().is_empty()) {
                errors.push(Finding::new(
                    "spec.seeds.manual",
                    "contains an empty seed; remove it",
                ));
            }
            if manual.iter().any(|s| s.len() > MAX_DNS_NAME) {
                errors.push(Finding::new(
                    "spec.seeds.manual",
                    format!("contains a seed longer than {MAX_DNS_NAME} characters (a DNS name)"),
                ));
            }
        }
    }
    errors
}

fn check_site_list(
    errors: &mut Vec<Finding>,
    path: &str,
    sites: &[String],
    spec: &MultiCasskopSpec,
) {
    if sites.len() > MAX_SITES {
        errors.push(Finding::new(
            path,
            format!(
                "{} entries; at most {MAX_SITES} (one per site)",
                sites.len()
            ),
        ));
        return;
    }
    for (i, site) in sites.iter().enumerate() {
        if !spec.overrides.contains_key(site) {
            errors.push(Finding::new(
                format!("{path}[{i}]"),
                format!("{site:?} is not a site of spec.override; remove it or fix the name"),
            ));
        }
        if sites[..i].contains(site) {
            errors.push(Finding::new(
                format!("{path}[{i}]"),
                format!("{site:?} is listed twice; remove the duplicate"),
            ));
        }
    }
}

/// Checks on one site's merged CassandraCluster. `path` prefixes every finding
/// (e.g. `site site-a (spec.base + spec.override.site-a)`).
pub fn validate_site(
    path: &str,
    cluster: &str,
    namespace: &str,
    spec: &SpecView,
    dcs: &[DcNodes],
) -> Vec<Finding> {
    let mut errors = Vec::new();
    let at = |field: &str| format!("{path} {field}");
    if !is_dns1123_label(cluster) {
        errors.push(Finding::new(at("metadata.name"), format!("{cluster:?} must be a DNS-1123 label (lowercase letters, digits, '-'; at most 63): it names the headless service and every pod")));
    }
    if !is_dns1123_label(namespace) {
        errors.push(Finding::new(
            at("metadata.namespace"),
            format!("{namespace:?} is not a valid namespace name (DNS-1123 label)"),
        ));
    }
    if let Some(n) = spec.nodes_per_racks {
        if n > MAX_NODES_PER_RACK {
            errors.push(Finding::new(
                at("spec.nodesPerRacks"),
                format!("{n} is too large: at most {MAX_NODES_PER_RACK} nodes per rack"),
            ));
        } else if n < 0 {
            errors.push(Finding::new(
                at("spec.nodesPerRacks"),
                format!("{n} is negative; use 0 or more"),
            ));
        } else if n == 0 {
            errors.push(Finding::new(at("spec.nodesPerRacks"), "0 is refused by CassKop (it would restore the old value); scale a DC down with spec.topology.dc[].nodesPerRacks: 0"));
        }
    }
    if spec.max_pod_unavailable == Some(0) {
        errors.push(Finding::new(at("spec.maxPodUnavailable"), "0 is rewritten to 1 by CassKop, which would fight multi-casskop forever; use 1 or more, or leave it out"));
    }
    if spec.auto_update_seed_list == Some(true) {
        errors.push(Finding::new(at("spec.autoUpdateSeedList"), "true makes each site's CassKop rewrite the ring's shared seed list with local seeds (endless rolling restarts); remove it: multi-casskop manages the seed list"));
    }
    let dc_views = spec.topology.as_ref().and_then(|t| t.dc.as_ref());
    if let Some(dcs) = dc_views
        && dcs.len() > MAX_DCS_PER_SITE
    {
        errors.push(Finding::new(
            at("spec.topology.dc"),
            format!("{} DCs; at most {MAX_DCS_PER_SITE} per site", dcs.len()),
        ));
        return errors;
    }
    for (i, dc) in dc_views.into_iter().flatten().enumerate() {
        if let Some(n) = dc.nodes_per_racks
            && n < 0
        {
            errors.push(Finding::new(
                at(&format!("spec.topology.dc[{i}].nodesPerRacks")),
                format!("{n} is negative; use 0 or more"),
            ));
        }
        if let Some(n) = dc.nodes_per_racks
            && n > MAX_NODES_PER_RACK
        {
            errors.push(Finding::new(
                at(&format!("spec.topology.dc[{i}].nodesPerRacks")),
                format!("{n} is too large: at most {MAX_NODES_PER_RACK} nodes per rack"),
            ));
        }
        if let Some(racks) = &dc.rack
            && racks.len() > MAX_RACKS_PER_DC
        {
            errors.push(Finding::new(
                at(&format!("spec.topology.dc[{i}].rack")),
                format!("{} racks; at most {MAX_RACKS_PER_DC} per DC", racks.len()),
            ));
            return errors;
        }
        if dc.name.as_deref().is_none_or(str::is_empty) {
            errors.push(Finding::new(
                at(&format!("spec.topology.dc[{i}].name")),
                "every DC needs a name",
            ));
        }
        for (j, rack) in dc.rack.iter().flatten().enumerate() {
            if rack.name.as_deref().is_none_or(str::is_empty) {
                errors.push(Finding::new(
                    at(&format!("spec.topology.dc[{i}].rack[{j}].name")),
                    "every rack needs a name",
                ));
            }
        }
    }
    for (i, dc) in dcs.iter().enumerate() {
        check_dc_rack_name(
            &mut errors,
            &at(&format!("spec.topology.dc[{i}].name")),
            &dc.name,
            "DC",
        );
        for (j, rack) in dc.racks.iter().enumerate() {
            check_dc_rack_name(
                &mut errors,
                &at(&format!("spec.topology.dc[{i}].rack[{j}].name")),
                &rack.name,
                "rack",
            );
            let last_pod = format!(
                "{cluster}-{}-{}-{}",
                dc.name,
                rack.name,
                rack.nodes.max(1) - 1
            );
            if [cluster, dc.name.as_str(), rack.name.as_str()]
                .iter()
                .all(|n| is_dns1123_label(n))
                && !is_dns1123_label(&last_pod)
            {
                errors.push(Finding::new(
                    at(&format!("spec.topology.dc[{i}].rack[{j}]")),
                    format!("pod name {last_pod:?} is not a valid DNS-1123 label (at most 63 lowercase characters): shorten the cluster, DC or rack name"),
                ));
            }
        }
    }
    errors
}

fn check_dc_rack_name(errors: &mut Vec<Finding>, path: &str, name: &str, what: &str) {
    if name.is_empty() {
        return;
    }
    if !CASSKOP_DC_RACK_NAME.is_match(name) {
        errors.push(Finding::new(path, format!("{what} name {name:?} contains '-', which CassKop refuses (pattern ^[^-]+$): use e.g. {:?}", name.replace('-', ""))));
    } else if !is_dns1123_label(name) {
        errors.push(Finding::new(path, format!("{what} name {name:?} must be lowercase letters and digits: it becomes part of pod names")));
    }
}

/// Warnings on one site's spec: fields CassKop does not know (likely typos).
pub fn spec_warnings(
    path: &str,
    spec: &serde_json::Map<String, serde_json::Value>,
) -> Vec<Finding> {
    spec.keys()
        .filter(|k| !CASSKOP_SPEC_FIELDS.contains(&k.as_str()))
        .map(|k| {
            Finding::new(
                format!("{path} spec.{k}"),
                "CassKop does not know this field (typo?); it is passed on as written",
            )
        })
        .collect()
}

/// Checks across sites: DC names must be unique in the whole ring.
pub fn validate_ring(sites: &[(String, Vec<DcNodes>)]) -> Vec<Finding> {
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    let mut errors = Vec::new();
    for (site, dcs) in sites {
        for (i, dc) in dcs.iter().enumerate() {
            if dc.name.is_empty() {
                continue;
            }
            match seen.get(dc.name.as_str()) {
                Some(other) if *other == site => errors.push(Finding::new(
                    format!("spec.override.{site}.spec.topology.dc[{i}].name"),
                    format!("DC {:?} appears twice at site {site}; DC names must be unique", dc.name),
                )),
                Some(other) => errors.push(Finding::new(
                    format!("spec.override.{site}.spec.topology.dc[{i}].name"),
                    format!("DC {:?} is also used at site {other}; DC names must be unique across all sites (give each site its own spec.topology.dc in its override)", dc.name),
                )),
                None => {
                    seen.insert(&dc.name, site);
                }
            }
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{RolloutPolicy, SeedPolicy};
    use crate::core::seeds::{RackNodes, effective_topology};
    use serde_json::json;

    fn spec_with_sites(sites: &[&str]) -> MultiCasskopSpec {
        MultiCasskopSpec {
            base: json!({"metadata":{"name":"cass"}}),
            overrides: sites.iter().map(|s| (s.to_string(), json!({}))).collect(),
            ..Default::default()
        }
    }

    fn messages(findings: &[Finding]) -> Vec<String> {
        findings.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn multicasskop_level_findings() {
        let known = vec!["a".to_string(), "b".to_string()];
        let cases: Vec<(&str, String, MultiCasskopSpec, Option<&[String]>, Vec<&str>)> = vec![
            (
                "valid",
                "ring".into(),
                spec_with_sites(&["a", "b"]),
                Some(&known),
                vec![],
            ),
            (
                "no site",
                "ring".into(),
                spec_with_sites(&[]),
                None,
                vec!["spec.override: names no site"],
            ),
            (
                "unknown site",
                "ring".into(),
                spec_with_sites(&["a", "c"]),
                Some(&known),
                vec!["spec.override.c: unknown site \"c\": the controller knows a, b"],
            ),
            (
                "unknown sites not checked offline",
                "ring".into(),
                spec_with_sites(&["zz"]),
                None,
                vec![],
            ),
            (
                "site name not a label",
                "ring".into(),
                spec_with_sites(&["Site_A"]),
                None,
                vec!["spec.override.Site_A: site names must be DNS-1123 labels"],
            ),
            (
                "name too long for a label",
                "x".repeat(64),
                spec_with_sites(&["a"]),
                None,
                vec!["metadata.name: 64 characters; at most 63"],
            ),
            (
                "base not an object",
                "ring".into(),
                MultiCasskopSpec {
                    base: json!("text"),
                    ..spec_with_sites(&["a"])
                },
                None,
                vec!["spec.base: must be a CassandraCluster object"],
            ),
            (
                "override not an object",
                "ring".into(),
                MultiCasskopSpec {
                    overrides: [("a".to_string(), json!([1]))].into(),
                    ..spec_with_sites(&[])
                },
                None,
                vec!["spec.override.a: must be an object"],
            ),
            (
                "rollout order names an unknown site and a duplicate",
                "ring".into(),
                MultiCasskopSpec {
                    rollout: Some(RolloutPolicy {
                        order: vec!["a".into(), "x".into(), "a".into()],
                        ..Default::default()
                    }),
                    ..spec_with_sites(&["a"])
                },
                None,
                vec![
                    "spec.rollout.order[1]: \"x\" is not a site of spec.override",
                    "spec.rollout.order[2]: \"a\" is listed twice",
                ],
            ),
            (
                "paused unknown site",
                "ring".into(),
                MultiCasskopSpec {
                    rollout: Some(RolloutPolicy {
                        paused: vec!["q".into()],
                        ..Default::default()
                    }),
                    ..spec_with_sites(&["a"])
                },
                None,
                vec!["spec.rollout.paused[0]: \"q\" is not a site of spec.override"],
            ),
            (
                "seed policy out of range, unknown domain site, empty manual seed",
                "ring".into(),
                MultiCasskopSpec {
                    seeds: Some(SeedPolicy {
                        per_dc: Some(4),
                        domains: [("q".to_string(), "q.example".to_string())].into(),
                        manual: Some(vec!["".into()]),
                    }),
                    ..spec_with_sites(&["a"])
                },
                None,
                vec![
                    "spec.seeds.perDc: 4 is out of range",
                    "spec.seeds.domains.q: \"q\" is not a site of spec.override",
                    "spec.seeds.manual: contains an empty seed",
                ],
            ),
            (
                "empty manual seed list",
                "ring".into(),
                MultiCasskopSpec {
                    seeds: Some(SeedPolicy {
                        manual: Some(vec![]),
                        ..Default::default()
                    }),
                    ..spec_with_sites(&["a"])
                },
                None,
                vec!["spec.seeds.manual: is empty: a ring without seeds"],
            ),
            (
                "too many manual seeds, too long a seed",
                "ring".into(),
                MultiCasskopSpec {
                    seeds: Some(SeedPolicy {
                        manual: Some(vec!["s".repeat(300); 65]),
                        ..Default::default()
                    }),
                    ..spec_with_sites(&["a"])
                },
                None,
                vec![
                    "spec.seeds.manual: 65 seeds; at most 64",
                    "spec.seeds.manual: contains a seed longer than 253",
                ],
            ),
            (
                "empty site name",
                "ring".into(),
                spec_with_sites(&[""]),
                None,
                vec!["spec.override[\"\"]: empty site name"],
            ),
            (
                "too many sites",
                "ring".into(),
                spec_with_sites(
                    &(0..33)
                        .map(|i| format!("s{i}"))
                        .collect::<Vec<_>>()
                        .iter()
                        .map(String::as_str)
                        .collect::<Vec<_>>(),
                ),
                None,
                vec!["spec.override: 33 sites; at most 32"],
            ),
            (
                "progress deadline beyond a week, rollout order too long",
                "ring".into(),
                MultiCasskopSpec {
                    rollout: Some(RolloutPolicy {
                        progress_deadline_seconds: Some(u32::MAX),
                        order: vec!["a".into(); 33],
                        ..Default::default()
                    }),
                    ..spec_with_sites(&["a"])
                },
                None,
                vec![
                    "spec.rollout.order: 33 entries; at most 32",
                    "spec.rollout.progressDeadlineSeconds: 4294967295 is out of range",
                ],
            ),
        ];
        for (name, mc_name, spec, known, want) in cases {
            let got = messages(&validate_multicasskop(&mc_name, &spec, known));
            assert_eq!(got.len(), want.len(), "{name}: {got:#?}");
            for (g, w) in got.iter().zip(&want) {
                assert!(g.starts_with(w), "{name}: {g:?} should start with {w:?}");
            }
        }
    }

    fn site_spec(v: serde_json::Value) -> SpecView {
        serde_json::from_value(v).expect("test spec")
    }

    #[test]
    fn site_level_findings() {
        let cases: Vec<(&str, &str, &str, serde_json::Value, Vec<&str>)> = vec![
            (
                "valid",
                "cass",
                "ns",
                json!({"nodesPerRacks":2,"topology":{"dc":[{"name":"dc1","rack":[{"name":"r1"}]}]}}),
                vec![],
            ),
            (
                "dc name with dash",
                "cass",
                "ns",
                json!({"topology":{"dc":[{"name":"dc-1"}]}}),
                vec![
                    "S spec.topology.dc[0].name: DC name \"dc-1\" contains '-', which CassKop refuses (pattern ^[^-]+$): use e.g. \"dc1\"",
                ],
            ),
            (
                "rack name with dash",
                "cass",
                "ns",
                json!({"topology":{"dc":[{"name":"dc1","rack":[{"name":"r-1"}]}]}}),
                vec!["S spec.topology.dc[0].rack[0].name: rack name \"r-1\" contains '-'"],
            ),
            (
                "uppercase dc name",
                "cass",
                "ns",
                json!({"topology":{"dc":[{"name":"DC1"}]}}),
                vec!["S spec.topology.dc[0].name: DC name \"DC1\" must be lowercase"],
            ),
            (
                "dc without name",
                "cass",
                "ns",
                json!({"topology":{"dc":[{"nodesPerRacks":1}]}}),
                vec!["S spec.topology.dc[0].name: every DC needs a name"],
            ),
            (
                "rack without name",
                "cass",
                "ns",
                json!({"topology":{"dc":[{"name":"d","rack":[{}]}]}}),
                vec!["S spec.topology.dc[0].rack[0].name: every rack needs a name"],
            ),
            (
                "negative spec nodes",
                "cass",
                "ns",
                json!({"nodesPerRacks":-1}),
                vec!["S spec.nodesPerRacks: -1 is negative"],
            ),
            (
                "zero spec nodes",
                "cass",
                "ns",
                json!({"nodesPerRacks":0}),
                vec!["S spec.nodesPerRacks: 0 is refused by CassKop"],
            ),
            (
                "negative dc nodes",
                "cass",
                "ns",
                json!({"topology":{"dc":[{"name":"d","nodesPerRacks":-2}]}}),
                vec!["S spec.topology.dc[0].nodesPerRacks: -2 is negative"],
            ),
            (
                "zero dc nodes is fine (scale down)",
                "cass",
                "ns",
                json!({"topology":{"dc":[{"name":"d","nodesPerRacks":0}]}}),
                vec![],
            ),
            (
                "nodesPerRacks at the bound",
                "cass",
                "ns",
                json!({"nodesPerRacks":1000,"topology":{"dc":[{"name":"d","nodesPerRacks":1000}]}}),
                vec![],
            ),
            (
                "nodesPerRacks i32::MAX, spec and DC",
                "cass",
                "ns",
                json!({"nodesPerRacks":2147483647,"topology":{"dc":[{"name":"d","nodesPerRacks":1001}]}}),
                vec![
                    "S spec.nodesPerRacks: 2147483647 is too large: at most 1000",
                    "S spec.topology.dc[0].nodesPerRacks: 1001 is too large",
                ],
            ),
            (
                "too many DCs",
                "cass",
                "ns",
                json!({"topology":{"dc":(0..17).map(|i| json!({"name": format!("d{i}")})).collect::<Vec<_>>()}}),
                vec!["S spec.topology.dc: 17 DCs; at most 16"],
            ),
            (
                "too many racks",
                "cass",
                "ns",
                json!({"topology":{"dc":[{"name":"d","rack":(0..17).map(|i| json!({"name": format!("r{i}")})).collect::<Vec<_>>()}]}}),
                vec!["S spec.topology.dc[0].rack: 17 racks; at most 16"],
            ),
            (
                "maxPodUnavailable 0",
                "cass",
                "ns",
                json!({"maxPodUnavailable":0}),
                vec!["S spec.maxPodUnavailable: 0 is rewritten to 1"],
            ),
            (
                "autoUpdateSeedList true",
                "cass",
                "ns",
                json!({"autoUpdateSeedList":true}),
                vec!["S spec.autoUpdateSeedList: true makes each site's CassKop"],
            ),
            (
                "autoUpdateSeedList false is fine",
                "cass",
                "ns",
                json!({"autoUpdateSeedList":false}),
                vec![],
            ),
            (
                "bad cluster name",
                "Cass_1",
                "ns",
                json!({}),
                vec!["S metadata.name: \"Cass_1\" must be a DNS-1123 label"],
            ),
            (
                "bad namespace",
                "cass",
                "NS!",
                json!({}),
                vec!["S metadata.namespace: \"NS!\" is not a valid namespace name"],
            ),
            (
                "pod name too long",
                "a-very-long-cassandra-cluster-name-for-testing",
                "ns",
                json!({"topology":{"dc":[{"name":"datacenterone","rack":[{"name":"rackone"}]}]}}),
                vec![
                    "S spec.topology.dc[0].rack[0]: pod name \"a-very-long-cassandra-cluster-name-for-testing-datacenterone-rackone-0\" is not a valid DNS-1123 label",
                ],
            ),
        ];
        for (name, cluster, ns, spec, want) in cases {
            let view = site_spec(spec);
            let got = messages(&validate_site(
                "S",
                cluster,
                ns,
                &view,
                &effective_topology(&view),
            ));
            assert_eq!(got.len(), want.len(), "{name}: {got:#?}");
            for (g, w) in got.iter().zip(&want) {
                assert!(g.starts_with(w), "{name}: {g:?} should start with {w:?}");
            }
        }
    }

    #[test]
    fn dc_names_unique_across_sites() {
        let dc = |n: &str| DcNodes {
            name: n.into(),
            racks: vec![RackNodes {
                name: "r".into(),
                nodes: 1,
            }],
        };
        let ok = validate_ring(&[("a".into(), vec![dc("dc1")]), ("b".into(), vec![dc("dc2")])]);
        assert!(ok.is_empty());
        let dup = messages(&validate_ring(&[
            ("a".into(), vec![dc("dc1")]),
            ("b".into(), vec![dc("dc1")]),
        ]));
        assert_eq!(
            dup,
            vec![
                "spec.override.b.spec.topology.dc[0].name: DC \"dc1\" is also used at site a; DC names must be unique across all sites (give each site its own spec.topology.dc in its override)"
            ]
        );
        let twice = messages(&validate_ring(&[("a".into(), vec![dc("x"), dc("x")])]));
        assert_eq!(
            twice,
            vec![
                "spec.override.a.spec.topology.dc[1].name: DC \"x\" appears twice at site a; DC names must be unique"
            ]
        );
    }

    #[test]
    fn unknown_spec_fields_are_warned() {
        let spec = json!({"cassandraImage":"x","casandraImage":"typo","topology":{}});
        let got = messages(&spec_warnings("S", spec.as_object().expect("object")));
        assert_eq!(
            got,
            vec![
                "S spec.casandraImage: CassKop does not know this field (typo?); it is passed on as written"
            ]
        );
    }

    #[test]
    fn dns_labels() {
        for ok in ["a", "a1", "a-b", &"a".repeat(63)] {
            assert!(is_dns1123_label(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", &"a".repeat(64)] {
            assert!(!is_dns1123_label(bad), "{bad}");
        }
    }
}
