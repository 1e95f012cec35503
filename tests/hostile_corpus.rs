//! The hostile corpus (`tests/hostile/*.yaml`) through the controller's own decode and planning
//! path, without any cluster: every object is either undecodable (reported on itself), invalid
//! (nothing written) or valid with the warning its header names. `tests/hostile.rs` applies the
//! same files to real API servers and a running controller.
//!
//! Each file starts with three comment lines: what it tries, what the API server says
//! (`apiserver: accepted` or `apiserver: rejected: <message fragment>`), and what the controller
//! does with the object if it is stored (`controller: invalid|undecodable|warning: <fragment>`,
//! or `n/a` when the API server cannot store it at all). The body is the object as JSON.

mod common;

use common::corpus::{KNOWN_SITES, corpus};
use multi_casskop::api::guarded::{GuardedMultiCasskop, decode};
use multi_casskop::core::federation::{FederationInput, plan_federation};

#[test]
fn every_hostile_object_is_handled_by_the_pure_path() {
    let corpus = corpus();
    assert!(corpus.len() >= 40, "{} files", corpus.len());
    let known: Vec<String> = KNOWN_SITES.iter().map(|s| s.to_string()).collect();
    let mut handled = 0;
    for h in &corpus {
        let (kind, fragment) = h.controller.split_once(": ").unwrap_or((&h.controller, ""));
        if kind == "n/a" {
            assert!(
                h.apiserver.starts_with("rejected"),
                "{}: n/a only for objects the API server cannot store",
                h.file
            );
            handled += 1;
            continue;
        }
        let started = std::time::Instant::now();
        let guarded = decode(&h.body);
        let verdict = match &guarded {
            GuardedMultiCasskop::Undecodable { error, .. } => ("undecodable", vec![error.clone()]),
            GuardedMultiCasskop::Decoded(compact) => {
                let mc = compact.decode().expect("a decoded object decodes again");
                let name = mc.metadata.name.clone().unwrap_or_default();
                match plan_federation(FederationInput {
                    name: &name,
                    namespace: "team-a",
                    spec: &mc.spec,
                    known_sites: Some(&known),
                }) {
                    Err(findings) => (
                        "invalid",
                        findings.iter().map(ToString::to_string).collect(),
                    ),
                    Ok(f) => (
                        "warning",
                        f.warnings.iter().map(ToString::to_string).collect(),
                    ),
                }
            }
        };
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{}: took {:?}",
            h.file,
            started.elapsed()
        );
        assert_eq!(verdict.0, kind, "{}: {:#?}", h.file, verdict.1);
        assert!(
            verdict.1.iter().any(|m| m.contains(fragment)),
            "{}: no message contains {fragment:?}: {:#?}",
            h.file,
            verdict.1
        );
        if let GuardedMultiCasskop::Undecodable { metadata, .. } = &guarded {
            assert!(
                metadata.name.is_some(),
                "{}: the undecodable object is still named",
                h.file
            );
        }
        handled += 1;
    }
    assert_eq!(handled, corpus.len());
}
