//! One seed list for the whole ring, computed from every site's merged topology.
//!
//! Per DC, CassKop's rule: at most 3 seeds; with 1 rack ordinals 0, 1, 2 of it; with 2 racks
//! ordinals 0, 1 of the first and 0 of the second; with 3 or more racks ordinal 0 of the first
//! three. Seeds never name a pod beyond the rack's node count. A seed is the pod's DNS name,
//! `<cluster>-<dc>-<rack>-<ordinal>.<domain>`. Sites are taken by name, DCs and racks in their
//! topology order, so the same input always gives the same, byte-identical list.

use crate::api::{EXTERNAL_DNS_HOSTNAME_ANNOTATION, SpecView};

/// CassKop's maximum number of seeds per datacenter.
pub const MAX_SEEDS_PER_DC: u8 = 3;
/// CassKop's default `nodesPerRacks` when the spec leaves it out.
pub const DEFAULT_NODES_PER_RACK: i32 = 1;
/// CassKop's default DC and rack names when the topology leaves them out.
pub const DEFAULT_DC: &str = "dc1";
/// See [`DEFAULT_DC`].
pub const DEFAULT_RACK: &str = "rack1";

/// Where a site's seed names resolve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SeedDomain {
    /// From the external-dns hostname annotation on `spec.service.annotations`.
    ExternalDns(String),
    /// From `spec.seeds.domains.<site>`.
    Policy(String),
    /// Cluster-local `<cluster>.<namespace>`: may not resolve from other sites.
    ClusterLocal(String),
}

impl SeedDomain {
    /// The domain appended to pod names.
    pub fn as_str(&self) -> &str {
        match self {
            SeedDomain::ExternalDns(d) | SeedDomain::Policy(d) | SeedDomain::ClusterLocal(d) => d,
        }
    }
}

/// A rack and how many Cassandra nodes it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RackNodes {
    /// Rack name.
    pub name: String,
    /// Node count (DC-level `nodesPerRacks`, else the spec-level one, else 1).
    pub nodes: i32,
}

/// A datacenter and its racks, as CassKop will create them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DcNodes {
    /// DC name.
    pub name: String,
    /// Racks in topology order.
    pub racks: Vec<RackNodes>,
}

/// The part of one site that decides its seeds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteSeedInput {
    /// Site name.
    pub site: String,
    /// CassandraCluster name (prefix of every pod name).
    pub cluster: String,
    /// Where the pod names resolve.
    pub domain: SeedDomain,
    /// DCs in topology order.
    pub dcs: Vec<DcNodes>,
}

/// The DCs and racks CassKop creates for a spec, with their node counts, including CassKop's
/// defaults: no DC gives `dc1`/`rack1`, a DC without racks gets `rack1`.
pub fn effective_topology(spec: &SpecView) -> Vec<DcNodes> {
    let spec_nodes = spec.nodes_per_racks.unwrap_or(DEFAULT_NODES_PER_RACK);
    let dcs = spec
        .topology
        .as_ref()
        .and_then(|t| t.dc.as_ref())
        .filter(|dcs| !dcs.is_empty());
    let Some(dcs) = dcs else {
        return vec![DcNodes {
            name: DEFAULT_DC.to_string(),
            racks: vec![RackNodes {
                name: DEFAULT_RACK.to_string(),
                nodes: spec_nodes,
            }],
        }];
    };
    dcs.iter()
        .map(|dc| {
            let nodes = dc.nodes_per_racks.unwrap_or(spec_nodes);
            let racks = match dc.rack.as_ref().filter(|r| !r.is_empty()) {
                Some(racks) => racks
                    .iter()
                    .map(|r| RackNodes {
                        name: r.name.clone().unwrap_or_default(),
                        nodes,
                    })
                    .collect(),
                None => vec![RackNodes {
                    name: DEFAULT_RACK.to_string(),
                    nodes,
                }],
            };
            DcNodes {
                name: dc.name.clone().unwrap_or_default(),
                racks,
            }
        })
        .collect()
}

/// The seed domain of a site: external-dns hostname (trailing dot dropped), else the policy's
/// domain for the site, else the cluster-local `<cluster>.<namespace>`.
pub fn seed_domain(
    spec: &SpecView,
    policy_domain: Option<&str>,
    cluster: &str,
    namespace: &str,
) -> SeedDomain {
    let external = spec
        .service
        .as_ref()
        .and_then(|s| s.annotations.as_ref())
        .and_then(|a| a.get(EXTERNAL_DNS_HOSTNAME_ANNOTATION))
        .map(|h| h.trim().trim_end_matches('.'))
        .filter(|h| !h.is_empty());
    if let Some(host) = external {
        return SeedDomain::ExternalDns(host.to_string());
    }
    match policy_domain
        .map(|d| d.trim().trim_end_matches('.'))
        .filter(|d| !d.is_empty())
    {
        Some(d) => SeedDomain::Policy(d.to_string()),
        None => SeedDomain::ClusterLocal(format!("{cluster}.{namespace}")),
    }
}

