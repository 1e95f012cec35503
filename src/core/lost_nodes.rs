//! Decides how a lost site's Cassandra nodes are removed from the ring (pure): one node at a
//! time, through CassKop's `remove` pod operation on a pod of a surviving site, retried a bounded
//! number of times; and reads the node records CassKop reports (`status.cassandraNodeStatus`).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::api::NodeRecord;
use crate::labels::pod_operation;

/// How many times a failed `remove` is asked again before the site is `Failed`.
pub const REMOVE_RETRIES: u32 = 2;
/// The pod operation that removes a node of another DC from the ring.
pub const REMOVE: &str = "remove";

/// The nodes of a CassandraCluster's `status.cassandraNodeStatus` (`{pod: {nodeIp, hostId}}`),
/// by pod name.
pub fn node_records(status: &Value) -> Vec<NodeRecord> {
    let mut nodes: Vec<NodeRecord> = status
        .get("cassandraNodeStatus")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(pod, n)| NodeRecord {
                    pod: pod.clone(),
                    ip: n["nodeIp"].as_str().unwrap_or_default().to_string(),
                    host_id: n["hostId"].as_str().unwrap_or_default().to_string(),
                    ..Default::default()
                })
                .collect()
        })
        .unwrap_or_default();
    nodes.sort_by(|a, b| a.pod.cmp(&b.pod));
    nodes
}

/// CassKop's `remove` argument for a node: `<pod>_<ip>` (`[Name][_IP]`).
pub fn remove_argument(node: &NodeRecord) -> String {
    format!("{}_{}", node.pod, node.ip)
}

/// A pod of the surviving site, as listed there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SurvivorPod {
    /// Pod name.
    pub name: String,
    /// Running and not being deleted.
    pub running: bool,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
}

impl SurvivorPod {
    fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }

    fn removing(&self, argument: &str) -> bool {
        self.label(pod_operation::NAME) == Some(REMOVE)
            && self.label(pod_operation::ARGUMENT) == Some(argument)
    }

    fn busy(&self) -> bool {
        matches!(
            self.label(pod_operation::STATUS),
            Some(pod_operation::TO_DO | pod_operation::ONGOING)
        )
    }
}

/// The names a lost site's nodes may have. CassKop names pods `<cluster>-<dc>-<rack>-<n>`, and
/// its `remove` deletes the volume `data-<pod>` at the site that runs it: a recorded name (it comes
/// from the lost site's CassandraCluster status, written by anyone who could write there) that
/// is not the lost cluster's, or that the surviving site's own pods could have, is refused.
#[derive(Debug, Clone, Copy)]
pub struct LostNaming<'a> {
    /// The lost site's CassandraCluster name.
    pub lost_cluster: &'a str,
    /// The surviving site's CassandraCluster name.
    pub survivor_cluster: &'a str,
    /// The surviving site's DC names.
    pub survivor_dcs: &'a [String],
}

impl LostNaming<'_> {
    /// Why `pod` cannot be a node of the lost site, if it cannot.
    pub fn refusal(&self, pod: &str) -> Option<String> {
        let label = !pod.is_empty()
            && pod.len() <= 63
            && pod
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !pod.starts_with('-')
            && !pod.ends_with('-');
        if !label {
            return Some(format!(
                "recorded node {pod:?} is not a pod name; not asked"
            ));
        }
        if !pod.starts_with(&format!("{}-", self.lost_cluster)) {
            return Some(format!(
                "recorded node {pod} is not a pod of the lost CassandraCluster {}; not asked",
                self.lost_cluster
            ));
        }
        self.survivor_dcs
            .iter()
            .find(|dc| pod.starts_with(&format!("{}-{dc}-", self.survivor_cluster)))
            .map(|dc| {
                format!(
                    "recorded node {pod} is named like a pod of DC {dc} at the surviving site: CassKop's remove would delete its volume there; not asked"
                )
            })
    }
}

/// What to do next for a lost site's nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemovalStep {
    /// Every recorded node is removed.
    Finished,
    /// CassKop reports node `node` removed: mark it (the next node is asked only once this is
    /// recorded, so a lost status write never repeats a removal).
    Removed { node: usize, pod: String },
    /// Label `pod` with `remove` of node `node` (attempt `attempt`).
    Label {
        node: usize,
        pod: String,
        argument: String,
        attempt: u32,
    },
    /// A pod operation runs, or no pod can take one yet: look again later.
    Wait { node: usize, why: String },
    /// Give up: node `node` cannot be removed.
    Failed { node: usize, why: String },
}

