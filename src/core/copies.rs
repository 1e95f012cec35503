//! Which Secrets and ConfigMaps (`spec.copyToSites`) to create, update, leave or delete at one
//! site, from the sources in the management cluster, what the site holds and the UIDs the ring
//! recorded (no I/O). Only objects their owner opted in are copied; only objects the ring
//! created (recorded UID) are ever updated or deleted.

use crate::api::{CopiedObject, CopyKind, CopyToSites};
use crate::labels::COPY_TO_SITES_LABEL;

/// A source object in the MultiCasskop's namespace, as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// Its UID (the site may be the management cluster itself: then the object found there is
    /// the source, and there is nothing to copy).
    pub uid: String,
    /// Carries `multicasskop.db.orange.com/copy-to-sites=true`.
    pub opted_in: bool,
    /// Digest of its content (type and data).
    pub digest: String,
}

/// The object of the same name at the site.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AtSite {
    /// Its UID.
    pub uid: String,
    /// Digest of its content.
    pub digest: String,
}

/// What to do with one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CopyAction {
    /// Absent at the site: create it.
    Create,
    /// Ours, content differs: replace its content.
    Update,
    /// Ours and current.
    InSync,
    /// Ours but no longer listed (or its source lost the opt-in label): delete it.
    Delete,
    /// Not copied: the reason (names only, never content).
    Refused(String),
}

/// The decision for one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyStep {
    /// Kind.
    pub kind: CopyKind,
    /// Name.
    pub name: String,
    /// What to do.
    pub action: CopyAction,
}

