//! From a MultiCasskop to what every site must hold: the site objects in rollout order and the
//! ring's one seed list. Pure: the controller and `multi-casskop render` both call this.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::api::{MultiCasskopSpec, RolloutStrategy};
use crate::core::replication::SiteDcs;
use crate::core::seeds::{self, MAX_SEEDS_PER_DC, SeedDomain, SiteSeedInput};
use crate::core::site_object::{Owner, SiteCassandraCluster, build_site_object, site_path};
use crate::core::tenancy::TenancyPolicy;
use crate::core::validate::{Finding, validate_multicasskop, validate_ring, validate_site};

/// Default for `spec.rollout.progressDeadlineSeconds`.
pub const DEFAULT_PROGRESS_DEADLINE: Duration = Duration::from_secs(600);

/// Where the ring's seed list comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeedSource {
    /// Computed from the sites' topologies.
    Computed,
    /// `spec.seeds.manual`.
    Manual,
    /// `status.seedlist` in base or overrides, as written for the Go Multi-CassKop.
    LegacyStatusSeedlist,
}

/// Everything the MultiCasskop asks of its sites.
#[derive(Clone, Debug, PartialEq)]
pub struct Federation {
    /// One entry per site of `spec.override`, in rollout order.
    pub sites: Vec<SiteCassandraCluster>,
    /// The seed list every site gets.
    pub seeds: Vec<String>,
    /// Where `seeds` came from.
    pub seed_source: SeedSource,
    /// Sequential, canary or parallel, and how many sites at once after a canary.
    pub strategy: RolloutStrategy,
    /// With `Canary`: sites changing at once after the first (`None`: all).
    pub max_concurrent_sites: Option<usize>,
    /// Sites not to touch.
    pub paused: BTreeSet<String>,
    /// How long a site may take to become ready before the ring reports Degraded.
    pub progress_deadline: Duration,
    /// Non-fatal findings.
    pub warnings: Vec<Finding>,
}

impl Federation {
    /// Each site with its DCs (racks and node counts), as the replication statements need them.
    pub fn site_dcs(&self) -> Vec<SiteDcs> {
        self.sites
            .iter()
            .map(|s| SiteDcs {
                site: s.site.clone(),
                dcs: seeds::effective_topology(&s.view.spec.clone().unwrap_or_default()),
            })
            .collect()
    }
}

/// A MultiCasskop's identity and spec, and the controller's sites in configured order when known.
#[derive(Clone, Copy, Debug)]
pub struct FederationInput<'a> {
    /// MultiCasskop name.
    pub name: &'a str,
    /// MultiCasskop namespace.
    pub namespace: &'a str,
    /// MultiCasskop spec.
    pub spec: &'a MultiCasskopSpec,
    /// The controller's sites in configured order; `None` when rendering offline.
    pub known_sites: Option<&'a [String]>,
}

/// Decides what every site must hold, or returns every error found, with the default tenant
/// boundary: every site object is in the MultiCasskop's own namespace.
pub fn plan_federation(input: FederationInput<'_>) -> Result<Federation, Vec<Finding>> {
    plan_federation_with(input, &TenancyPolicy::default())
}

/// [`plan_federation`] with the namespaces the controller's settings allow beyond the
/// MultiCasskop's own (`tenancy.allowedNamespaces`).
pub fn plan_federation_with(
    input: FederationInput<'_>,
    tenancy: &TenancyPolicy,
) -> Result<Federation, Vec<Finding>> {
    plan(input, tenancy).map_err(|errors| {
        // A base-level finding is found once per site; report it once.
        let mut seen = BTreeSet::new();
        errors
            .into_iter()
            .filter(|e| seen.insert(e.clone()))
            .collect()
    })
}