/// The next step for `nodes` (as recorded in status) given the surviving site's pods.
pub fn next_removal(
    nodes: &[NodeRecord],
    pods: &[SurvivorPod],
    naming: LostNaming<'_>,
    retries: u32,
) -> RemovalStep {
    let Some((i, node)) = nodes.iter().enumerate().find(|(_, n)| !n.removed) else {
        return RemovalStep::Finished;
    };
    if let Some(why) = naming.refusal(&node.pod) {
        return RemovalStep::Failed { node: i, why };
    }
    if node.ip.is_empty() {
        return RemovalStep::Failed {
            node: i,
            why: format!(
                "node {} has no recorded IP: CassKop's remove needs <pod>_<ip>",
                node.pod
            ),
        };
    }
    if pods.iter().any(|p| p.name == node.pod) {
        return RemovalStep::Failed {
            node: i,
            why: format!(
                "a pod named {} exists at the surviving site: CassKop's remove would delete it and its volume there; not asked",
                node.pod
            ),
        };
    }
    let argument = remove_argument(node);
    if let Some(pod) = pods.iter().find(|p| p.removing(&argument)) {
        match pod.label(pod_operation::STATUS) {
            Some(pod_operation::DONE) => {
                return RemovalStep::Removed {
                    node: i,
                    pod: pod.name.clone(),
                };
            }
            Some(pod_operation::ERROR) if node.attempts > retries => {
                return RemovalStep::Failed {
                    node: i,
                    why: format!(
                        "remove of node {} ({}) failed on pod {} after {} attempts",
                        node.pod, node.ip, pod.name, node.attempts
                    ),
                };
            }
            Some(pod_operation::ERROR) => {
                return RemovalStep::Label {
                    node: i,
                    pod: pod.name.clone(),
                    argument,
                    attempt: node.attempts + 1,
                };
            }
            status => {
                return RemovalStep::Wait {
                    node: i,
                    why: format!(
                        "remove of node {} on pod {} is {}",
                        node.pod,
                        pod.name,
                        status.unwrap_or("unlabelled")
                    ),
                };
            }
        }
    }
    if let Some(busy) = pods.iter().find(|p| p.busy()) {
        return RemovalStep::Wait {
            node: i,
            why: format!(
                "pod {} runs another operation ({})",
                busy.name,
                busy.label(pod_operation::NAME).unwrap_or("?")
            ),
        };
    }
    match pods
        .iter()
        .filter(|p| p.running)
        .min_by(|a, b| a.name.cmp(&b.name))
    {
        Some(pod) => RemovalStep::Label {
            node: i,
            pod: pod.name.clone(),
            argument,
            attempt: node.attempts + 1,
        },
        None => RemovalStep::Wait {
            node: i,
            why: "no running pod at the surviving site".into(),
        },
    }
}

