//! The keyspace replication statements a user runs when a site joins or leaves a ring that
//! holds data, and the acknowledgement that they were run. multi-casskop runs no CQL: these are
//! shown in status, Events and `multi-casskop status`.

use std::collections::BTreeSet;

use crate::core::seeds::DcNodes;

/// Keyspaces every DC must replicate, whatever the ring declares.
pub const SYSTEM_KEYSPACES: [&str; 3] = ["system_auth", "system_distributed", "system_traces"];

/// Replication factor of a DC when the policy names none: 3, or fewer when the DC is smaller.
pub const DEFAULT_REPLICATION_FACTOR: u8 = 3;

/// One site of the ring and its DCs (in rollout order).
#[derive(Debug, Clone, PartialEq)]
pub struct SiteDcs {
    /// Site name.
    pub site: String,
    /// Its DCs with their racks and node counts.
    pub dcs: Vec<DcNodes>,
}

/// The replication factor written for a DC.
pub fn replication_factor(dc: &DcNodes, policy: Option<u8>) -> u32 {
    let nodes: i32 = dc.racks.iter().map(|r| r.nodes.max(0)).sum();
    match policy {
        Some(rf) => u32::from(rf),
        None => u32::from(DEFAULT_REPLICATION_FACTOR).min(u32::try_from(nodes).unwrap_or(0).max(1)),
    }
}

/// `ALTER KEYSPACE` statements that make every keyspace replicate to exactly the DCs of
/// `sites` (the ring after the change: joining sites included, leaving sites left out).
/// Keyspaces: the system ones, then `keyspaces` in the given order, without repeats.
pub fn statements(sites: &[SiteDcs], keyspaces: &[String], rf: Option<u8>) -> Vec<String> {
    let mut replication = String::from("{'class': 'NetworkTopologyStrategy'");
    for dc in sites.iter().flat_map(|s| &s.dcs) {
        replication.push_str(&format!(", '{}': {}", dc.name, replication_factor(dc, rf)));
    }
    replication.push('}');
    let mut seen = BTreeSet::new();
    SYSTEM_KEYSPACES
        .iter()
        .map(|k| (*k).to_string())
        .chain(keyspaces.iter().cloned())
        .filter(|k| seen.insert(k.clone()))
        .map(|k| {
            format!(
                "ALTER KEYSPACE {} WITH replication = {replication};",
                quoted(&k)
            )
        })
        .collect()
}

/// A keyspace name as CQL reads it: lower-case names as is, others double-quoted.
fn quoted(keyspace: &str) -> String {
    if keyspace
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        keyspace.to_string()
    } else {
        format!("\"{}\"", keyspace.replace('"', "\"\""))
    }
}

/// The command that acknowledges the statements for `site`: the annotation keeps the sites
/// already acknowledged and adds this one.
pub fn acknowledge_command(
    ring_namespace: &str,
    ring_name: &str,
    annotation: &str,
    already: &BTreeSet<String>,
    site: &str,
) -> String {
    let mut sites = already.clone();
    sites.insert(site.to_string());
    let value = sites.into_iter().collect::<Vec<_>>().join(",");
    format!(
        "kubectl annotate multicasskop {ring_name} -n {ring_namespace} --overwrite {annotation}={value}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::seeds::RackNodes;

    fn dc(name: &str, racks: &[i32]) -> DcNodes {
        DcNodes {
            name: name.into(),
            racks: racks
                .iter()
                .enumerate()
                .map(|(i, n)| RackNodes {
                    name: format!("rack{}", i + 1),
                    nodes: *n,
                })
                .collect(),
        }
    }

    fn site(name: &str, dcs: Vec<DcNodes>) -> SiteDcs {
        SiteDcs {
            site: name.into(),
            dcs,
        }
    }

    #[test]
    fn statements_name_every_dc_of_the_ring_after_the_change() {
        let ring = [
            site("eu", vec![dc("dc1", &[2, 2])]),
            site("us", vec![dc("dc2", &[1]), dc("dc3", &[0])]),
        ];
        let cases: [(&str, &[SiteDcs], Vec<String>, Option<u8>, Vec<String>); 4] = [
            (
                "default factor: 3, or the DC's node count (at least 1)",
                &ring,
                vec![],
                None,
                SYSTEM_KEYSPACES
                    .iter()
                    .map(|k| format!("ALTER KEYSPACE {k} WITH replication = {{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc2': 1, 'dc3': 1}};"))
                    .collect(),
            ),
            (
                "the policy's factor and user keyspaces, repeats dropped, mixed case quoted",
                &ring[..1],
                vec!["app".into(), "Orders".into(), "system_auth".into()],
                Some(2),
                ["system_auth", "system_distributed", "system_traces", "app", "\"Orders\""]
                    .iter()
                    .map(|k| format!("ALTER KEYSPACE {k} WITH replication = {{'class': 'NetworkTopologyStrategy', 'dc1': 2}};"))
                    .collect(),
            ),
            (
                "a leaving site is simply not in the list",
                &ring[1..],
                vec![],
                Some(1),
                SYSTEM_KEYSPACES
                    .iter()
                    .map(|k| format!("ALTER KEYSPACE {k} WITH replication = {{'class': 'NetworkTopologyStrategy', 'dc2': 1, 'dc3': 1}};"))
                    .collect(),
            ),
            (
                "no site: only the class (nothing replicates)",
                &[],
                vec![],
                None,
                SYSTEM_KEYSPACES
                    .iter()
                    .map(|k| format!("ALTER KEYSPACE {k} WITH replication = {{'class': 'NetworkTopologyStrategy'}};"))
                    .collect(),
            ),
        ];
        for (name, sites, keyspaces, rf, want) in cases {
            assert_eq!(statements(sites, &keyspaces, rf), want, "{name}");
        }
    }

    #[test]
    fn acknowledge_command_keeps_earlier_sites() {
        let already: BTreeSet<String> = ["a".to_string()].into();
        assert_eq!(
            acknowledge_command("ns", "ring", "x/y", &already, "c"),
            "kubectl annotate multicasskop ring -n ns --overwrite x/y=a,c"
        );
        assert_eq!(
            acknowledge_command("ns", "ring", "x/y", &BTreeSet::new(), "c"),
            "kubectl annotate multicasskop ring -n ns --overwrite x/y=c"
        );
    }
}