/// `(rack index, ordinal)` of the seeds of one DC under CassKop's rule, capped at `per_dc`.
pub fn dc_seed_ordinals(racks: &[RackNodes], per_dc: u8) -> Vec<(usize, i32)> {
    let cap = usize::from(per_dc.min(MAX_SEEDS_PER_DC));
    let mut seeds = Vec::new();
    if racks.len() >= 3 {
        for (index, rack) in racks.iter().enumerate().take(3) {
            if rack.nodes > 0 && seeds.len() < cap {
                seeds.push((index, 0));
            }
        }
        return seeds;
    }
    // One rack: up to 3 ordinals of it; two racks: up to 2 per rack, 3 in all.
    let per_rack = 4 - racks.len() as i32;
    for (index, rack) in racks.iter().enumerate() {
        let mut ordinal = 0;
        while ordinal < rack.nodes && ordinal < per_rack && seeds.len() < cap {
            seeds.push((index, ordinal));
            ordinal += 1;
        }
    }
    seeds
}

/// The seed list of the whole ring. `sites` must already be in a stable order (by name).
pub fn ring_seeds(sites: &[SiteSeedInput], per_dc: u8) -> Vec<String> {
    let mut seeds = Vec::new();
    for site in sites {
        for dc in &site.dcs {
            for (rack, ordinal) in dc_seed_ordinals(&dc.racks, per_dc) {
                seeds.push(format!(
                    "{}-{}-{}-{}.{}",
                    site.cluster,
                    dc.name,
                    dc.racks[rack].name,
                    ordinal,
                    site.domain.as_str()
                ));
            }
        }
    }
    seeds
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{DcView, RackView, ServiceView, TopologyView};

    fn racks(nodes: &[i32]) -> Vec<RackNodes> {
        nodes
            .iter()
            .enumerate()
            .map(|(i, n)| RackNodes {
                name: format!("r{}", i + 1),
                nodes: *n,
            })
            .collect()
    }

    #[test]
    fn casskop_per_dc_rule() {
        let cases: &[(&str, &[i32], u8, &[(usize, i32)])] = &[
            (
                "1 rack gives ordinals 0,1,2",
                &[5],
                3,
                &[(0, 0), (0, 1), (0, 2)],
            ),
            ("1 rack of 2 nodes gives 0,1", &[2], 3, &[(0, 0), (0, 1)]),
            ("1 rack of 1 node gives 0", &[1], 3, &[(0, 0)]),
            (
                "2 racks give 0,1 of the first and 0 of the second",
                &[3, 3],
                3,
                &[(0, 0), (0, 1), (1, 0)],
            ),
            (
                "2 racks, first with 1 node",
                &[1, 3],
                3,
                &[(0, 0), (1, 0), (1, 1)],
            ),
            ("2 racks of 1 node", &[1, 1], 3, &[(0, 0), (1, 0)]),
            (
                "3 racks give ordinal 0 of each",
                &[2, 2, 2],
                3,
                &[(0, 0), (1, 0), (2, 0)],
            ),
            (
                "4 racks give ordinal 0 of the first three",
                &[1, 1, 1, 1],
                3,
                &[(0, 0), (1, 0), (2, 0)],
            ),
            ("zero-node rack gives no seed (1 rack)", &[0], 3, &[]),
            ("zero-node rack among 2", &[0, 3], 3, &[(1, 0), (1, 1)]),
            (
                "zero-node rack among the first three",
                &[1, 0, 1, 1],
                3,
                &[(0, 0), (2, 0)],
            ),
            ("per_dc 1 caps at one seed", &[5], 1, &[(0, 0)]),
            ("per_dc 2 with 3 racks", &[1, 1, 1], 2, &[(0, 0), (1, 0)]),
            (
                "per_dc above 3 is capped at 3",
                &[5],
                9,
                &[(0, 0), (0, 1), (0, 2)],
            ),
            ("no racks, no seeds", &[], 3, &[]),
        ];
        for (name, nodes, per_dc, want) in cases {
            assert_eq!(
                dc_seed_ordinals(&racks(nodes), *per_dc),
                want.to_vec(),
                "{name}"
            );
        }
    }

    fn dc(name: &str, nodes: Option<i32>, rack_names: &[&str]) -> DcView {
        DcView {
            name: Some(name.into()),
            nodes_per_racks: nodes,
            rack: if rack_names.is_empty() {
                None
            } else {
                Some(
                    rack_names
                        .iter()
                        .map(|r| RackView {
                            name: Some((*r).into()),
                            rolling_restart: None,
                        })
                        .collect(),
                )
            },
        }
    }

    #[test]
    fn effective_topology_applies_casskop_defaults_and_dc_level_counts() {
        let cases = [
            (
                "no topology gives dc1/rack1 with spec nodes",
                SpecView {
                    nodes_per_racks: Some(2),
                    ..Default::default()
                },
                vec![DcNodes {
                    name: "dc1".into(),
                    racks: vec![RackNodes {
                        name: "rack1".into(),
                        nodes: 2,
                    }],
                }],
            ),
            (
                "no nodesPerRacks anywhere defaults to 1",
                SpecView::default(),
                vec![DcNodes {
                    name: "dc1".into(),
                    racks: vec![RackNodes {
                        name: "rack1".into(),
                        nodes: 1,
                    }],
                }],
            ),
            (
                "empty dc list is like no topology",
                SpecView {
                    topology: Some(TopologyView { dc: Some(vec![]) }),
                    ..Default::default()
                },
                vec![DcNodes {
                    name: "dc1".into(),
                    racks: vec![RackNodes {
                        name: "rack1".into(),
                        nodes: 1,
                    }],
                }],
            ),
            (
                "dc-level nodesPerRacks overrides spec-level; dc without racks gets rack1",
                SpecView {
                    nodes_per_racks: Some(1),
                    topology: Some(TopologyView {
                        dc: Some(vec![dc("a", Some(4), &["x", "y"]), dc("b", None, &[])]),
                    }),
                    ..Default::default()
                },
                vec![
                    DcNodes {
                        name: "a".into(),
                        racks: vec![
                            RackNodes {
                                name: "x".into(),
                                nodes: 4,
                            },
                            RackNodes {
                                name: "y".into(),
                                nodes: 4,
                            },
                        ],
                    },
                    DcNodes {
                        name: "b".into(),
                        racks: vec![RackNodes {
                            name: "rack1".into(),
                            nodes: 1,
                        }],
                    },
                ],
            ),
            (
                "dc-level 0 scales the dc to zero",
                SpecView {
                    nodes_per_racks: Some(3),
                    topology: Some(TopologyView {
                        dc: Some(vec![dc("a", Some(0), &["x"])]),
                    }),
                    ..Default::default()
                },
                vec![DcNodes {
                    name: "a".into(),
                    racks: vec![RackNodes {
                        name: "x".into(),
                        nodes: 0,
                    }],
                }],
            ),
        ];
        for (name, spec, want) in cases {
            assert_eq!(effective_topology(&spec), want, "{name}");
        }
    }

    fn spec_with_hostname(host: Option<&str>) -> SpecView {
        SpecView {
            service: host.map(|h| ServiceView {
                annotations: Some(
                    [(EXTERNAL_DNS_HOSTNAME_ANNOTATION.to_string(), h.to_string())].into(),
                ),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn seed_domain_sources_in_priority_order() {
        let cases = [
            (
                "external-dns hostname, trailing dot dropped",
                Some("my.zone.dns.net."),
                Some("policy.example"),
                SeedDomain::ExternalDns("my.zone.dns.net".into()),
            ),
            (
                "external-dns hostname without dot",
                Some("z.example"),
                None,
                SeedDomain::ExternalDns("z.example".into()),
            ),
            (
                "policy domain when no annotation",
                None,
                Some("eu.example."),
                SeedDomain::Policy("eu.example".into()),
            ),
            (
                "blank annotation falls through to the policy",
                Some(" "),
                Some("eu.example"),
                SeedDomain::Policy("eu.example".into()),
            ),
            (
                "cluster-local when neither",
                None,
                None,
                SeedDomain::ClusterLocal("cass.ns1".into()),
            ),
            (
                "blank policy domain falls through",
                None,
                Some(""),
                SeedDomain::ClusterLocal("cass.ns1".into()),
            ),
        ];
        for (name, host, policy, want) in cases {
            assert_eq!(
                seed_domain(&spec_with_hostname(host), policy, "cass", "ns1"),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn ring_seeds_names_pods_in_stable_order() {
        let sites = vec![
            SiteSeedInput {
                site: "a".into(),
                cluster: "cass".into(),
                domain: SeedDomain::ExternalDns("a.example".into()),
                dcs: vec![DcNodes {
                    name: "dc1".into(),
                    racks: racks(&[2]),
                }],
            },
            SiteSeedInput {
                site: "b".into(),
                cluster: "cass".into(),
                domain: SeedDomain::ClusterLocal("cass.ns".into()),
                dcs: vec![
                    DcNodes {
                        name: "dc2".into(),
                        racks: racks(&[1, 1, 1]),
                    },
                    DcNodes {
                        name: "dc3".into(),
                        racks: racks(&[3, 3]),
                    },
                ],
            },
        ];
        let want = vec![
            "cass-dc1-r1-0.a.example",
            "cass-dc1-r1-1.a.example",
            "cass-dc2-r1-0.cass.ns",
            "cass-dc2-r2-0.cass.ns",
            "cass-dc2-r3-0.cass.ns",
            "cass-dc3-r1-0.cass.ns",
            "cass-dc3-r1-1.cass.ns",
            "cass-dc3-r2-0.cass.ns",
        ];
        assert_eq!(ring_seeds(&sites, 3), want);
        assert_eq!(
            ring_seeds(&sites, 3),
            ring_seeds(&sites.clone(), 3),
            "same input, same list"
        );
    }
}
