//! Reads what a task step needs: the ring (same namespace only), its sites in rollout order with
//! whether each is Ready and proven ours, and the pods of the site in progress.

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, ListParams};

use crate::api::{MultiCasskop, MultiCasskopTask, SiteState, SiteStatus};
use crate::controller::Context;
use crate::controller::site_io::{self, SITE_REQUEST_TIMEOUT};
use crate::controller::tasks::TaskError;
use crate::core::task::{PodFacts, RingSite};
use crate::labels::pod_operation::{CLUSTER, DC, NAME, STATUS};

/// The ring as a task sees it.
pub struct Ring {
    /// Its sites, in rollout order (sites that left `spec.override` are not part of it).
    pub sites: Vec<RingSite>,
    /// The ring's status of each site (namespace, name, UID).
    pub statuses: Vec<SiteStatus>,
}

/// The MultiCasskop `task` names, in the task's namespace. `Ok(None)` while it does not exist
/// or its status does not yet list every site of `spec.override` (a new ring).
pub async fn ring(
    ctx: &Context,
    task: &MultiCasskopTask,
    namespace: &str,
) -> Result<Option<Ring>, TaskError> {
    let api: Api<MultiCasskop> = Api::namespaced(ctx.client.clone(), namespace);
    let name = &task.spec.multi_casskop;
    let Some(mc) = api
        .get_opt(name)
        .await
        .map_err(|e| TaskError::Management(format!("read MultiCasskop {namespace}/{name}: {e}")))?
    else {
        return Ok(None);
    };
    let statuses: Vec<SiteStatus> = mc
        .status
        .map(|s| s.sites)
        .unwrap_or_default()
        .into_iter()
        .filter(|s| mc.spec.overrides.contains_key(&s.site))
        .collect();
    if statuses.len() != mc.spec.overrides.len() {
        return Ok(None);
    }
    let sites = statuses
        .iter()
        .map(|s| RingSite {
            site: s.site.clone(),
            ready: s.state == SiteState::Ready && s.reachable && s.uid.is_some(),
        })
        .collect();
    Ok(Some(Ring { sites, statuses }))
}

/// The pods of the ring's CassandraCluster at `site`: those labelled `cassandracluster=<name>` in
/// its namespace, once the CassandraCluster there is proven ours (its UID is the one the ring
/// recorded) and the namespace is within the tenancy rule. Errors say why nothing can be read.
pub async fn pods(
    ctx: &Context,
    task_namespace: &str,
    status: &SiteStatus,
) -> Result<Vec<PodFacts>, TaskError> {
    let site_name = &status.site;
    ctx.tenancy
        .check(task_namespace, &status.namespace)
        .map_err(|message| TaskError::Refused(format!("site {site_name}: {message}")))?;
    let site = ctx
        .sites
        .get(site_name)
        .ok_or_else(|| TaskError::Site(format!("site {site_name} is not connected")))?;
    let object = site_io::get(&site, &status.namespace, &status.name)
        .await
        .map_err(|e| TaskError::Site(e.to_string()))?;
    let proven = object
        .as_ref()
        .and_then(|o| o.uid())
        .is_some_and(|uid| status.uid.as_deref() == Some(uid.as_str()));
    if !proven {
        return Err(TaskError::Site(format!(
            "site {site_name}: CassandraCluster {}/{} is not the one MultiCasskop recorded (uid {}); its pods are left alone",
            status.namespace,
            status.name,
            status.uid.as_deref().unwrap_or("none")
        )));
    }
    let client = site
        .client()
        .map_err(|e| TaskError::Site(format!("site {site_name}: {e}")))?;
    let api: Api<Pod> = Api::namespaced(client.clone(), &status.namespace);
    let selector = ListParams::default().labels(&format!("{CLUSTER}={}", status.name));
    let list = site
        .stall()
        .bounded(SITE_REQUEST_TIMEOUT, api.list(&selector))
        .await
        .map_err(|e| TaskError::Site(format!("site {site_name}: listing pods: {e}")))?
        .map_err(|e| {
            TaskError::Site(format!(
                "site {site_name}: list pods of {}/{}: {e}",
                status.namespace, status.name
            ))
        })?;
    Ok(list
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| {
            let labels = p.labels();
            PodFacts {
                name: p.name_any(),
                dc: labels.get(DC).cloned(),
                operation: labels.get(NAME).cloned(),
                status: labels.get(STATUS).cloned(),
            }
        })
        .collect())
}
