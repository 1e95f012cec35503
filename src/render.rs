//! `multi-casskop render`: what each site would get, without any cluster (like `helm template`).

use std::fmt::Write as _;

use serde_json::json;

use crate::api::MultiCasskop;
use crate::core::federation::{Federation, FederationInput, plan_federation};
use crate::core::joining::join_statements;
use crate::core::validate::Finding;
use crate::labels::REPLICATION_ADDED_ANNOTATION;

/// Why a MultiCasskop cannot be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The file is not a MultiCasskop.
    #[error("{file} is not a MultiCasskop manifest: {source}")]
    Parse {
        /// The file read.
        file: String,
        /// Parser error.
        source: serde_yaml::Error,
    },
    /// Validation failed.
    #[error("{file} is invalid:\n{}", .findings.iter().map(|f| format!("  - {f}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// The file read.
        file: String,
        /// Every problem found.
        findings: Vec<Finding>,
    },
    /// A `--site` that is not in `spec.override`.
    #[error("site {site:?} is not in spec.override of {file} (sites: {known})")]
    UnknownSite {
        /// The file read.
        file: String,
        /// The site asked for.
        site: String,
        /// Sites in the file.
        known: String,
    },
    /// Output could not be produced.
    #[error("cannot write YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
}

/// Renders the site CassandraClusters of the MultiCasskop in `manifest` as multi-document YAML,
/// with the shared seed list in `status.seedlist`; warnings go in a leading comment block.
pub fn render(file: &str, manifest: &str, sites: &[String]) -> Result<String, RenderError> {
    let mc: MultiCasskop = serde_yaml::from_str(manifest).map_err(|source| RenderError::Parse {
        file: file.into(),
        source,
    })?;
    let name = mc.metadata.name.clone().unwrap_or_default();
    let namespace = mc
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let federation = plan_federation(FederationInput {
        name: &name,
        namespace: &namespace,
        spec: &mc.spec,
        known_sites: None,
    })
    .map_err(|findings| RenderError::Invalid {
        file: file.into(),
        findings,
    })?;
    for site in sites {
        if !federation.sites.iter().any(|s| &s.site == site) {
            let known = federation
                .sites
                .iter()
                .map(|s| s.site.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(RenderError::UnknownSite {
                file: file.into(),
                site: site.clone(),
                known,
            });
        }
    }
    let ring = federation.site_dcs();
    let replication = join_statements(mc.spec.replication.as_ref(), &ring);
    render_federation(&federation, &replication, sites)
}

fn render_federation(
    federation: &Federation,
    replication: &[String],
    sites: &[String],
) -> Result<String, RenderError> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# seeds ({:?}): {}",
        federation.seed_source,
        federation.seeds.join(",")
    );
    for warning in &federation.warnings {
        let _ = writeln!(out, "# warning: {warning}");
    }
    if !replication.is_empty() {
        let _ = writeln!(
            out,
            "# replication of the ring as rendered (run when a site joins a Ready ring, then acknowledge with the {REPLICATION_ADDED_ANNOTATION} annotation):"
        );
        for statement in replication {
            let _ = writeln!(out, "#   {statement}");
        }
    }
    for (position, site) in federation.sites.iter().enumerate() {
        if !sites.is_empty() && !sites.contains(&site.site) {
            continue;
        }
        let mut object = site.object.clone();
        object["status"] = json!({ "seedlist": federation.seeds });
        let paused = if federation.paused.contains(&site.site) {
            " (paused)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "---\n# site {} (rollout position {}){paused}",
            site.site,
            position + 1
        );
        out.push_str(&serde_yaml::to_string(&object)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../samples/multicasskop-upstream-demo.yaml");

    #[test]
    fn renders_every_site_with_seeds() {
        let out = render("sample", SAMPLE, &[]).expect("renders");
        assert_eq!(
            out.matches("\n---\n").count() + usize::from(out.starts_with("---")),
            2,
            "{out}"
        );
        assert!(out.contains("# site k8s-cluster1 (rollout position 1)"));
        assert!(out.contains("# site k8s-cluster2 (rollout position 2)"));
        assert!(
            out.contains("#   ALTER KEYSPACE system_auth WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': "),
            "{out}"
        );
    }

    #[test]
    fn site_filter_and_unknown_site() {
        let out = render("sample", SAMPLE, &["k8s-cluster2".into()]).expect("renders");
        assert!(!out.contains("# site k8s-cluster1"));
        let err = render("sample", SAMPLE, &["nowhere".into()]).expect_err("unknown site");
        assert!(
            err.to_string()
                .contains("site \"nowhere\" is not in spec.override")
        );
    }

    #[test]
    fn invalid_manifest_lists_findings() {
        let bad = SAMPLE.replace("name: dc2", "name: dc-2");
        let err = render("bad.yaml", &bad, &[]).expect_err("invalid");
        let text = err.to_string();
        assert!(text.starts_with("bad.yaml is invalid:\n  - "), "{text}");
        assert!(text.contains("DC name \"dc-2\" contains '-'"), "{text}");
    }

    #[test]
    fn not_a_manifest() {
        let err = render("x.yaml", "just: [text", &[]).expect_err("parse error");
        assert!(
            err.to_string()
                .starts_with("x.yaml is not a MultiCasskop manifest")
        );
    }
}