fn plan(input: FederationInput<'_>, tenancy: &TenancyPolicy) -> Result<Federation, Vec<Finding>> {
    let spec = input.spec;
    // Report every problem at once: spec-level errors do not stop the per-site checks.
    let mut errors = validate_multicasskop(input.name, spec, input.known_sites);
    if !spec.base.is_object() {
        return Err(errors);
    }
    let owner = Owner {
        name: input.name,
        namespace: input.namespace,
    };
    let empty = serde_json::Value::Object(Default::default());
    let mut built = Vec::new();
    for (site, patch) in &spec.overrides {
        let patch = if patch.is_null() { &empty } else { patch };
        if !patch.is_object() {
            continue;
        }
        match build_site_object(owner, &spec.base, patch, site) {
            Ok(site_object) => {
                if let Err(message) = tenancy.check(input.namespace, &site_object.namespace) {
                    let from_override = patch
                        .pointer("/metadata/namespace")
                        .and_then(serde_json::Value::as_str)
                        .is_some_and(|n| !n.is_empty());
                    let path = if from_override {
                        format!("spec.override.{site}.metadata.namespace")
                    } else {
                        "spec.base.metadata.namespace".to_string()
                    };
                    errors.push(Finding::new(path, message));
                }
                built.push(site_object);
            }
            Err(found) => errors.extend(found),
        }
    }
    if built.is_empty() {
        return Err(errors);
    }

    let seed_policy = spec.seeds.clone().unwrap_or_default();
    let mut seed_inputs = Vec::new();
    let mut ring = Vec::new();
    for site in &built {
        let site_spec = site.view.spec.clone().unwrap_or_default();
        let dcs = seeds::effective_topology(&site_spec);
        errors.extend(validate_site(
            &site_path(&site.site),
            &site.name,
            &site.namespace,
            &site_spec,
            &dcs,
        ));
        let domain = seeds::seed_domain(
            &site_spec,
            seed_policy.domains.get(&site.site).map(String::as_str),
            &site.name,
            &site.namespace,
        );
        ring.push((site.site.clone(), dcs.clone()));
        seed_inputs.push(SiteSeedInput {
            site: site.site.clone(),
            cluster: site.name.clone(),
            domain,
            dcs,
        });
    }
    errors.extend(validate_ring(&ring));
    let ring_dcs: Vec<crate::core::replication::SiteDcs> = ring
        .iter()
        .map(|(site, dcs)| crate::core::replication::SiteDcs {
            site: site.clone(),
            dcs: dcs.clone(),
        })
        .collect();
    errors.extend(crate::core::joining::validate_source_dc(
        spec.replication.as_ref(),
        &ring_dcs,
    ));

    let mut warnings: Vec<Finding> = built.iter().flat_map(|s| s.warnings.clone()).collect();
    let (seeds, seed_source) = match choose_manual_seeds(&seed_policy.manual, &built, &mut errors) {
        Some((list, source)) => {
            warnings.extend(manual_seed_warnings(&list, &seed_inputs));
            (list, source)
        }
        None => {
            let list =
                seeds::ring_seeds(&seed_inputs, seed_policy.per_dc.unwrap_or(MAX_SEEDS_PER_DC));
            if list.is_empty() {
                errors.push(Finding::new(
                    "spec.override",
                    "the ring has no seed: every rack has 0 nodes; give at least one rack a node",
                ));
            }
            if seed_inputs.len() > 1 {
                for input in seed_inputs
                    .iter()
                    .filter(|i| matches!(i.domain, SeedDomain::ClusterLocal(_)))
                {
                    warnings.push(Finding::new(
                        format!("site {}", input.site),
                        format!(
                            "seeds use the cluster-local domain {:?} and may not resolve from other sites: set the external-dns hostname annotation in spec.service.annotations or spec.seeds.domains.{}",
                            input.domain.as_str(),
                            input.site
                        ),
                    ));
                }
            }
            (list, SeedSource::Computed)
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }

    let rollout = spec.rollout.clone().unwrap_or_default();
    let order = rollout_order(&rollout.order, input.known_sites, &built);
    let mut by_name: std::collections::BTreeMap<String, SiteCassandraCluster> =
        built.into_iter().map(|s| (s.site.clone(), s)).collect();
    let sites = order
        .iter()
        .filter_map(|name| by_name.remove(name))
        .collect();
    Ok(Federation {
        sites,
        seeds,
        seed_source,
        strategy: rollout.strategy.unwrap_or_default(),
        max_concurrent_sites: rollout
            .max_concurrent_sites
            .and_then(|n| usize::try_from(n).ok()),
        paused: rollout.paused.into_iter().collect(),
        progress_deadline: rollout
            .progress_deadline_seconds
            .map_or(DEFAULT_PROGRESS_DEADLINE, |s| {
                Duration::from_secs(u64::from(s))
            }),
        warnings,
    })
}

/// `spec.seeds.manual`, else one `status.seedlist` shared by every site that has one.
fn choose_manual_seeds(
    manual: &Option<Vec<String>>,
    built: &[SiteCassandraCluster],
    errors: &mut Vec<Finding>,
) -> Option<(Vec<String>, SeedSource)> {
    if let Some(list) = manual {
        return Some((list.clone(), SeedSource::Manual));
    }
    let lists: Vec<(&str, &Vec<String>)> = built
        .iter()
        .filter_map(|s| s.manual_seeds.as_ref().map(|l| (s.site.as_str(), l)))
        .collect();
    let (first_site, first) = *lists.first()?;
    if let Some((other, _)) = lists.iter().find(|(_, l)| *l != first) {
        errors.push(Finding::new(
            format!("spec.override.{other}.status.seedlist"),
            format!("differs from the seed list of site {first_site}; the ring has one seed list: put it in spec.seeds.manual (or drop every status.seedlist to have seeds computed)"),
        ));
        return None;
    }
    Some((first.clone(), SeedSource::LegacyStatusSeedlist))
}

/// Warns about manual seeds whose host part names no pod of the ring. Checks each seed against
/// the racks (no list of every pod: a ring may have thousands).
fn manual_seed_warnings(list: &[String], sites: &[SiteSeedInput]) -> Vec<Finding> {
    let names_a_pod = |host: &str| {
        sites.iter().any(|site| {
            site.dcs.iter().any(|dc| {
                dc.racks.iter().any(|rack| {
                    host.strip_prefix(&format!("{}-{}-{}-", site.cluster, dc.name, rack.name))
                        .and_then(|n| {
                            (!n.starts_with('+') && (n == "0" || !n.starts_with('0')))
                                .then(|| n.parse::<i32>().ok())
                                .flatten()
                        })
                        .is_some_and(|ordinal| ordinal < rack.nodes)
                })
            })
        })
    };
    let example = sites
        .first()
        .map(|s| format!("{}-<dc>-<rack>-<n>", s.cluster))
        .unwrap_or_default();
    list.iter()
        .enumerate()
        .filter(|(_, seed)| !names_a_pod(seed.split('.').next().unwrap_or_default()))
        .map(|(i, seed)| {
            Finding::new(
                format!("seedlist[{i}]"),
                format!("{seed:?} names no pod of this ring (its pods are named {example}); fix it, or remove the hand-written list to have seeds computed"),
            )
        })
        .collect()
}

/// `spec.rollout.order` first, then the controller's configured order, then by name.
fn rollout_order(
    explicit: &[String],
    known: Option<&[String]>,
    built: &[SiteCassandraCluster],
) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    let in_ring = |s: &String| built.iter().any(|b| &b.site == s);
    for site in explicit
        .iter()
        .chain(known.unwrap_or_default())
        .chain(built.iter().map(|b| &b.site))
    {
        if in_ring(site) && !order.contains(site) {
            order.push(site.clone());
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{RolloutPolicy, SeedPolicy};
    use serde_json::json;

    fn spec(v: serde_json::Value) -> MultiCasskopSpec {
        serde_json::from_value(v).expect("test spec")
    }

    fn plan(s: &MultiCasskopSpec, known: Option<&[String]>) -> Result<Federation, Vec<Finding>> {
        plan_federation(FederationInput {
            name: "ring",
            namespace: "ns",
            spec: s,
            known_sites: known,
        })
    }

    fn two_sites() -> MultiCasskopSpec {
        spec(json!({
            "base": {"metadata": {"name": "cass"}, "spec": {"nodesPerRacks": 3}},
            "override": {
                "west": {"spec": {"topology": {"dc": [{"name": "dc2", "rack": [{"name": "r1"}]}]}}},
                "east": {"spec": {"topology": {"dc": [{"name": "dc1", "rack": [{"name": "r1"}, {"name": "r2"}]}]}}}
            }
        }))
    }

    #[test]
    fn seeds_span_every_site_sorted_by_site() {
        let f = plan(&two_sites(), None).expect("valid");
        assert_eq!(f.seed_source, SeedSource::Computed);
        assert_eq!(
            f.seeds,
            vec![
                "cass-dc1-r1-0.cass.ns",
                "cass-dc1-r1-1.cass.ns",
                "cass-dc1-r2-0.cass.ns",
                "cass-dc2-r1-0.cass.ns",
                "cass-dc2-r1-1.cass.ns",
                "cass-dc2-r1-2.cass.ns"
            ]
        );
        assert_eq!(
            f.warnings.len(),
            2,
            "cluster-local domains are warned for both sites: {:?}",
            f.warnings
        );
    }

    #[test]
    fn rollout_order_explicit_then_configured_then_by_name() {
        let mut s = two_sites();
        s.overrides.insert(
            "north".into(),
            json!({"spec": {"topology": {"dc": [{"name": "dc3"}]}}}),
        );
        let names = |f: &Federation| f.sites.iter().map(|s| s.site.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(&plan(&s, None).expect("valid")),
            vec!["east", "north", "west"]
        );
        let known = vec![
            "west".to_string(),
            "east".to_string(),
            "north".to_string(),
            "south".to_string(),
        ];
        assert_eq!(
            names(&plan(&s, Some(&known)).expect("valid")),
            vec!["west", "east", "north"]
        );
        s.rollout = Some(RolloutPolicy {
            order: vec!["north".into()],
            ..Default::default()
        });
        assert_eq!(
            names(&plan(&s, Some(&known)).expect("valid")),
            vec!["north", "west", "east"]
        );
    }

    #[test]
    fn manual_seeds_are_used_as_is_and_unknown_hosts_warned() {
        let mut s = two_sites();
        s.seeds = Some(SeedPolicy {
            manual: Some(vec!["cass-dc1-r1-0.x".into(), "elsewhere.example".into()]),
            ..Default::default()
        });
        let f = plan(&s, None).expect("valid");
        assert_eq!(f.seed_source, SeedSource::Manual);
        assert_eq!(f.seeds, vec!["cass-dc1-r1-0.x", "elsewhere.example"]);
        let about_seeds: Vec<_> = f
            .warnings
            .iter()
            .filter(|w| w.path.starts_with("seedlist"))
            .collect();
        assert_eq!(about_seeds.len(), 1);
        assert!(
            about_seeds[0]
                .message
                .starts_with("\"elsewhere.example\" names no pod of this ring")
        );
    }

    #[test]
    fn legacy_status_seedlist_must_agree_across_sites() {
        let mut s = two_sites();
        s.base["status"] = json!({"seedlist": ["cass-dc1-r1-0.z"]});
        let f = plan(&s, None).expect("valid");
        assert_eq!(
            (f.seed_source, f.seeds.clone()),
            (
                SeedSource::LegacyStatusSeedlist,
                vec!["cass-dc1-r1-0.z".to_string()]
            )
        );
        s.overrides.get_mut("west").expect("west")["status"] = json!({"seedlist": ["other"]});
        let errors = plan(&s, None).expect_err("differing lists");
        assert_eq!(errors[0].path, "spec.override.west.status.seedlist");
    }

    #[test]
    fn duplicate_dc_across_sites_is_an_error() {
        let s = spec(json!({
            "base": {"metadata": {"name": "cass"}},
            "override": {"a": {}, "b": {}}
        }));
        let errors = plan(&s, None).expect_err("both sites default to dc1");
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0]
                .message
                .contains("DC \"dc1\" is also used at site a"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn all_racks_empty_is_an_error() {
        let s = spec(
            json!({"base": {"metadata": {"name": "cass"}}, "override": {"a": {"spec": {"topology": {"dc": [{"name": "d", "nodesPerRacks": 0}]}}}}}),
        );
        let errors = plan(&s, None).expect_err("no seed");
        assert!(errors[0].message.starts_with("the ring has no seed"));
    }

    #[test]
    fn errors_from_every_site_are_reported_together() {
        let s = spec(json!({"base": {"metadata": {"name": "cass"}}, "override": {
            "a": {"spec": {"topology": {"dc": [{"name": "d-1"}]}}},
            "b": {"spec": {"nodesPerRacks": -1, "topology": {"dc": [{"name": "e"}]}}}
        }}));
        let errors = plan(&s, None).expect_err("two bad sites");
        assert_eq!(errors.len(), 2, "{errors:#?}");
    }

    #[test]
    fn spec_level_and_site_level_errors_come_together() {
        let s = spec(json!({"base": {"metadata": {"name": "cass"}}, "override": {
            "a": {"spec": {"topology": {"dc": [{"name": "d-1"}]}}},
            "b": {"spec": {"topology": {"dc": [{"name": "e"}]}}}
        }, "rollout": {"order": ["zz"]}}));
        let errors = plan(&s, Some(&["a".to_string()])).expect_err("invalid");
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert!(
            paths.contains(&"spec.override.b"),
            "unknown site: {paths:?}"
        );
        assert!(paths.contains(&"spec.rollout.order[0]"), "{paths:?}");
        assert!(
            paths
                .iter()
                .any(|p| p.ends_with("spec.topology.dc[0].name")),
            "site-level error too: {paths:?}"
        );
    }

    #[test]
    fn policies_are_carried() {
        let mut s = two_sites();
        s.rollout = Some(RolloutPolicy {
            strategy: Some(RolloutStrategy::Parallel),
            paused: vec!["west".into()],
            progress_deadline_seconds: Some(30),
            ..Default::default()
        });
        let f = plan(&s, None).expect("valid");
        assert_eq!(f.strategy, RolloutStrategy::Parallel);
        assert!(f.paused.contains("west"));
        assert_eq!(f.progress_deadline, Duration::from_secs(30));
    }

    #[test]
    fn rebuild_source_dc_must_be_a_dc_of_the_ring() {
        let mut s = two_sites();
        let dcs: Vec<String> = plan(&s, None)
            .expect("valid")
            .sites
            .iter()
            .flat_map(|site| {
                crate::core::seeds::effective_topology(&site.view.spec.clone().unwrap_or_default())
            })
            .map(|dc| dc.name)
            .collect();
        let with = |dc: &str| {
            Some(crate::api::ReplicationPolicy {
                rebuild: Some(crate::api::RebuildPolicy {
                    source_dc: Some(dc.into()),
                    ..Default::default()
                }),
                ..Default::default()
            })
        };
        s.replication = with(&dcs[0]);
        assert!(plan(&s, None).is_ok(), "{:?}", dcs);
        s.replication = with("nowhere");
        let findings = plan(&s, None).expect_err("unknown source DC");
        assert!(
            findings
                .iter()
                .any(|f| f.to_string().contains("spec.replication.rebuild.sourceDc")),
            "{findings:?}"
        );
    }

    #[test]
    fn null_override_is_an_empty_override() {
        let s = spec(json!({"base": {"metadata": {"name": "cass"}}, "override": {"a": null}}));
        let f = plan(&s, None).expect("valid");
        assert_eq!(f.sites[0].object["spec"], json!({}));
    }

    #[test]
    fn tenant_boundary_table() {
        use crate::core::tenancy::RULE;
        let allowing = TenancyPolicy {
            allowed_namespaces: [("ns".to_string(), vec!["cassandra".to_string()])].into(),
        };
        let none = TenancyPolicy::default();
        let with_ns = |base_ns: Option<&str>, ovr_ns: Option<&str>| {
            let mut s = two_sites();
            if let Some(n) = base_ns {
                s.base["metadata"]["namespace"] = json!(n);
            }
            if let Some(n) = ovr_ns {
                s.overrides.get_mut("east").expect("east")["metadata"] = json!({"namespace": n});
            }
            s
        };
        let cases: Vec<(&str, MultiCasskopSpec, &TenancyPolicy, Option<&str>)> = vec![
            (
                "no namespace: the MultiCasskop's",
                with_ns(None, None),
                &none,
                None,
            ),
            (
                "own namespace written out",
                with_ns(Some("ns"), None),
                &none,
                None,
            ),
            (
                "base targets another tenant",
                with_ns(Some("team-b"), None),
                &none,
                Some("spec.base.metadata.namespace"),
            ),
            (
                "override targets kube-system",
                with_ns(None, Some("kube-system")),
                &none,
                Some("spec.override.east.metadata.namespace"),
            ),
            (
                "allowed by the settings",
                with_ns(None, Some("cassandra")),
                &allowing,
                None,
            ),
            (
                "allowed elsewhere, not here",
                with_ns(None, Some("team-b")),
                &allowing,
                Some("spec.override.east.metadata.namespace"),
            ),
            (
                "override back to own namespace",
                with_ns(Some("team-b"), Some("ns")),
                &none,
                Some("spec.base.metadata.namespace"),
            ),
        ];
        for (name, spec, policy, want) in cases {
            let got = plan_federation_with(
                FederationInput {
                    name: "ring",
                    namespace: "ns",
                    spec: &spec,
                    known_sites: None,
                },
                policy,
            );
            match want {
                None => {
                    got.unwrap_or_else(|e| panic!("{name}: {e:?}"));
                }
                Some(path) => {
                    let errors = got.expect_err(name);
                    let tenancy: Vec<_> =
                        errors.iter().filter(|e| e.message.contains(RULE)).collect();
                    assert_eq!(tenancy.len(), 1, "{name}: reported once: {errors:#?}");
                    assert_eq!(tenancy[0].path, path, "{name}");
                }
            }
        }
    }

    #[test]
    fn huge_topologies_are_refused_quickly() {
        let racks: Vec<_> = (0..10_000)
            .map(|i| json!({"name": format!("r{i}")}))
            .collect();
        let s = spec(
            json!({"base": {"metadata": {"name": "cass"}, "spec": {"nodesPerRacks": 2147483647}}, "override": {
            "a": {"spec": {"topology": {"dc": [{"name": "d", "rack": racks}]}}}
        }, "seeds": {"manual": ["cass-d-r1-0"]}}),
        );
        let started = std::time::Instant::now();
        let errors = plan(&s, None).expect_err("bounds");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "took {:?}",
            started.elapsed()
        );
        let text = errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            text.contains("2147483647 is too large: at most 1000"),
            "{text}"
        );
        assert!(text.contains("10000 racks; at most 16 per DC"), "{text}");
    }
}