/// "removed 2/3 nodes".
pub fn progress(nodes: &[NodeRecord]) -> String {
    format!(
        "removed {}/{} nodes",
        nodes.iter().filter(|n| n.removed).count(),
        nodes.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(pod: &str, ip: &str, removed: bool, attempts: u32) -> NodeRecord {
        NodeRecord {
            pod: pod.into(),
            ip: ip.into(),
            host_id: format!("h-{pod}"),
            removed,
            attempts,
        }
    }

    fn pod(name: &str, labels: &[(&str, &str)]) -> SurvivorPod {
        SurvivorPod {
            name: name.into(),
            running: true,
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
        }
    }

    fn removing(name: &str, argument: &str, status: &str) -> SurvivorPod {
        pod(
            name,
            &[
                (pod_operation::NAME, REMOVE),
                (pod_operation::ARGUMENT, argument),
                (pod_operation::STATUS, status),
            ],
        )
    }

    #[test]
    fn node_records_from_casskop_status() {
        let status = json!({ "cassandraNodeStatus": {
            "c-dc3-rack1-1": { "nodeIp": "10.0.0.2", "hostId": "h2" },
            "c-dc3-rack1-0": { "nodeIp": "10.0.0.1", "hostId": "h1" }
        }});
        assert_eq!(
            node_records(&status),
            vec![
                NodeRecord {
                    pod: "c-dc3-rack1-0".into(),
                    ip: "10.0.0.1".into(),
                    host_id: "h1".into(),
                    ..Default::default()
                },
                NodeRecord {
                    pod: "c-dc3-rack1-1".into(),
                    ip: "10.0.0.2".into(),
                    host_id: "h2".into(),
                    ..Default::default()
                },
            ]
        );
        assert!(node_records(&json!({})).is_empty());
        assert_eq!(
            remove_argument(&node("p", "1.2.3.4", false, 0)),
            "p_1.2.3.4"
        );
    }

    #[test]
    fn one_node_at_a_time() {
        let lost = vec![
            node("l-0", "10.0.0.1", false, 0),
            node("l-1", "10.0.0.2", false, 0),
        ];
        let half = vec![
            node("l-0", "10.0.0.1", true, 1),
            node("l-1", "10.0.0.2", false, 0),
        ];
        let failing = vec![node("l-0", "10.0.0.1", false, REMOVE_RETRIES + 1)];
        let survivors = vec![pod("s-1", &[]), pod("s-0", &[])];
        let cases: Vec<(&str, Vec<NodeRecord>, Vec<SurvivorPod>, RemovalStep)> = vec![
            (
                "first node on the first running pod",
                lost.clone(),
                survivors.clone(),
                RemovalStep::Label {
                    node: 0,
                    pod: "s-0".into(),
                    argument: "l-0_10.0.0.1".into(),
                    attempt: 1,
                },
            ),
            (
                "asked: wait for it",
                lost.clone(),
                vec![removing("s-0", "l-0_10.0.0.1", "Ongoing"), pod("s-1", &[])],
                RemovalStep::Wait {
                    node: 0,
                    why: "remove of node l-0 on pod s-0 is Ongoing".into(),
                },
            ),
            (
                "done: mark it, do not ask the next one yet",
                lost.clone(),
                vec![removing("s-0", "l-0_10.0.0.1", "Done")],
                RemovalStep::Removed {
                    node: 0,
                    pod: "s-0".into(),
                },
            ),
            (
                "marked: the next node, on the same pod",
                half.clone(),
                vec![removing("s-0", "l-0_10.0.0.1", "Done"), pod("s-1", &[])],
                RemovalStep::Label {
                    node: 1,
                    pod: "s-0".into(),
                    argument: "l-1_10.0.0.2".into(),
                    attempt: 1,
                },
            ),
            (
                "another operation runs at the site: wait",
                half.clone(),
                vec![
                    pod("s-0", &[]),
                    pod(
                        "s-1",
                        &[(pod_operation::NAME, "cleanup"), (pod_operation::STATUS, "ToDo")],
                    ),
                ],
                RemovalStep::Wait {
                    node: 1,
                    why: "pod s-1 runs another operation (cleanup)".into(),
                },
            ),
            (
                "error: asked again on the same pod",
                vec![node("l-0", "10.0.0.1", false, 1)],
                vec![removing("s-1", "l-0_10.0.0.1", "Error")],
                RemovalStep::Label {
                    node: 0,
                    pod: "s-1".into(),
                    argument: "l-0_10.0.0.1".into(),
                    attempt: 2,
                },
            ),
            (
                "error after every retry: failed, naming the node",
                failing.clone(),
                vec![removing("s-1", "l-0_10.0.0.1", "Error")],
                RemovalStep::Failed {
                    node: 0,
                    why: format!(
                        "remove of node l-0 (10.0.0.1) failed on pod s-1 after {} attempts",
                        REMOVE_RETRIES + 1
                    ),
                },
            ),
            (
                "a pod of that name lives at the surviving site: refused",
                lost.clone(),
                vec![pod("l-0", &[])],
                RemovalStep::Failed {
                    node: 0,
                    why: "a pod named l-0 exists at the surviving site: CassKop's remove would delete it and its volume there; not asked".into(),
                },
            ),
            (
                "no running pod: wait",
                lost.clone(),
                vec![SurvivorPod {
                    running: false,
                    ..pod("s-0", &[])
                }],
                RemovalStep::Wait {
                    node: 0,
                    why: "no running pod at the surviving site".into(),
                },
            ),
            (
                "everything removed",
                vec![node("l-0", "10.0.0.1", true, 1)],
                survivors.clone(),
                RemovalStep::Finished,
            ),
        ];
        for (name, nodes, pods, want) in cases {
            assert_eq!(
                next_removal(&nodes, &pods, naming(), REMOVE_RETRIES),
                want,
                "{name}"
            );
        }
        assert_eq!(progress(&half), "removed 1/2 nodes");
    }

    const SURVIVOR_DCS: &[String] = &[];

    fn naming() -> LostNaming<'static> {
        LostNaming {
            lost_cluster: "l",
            survivor_cluster: "s",
            survivor_dcs: SURVIVOR_DCS,
        }
    }

    #[test]
    fn names_a_lost_node_may_have() {
        let dcs = vec!["dc1".to_string()];
        let naming = LostNaming {
            lost_cluster: "cass",
            survivor_cluster: "cass",
            survivor_dcs: &dcs,
        };
        let cases = [
            ("a pod of the lost DC", "cass-dc2-rack1-0", None),
            (
                "another cluster's pod",
                "other-dc2-rack1-0",
                Some(
                    "recorded node other-dc2-rack1-0 is not a pod of the lost CassandraCluster cass; not asked",
                ),
            ),
            (
                "named like a surviving DC's pod",
                "cass-dc1-rack1-3",
                Some(
                    "recorded node cass-dc1-rack1-3 is named like a pod of DC dc1 at the surviving site: CassKop's remove would delete its volume there; not asked",
                ),
            ),
            (
                "not a pod name",
                "cass-dc2_x",
                Some("recorded node \"cass-dc2_x\" is not a pod name; not asked"),
            ),
            (
                "empty",
                "",
                Some("recorded node \"\" is not a pod name; not asked"),
            ),
        ];
        for (name, pod, want) in cases {
            assert_eq!(naming.refusal(pod).as_deref(), want, "{name}");
        }
        let nodes = vec![node("other-dc2-rack1-0", "10.0.0.1", false, 0)];
        assert!(
            matches!(
                next_removal(
                    &nodes,
                    &[pod("cass-dc1-rack1-0", &[])],
                    naming,
                    REMOVE_RETRIES
                ),
                RemovalStep::Failed { node: 0, .. }
            ),
            "a refused name is never asked"
        );
    }
}