/// The objects `spec.copyToSites` names, kind then name, without duplicates.
pub fn wanted(copy: Option<&CopyToSites>) -> Vec<(CopyKind, String)> {
    let mut out: Vec<(CopyKind, String)> = copy
        .map(|c| {
            c.secrets
                .iter()
                .map(|n| (CopyKind::Secret, n.clone()))
                .chain(
                    c.config_maps
                        .iter()
                        .map(|n| (CopyKind::ConfigMap, n.clone())),
                )
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out.dedup();
    out
}

/// Decides every object: those `wanted` and those `recorded` at the site. `source` and
/// `at_site` look an object up by kind and name.
pub fn plan_copies(
    wanted: &[(CopyKind, String)],
    recorded: &[CopiedObject],
    source: impl Fn(CopyKind, &str) -> Option<Source>,
    at_site: impl Fn(CopyKind, &str) -> Option<AtSite>,
    site: &str,
) -> Vec<CopyStep> {
    let ours = |kind: CopyKind, name: &str, found: &AtSite| {
        recorded
            .iter()
            .any(|r| r.kind == kind && r.name == name && r.uid == found.uid)
    };
    let mut steps = Vec::new();
    for (kind, name) in wanted {
        let (kind, name) = (*kind, name.as_str());
        let found = at_site(kind, name);
        let action = match (source(kind, name), &found) {
            (None, Some(f)) if ours(kind, name, f) => CopyAction::Delete,
            (None, _) => CopyAction::Refused(format!(
                "{kind} {name} named in spec.copyToSites does not exist in the MultiCasskop's namespace; create it or remove it from the list"
            )),
            (Some(s), Some(f)) if !s.opted_in && ours(kind, name, f) => CopyAction::Delete,
            (Some(s), _) if !s.opted_in => CopyAction::Refused(format!(
                "{kind} {name} is not copied: it lacks the label {COPY_TO_SITES_LABEL}=true, which its owner sets to allow copying it to the sites"
            )),
            (Some(_), None) => CopyAction::Create,
            (Some(s), Some(f)) if s.uid == f.uid => CopyAction::InSync,
            (Some(s), Some(f)) if ours(kind, name, f) => {
                if s.digest == f.digest {
                    CopyAction::InSync
                } else {
                    CopyAction::Update
                }
            }
            (Some(_), Some(_)) => CopyAction::Refused(format!(
                "{kind} {name} already exists at site {site} and was not created by this ring: it is never overwritten; delete or rename it there"
            )),
        };
        steps.push(CopyStep {
            kind,
            name: name.to_string(),
            action,
        });
    }
    for r in recorded {
        if wanted.iter().any(|(k, n)| *k == r.kind && *n == r.name) {
            continue;
        }
        let action = match at_site(r.kind, &r.name) {
            Some(f) if f.uid == r.uid => CopyAction::Delete,
            // Gone, or replaced by someone else's object: nothing of ours to delete.
            _ => CopyAction::InSync,
        };
        if action == CopyAction::Delete {
            steps.push(CopyStep {
                kind: r.kind,
                name: r.name.clone(),
                action,
            });
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(opted_in: bool, digest: &str) -> Option<Source> {
        Some(Source {
            uid: "source".into(),
            opted_in,
            digest: digest.into(),
        })
    }

    fn site(uid: &str, digest: &str) -> Option<AtSite> {
        Some(AtSite {
            uid: uid.into(),
            digest: digest.into(),
        })
    }

    fn recorded(uid: &str) -> Vec<CopiedObject> {
        vec![CopiedObject {
            kind: CopyKind::Secret,
            name: "pull".into(),
            uid: uid.into(),
        }]
    }

    #[test]
    fn one_wanted_secret() {
        let cases: Vec<(
            &str,
            Option<Source>,
            Option<AtSite>,
            Vec<CopiedObject>,
            &str,
        )> = vec![
            (
                "absent at the site: created",
                src(true, "d1"),
                None,
                vec![],
                "Create",
            ),
            (
                "ours, same content",
                src(true, "d1"),
                site("u1", "d1"),
                recorded("u1"),
                "InSync",
            ),
            (
                "ours, source changed",
                src(true, "d2"),
                site("u1", "d1"),
                recorded("u1"),
                "Update",
            ),
            (
                "someone else's: never overwritten",
                src(true, "d1"),
                site("u9", "d1"),
                vec![],
                "not created by this ring",
            ),
            (
                "replaced by someone else: not ours",
                src(true, "d2"),
                site("u9", "d1"),
                recorded("u1"),
                "not created by this ring",
            ),
            (
                "not opted in",
                src(false, "d1"),
                None,
                vec![],
                "lacks the label",
            ),
            (
                "opt-in withdrawn: our copy goes",
                src(false, "d1"),
                site("u1", "d1"),
                recorded("u1"),
                "Delete",
            ),
            ("source missing", None, None, vec![], "does not exist"),
            (
                "the site is the management cluster: the source itself",
                src(true, "d1"),
                site("source", "d1"),
                vec![],
                "InSync",
            ),
            (
                "source deleted: our copy goes",
                None,
                site("u1", "d1"),
                recorded("u1"),
                "Delete",
            ),
        ];
        for (name, source, at, rec, want) in cases {
            let steps = plan_copies(
                &[(CopyKind::Secret, "pull".into())],
                &rec,
                |_, _| source.clone(),
                |_, _| at.clone(),
                "b",
            );
            assert_eq!(steps.len(), 1, "{name}");
            let got = match &steps[0].action {
                CopyAction::Refused(m) => m.clone(),
                other => format!("{other:?}"),
            };
            assert!(got.contains(want), "{name}: {got}");
        }
    }

    #[test]
    fn recorded_but_no_longer_listed() {
        let cases = [
            ("ours: deleted", site("u1", "d"), 1),
            ("gone already", None, 0),
            ("someone else's now: left alone", site("u9", "d"), 0),
        ];
        for (name, at, want) in cases {
            let steps = plan_copies(&[], &recorded("u1"), |_, _| None, |_, _| at.clone(), "b");
            assert_eq!(steps.len(), want, "{name}");
            assert!(
                steps.iter().all(|s| s.action == CopyAction::Delete),
                "{name}"
            );
        }
    }

    #[test]
    fn wanted_lists_each_once() {
        let copy = CopyToSites {
            secrets: vec!["b".into(), "a".into(), "a".into()],
            config_maps: vec!["a".into()],
        };
        assert_eq!(
            wanted(Some(&copy)),
            vec![
                (CopyKind::Secret, "a".into()),
                (CopyKind::Secret, "b".into()),
                (CopyKind::ConfigMap, "a".into())
            ]
        );
        assert!(wanted(None).is_empty());
    }
}
