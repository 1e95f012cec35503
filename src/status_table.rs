//! Text tables of MultiCasskop status, for `multi-casskop status` and the demo: one line per
//! ring (like `kubectl get multicasskops`) and one line per site.

use std::fmt::Write as _;

use kube::ResourceExt;

use crate::api::MultiCasskop;

fn table(rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..rows.first().map_or(0, Vec::len))
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("   ").trim_end());
    }
    out
}

/// `NAMESPACE NAME READY PHASE SEEDS`, one line per MultiCasskop.
pub fn rings(mcs: &[MultiCasskop]) -> String {
    let mut rows = vec![
        ["NAMESPACE", "NAME", "READY", "PHASE", "SEEDS"]
            .map(String::from)
            .to_vec(),
    ];
    for mc in mcs {
        let status = mc.status.clone().unwrap_or_default();
        rows.push(vec![
            mc.namespace().unwrap_or_default(),
            mc.name_any(),
            status.ready_sites.unwrap_or_else(|| "-".into()),
            status.phase.unwrap_or_else(|| "-".into()),
            status.seedlist.len().to_string(),
        ]);
    }
    table(&rows)
}

/// One line per site of one MultiCasskop, then its seed list and conditions.
pub fn sites(mc: &MultiCasskop) -> String {
    let status = mc.status.clone().unwrap_or_default();
    let mut rows = vec![
        [
            "SITE",
            "STATE",
            "REACHABLE",
            "CASSKOP",
            "LAST ACTION",
            "OBJECT",
            "MESSAGE",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for s in &status.sites {
        rows.push(vec![
            s.site.clone(),
            s.state.to_string(),
            if s.reachable {
                "yes".into()
            } else {
                "no".into()
            },
            s.phase.clone().unwrap_or_else(|| "-".into()),
            match (&s.last_cluster_action, &s.last_cluster_action_status) {
                (Some(a), Some(st)) => format!("{a}/{st}"),
                _ => "-".into(),
            },
            format!("{}/{}", s.namespace, s.name),
            s.message.clone().unwrap_or_default(),
        ]);
    }
    let mut out = table(&rows);
    let _ = writeln!(
        out,
        "seeds: {}",
        if status.seedlist.is_empty() {
            "-".into()
        } else {
            status.seedlist.join(",")
        }
    );
    for c in &status.conditions {
        let _ = writeln!(
            out,
            "{}={} ({}): {}",
            c.type_, c.status, c.reason, c.message
        );
    }
    for s in &status.sites {
        if let Some(m) = &s.membership {
            out.push_str(&membership(&s.site, m));
        }
    }
    out
}

/// A site joining or leaving: the statements to run, how to acknowledge, the rebuild's progress.
fn membership(site: &str, m: &crate::api::MembershipStatus) -> String {
    let mut out = String::new();
    let change = match m.change {
        crate::api::MembershipChange::Join => "joins",
        crate::api::MembershipChange::Leave => "leaves",
    };
    let _ = writeln!(out, "\nsite {site} {change} the ring");
    if !m.statements.is_empty() {
        let done = if m.acknowledged {
            " (acknowledged)"
        } else {
            ", once, at any node"
        };
        let _ = writeln!(out, "  run{done}:");
        for statement in &m.statements {
            let _ = writeln!(out, "    {statement}");
        }
    }
    if let Some(command) = m.acknowledge_with.as_ref().filter(|_| !m.acknowledged) {
        let _ = writeln!(out, "  then acknowledge:\n    {command}");
    }
    if let Some(r) = &m.rebuild {
        let _ = writeln!(
            out,
            "  rebuild from {}: {}/{}",
            r.source_dc, r.done, r.total
        );
        for p in &r.pods {
            let _ = writeln!(
                out,
                "    {}: {} (attempts: {})",
                p.pod,
                p.status.as_deref().unwrap_or("-"),
                p.attempts
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{MultiCasskopSpec, MultiCasskopStatus, SiteStatus};

    #[test]
    fn tables_align_and_show_every_site() {
        let mut mc = MultiCasskop::new("ring", MultiCasskopSpec::default());
        mc.metadata.namespace = Some("demo".into());
        mc.status = Some(MultiCasskopStatus {
            phase: Some("Progressing".into()),
            ready_sites: Some("1/2".into()),
            seedlist: vec!["s1".into(), "s2".into()],
            sites: vec![
                SiteStatus {
                    site: "eu".into(),
                    state: crate::api::SiteState::Ready,
                    reachable: true,
                    phase: Some("Running".into()),
                    last_cluster_action: Some("Initializing".into()),
                    last_cluster_action_status: Some("Done".into()),
                    namespace: "demo".into(),
                    name: "cass".into(),
                    message: Some("ready".into()),
                    ..Default::default()
                },
                SiteStatus {
                    site: "us-east".into(),
                    state: crate::api::SiteState::Queued,
                    namespace: "demo".into(),
                    name: "cass".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        });
        assert_eq!(
            rings(&[mc.clone()]),
            "NAMESPACE   NAME   READY   PHASE         SEEDS\ndemo        ring   1/2     Progressing   2\n"
        );
        let sites = sites(&mc);
        let lines: Vec<&str> = sites.lines().collect();
        assert_eq!(
            lines[0],
            "SITE      STATE    REACHABLE   CASSKOP   LAST ACTION         OBJECT      MESSAGE"
        );
        assert_eq!(
            lines[1],
            "eu        Ready    yes         Running   Initializing/Done   demo/cass   ready"
        );
        assert_eq!(
            lines[2],
            "us-east   Queued   no          -         -                   demo/cass"
        );
        assert_eq!(lines[3], "seeds: s1,s2");
    }

    #[test]
    fn a_joining_site_shows_its_statements_and_rebuild() {
        use crate::api::{MembershipStatus, PodOperationStatus, RebuildStatus};
        let mut mc = MultiCasskop::new("ring", MultiCasskopSpec::default());
        let join = MembershipStatus {
            statements: vec!["ALTER KEYSPACE system_auth WITH replication = {'dc4': 1};".into()],
            acknowledge_with: Some(
                "kubectl annotate multicasskop ring -n demo --overwrite k=d".into(),
            ),
            ..Default::default()
        };
        let site = |m: MembershipStatus| SiteStatus {
            site: "site-d".into(),
            membership: Some(m),
            ..Default::default()
        };
        mc.status = Some(MultiCasskopStatus {
            sites: vec![site(join.clone())],
            ..Default::default()
        });
        let text = sites(&mc);
        assert!(
            text.contains("site site-d joins the ring\n  run, once, at any node:\n    ALTER KEYSPACE system_auth"),
            "{text}"
        );
        assert!(
            text.contains("then acknowledge:\n    kubectl annotate multicasskop ring"),
            "{text}"
        );
        mc.status = Some(MultiCasskopStatus {
            sites: vec![site(MembershipStatus {
                acknowledged: true,
                rebuild: Some(RebuildStatus {
                    source_dc: "dc1".into(),
                    done: 1,
                    total: 3,
                    pods: vec![PodOperationStatus {
                        pod: "p0".into(),
                        status: Some("Done".into()),
                        attempts: 2,
                    }],
                }),
                ..join
            })],
            ..Default::default()
        });
        let text = sites(&mc);
        assert!(!text.contains("then acknowledge"), "{text}");
        assert!(
            text.contains("rebuild from dc1: 1/3\n    p0: Done (attempts: 2)"),
            "{text}"
        );
    }
}
