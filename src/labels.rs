//! Names multi-casskop stamps on objects: labels, annotations, finalizers and field managers.

/// Label on every CassandraCluster we write: name of the owning MultiCasskop.
/// Owner references cannot point across clusters, so these labels are how we find what we own.
pub const OWNER_NAME_LABEL: &str = "multicasskop.db.orange.com/name";
/// Label on every CassandraCluster we write: namespace of the owning MultiCasskop.
pub const OWNER_NAMESPACE_LABEL: &str = "multicasskop.db.orange.com/namespace";
/// Label on every CassandraCluster we write: the site it was written for.
pub const SITE_LABEL: &str = "multicasskop.db.orange.com/site";

/// Our finalizer on MultiCasskops: held until every site is cleaned up.
pub const FINALIZER: &str = "multicasskop.db.orange.com/cleanup";
/// The Go Multi-CassKop's finalizer; removed when we release a MultiCasskop it had marked.
pub const LEGACY_FINALIZER: &str = "kubernetes.io/multi-casskop";

/// Field manager of the server-side applies that write CassandraClusters at sites.
pub const SITE_FIELD_MANAGER: &str = "multi-casskop/site";
/// Field manager of the MultiCasskop status.
pub const STATUS_FIELD_MANAGER: &str = "multi-casskop/status";
/// Field manager of the patch that adds or removes our finalizer on a MultiCasskop (a merge
/// patch guarded by the resourceVersion read, so `managedFields` say who holds it).
pub const FINALIZER_FIELD_MANAGER: &str = "multi-casskop/finalizer";

/// Annotation on a MultiCasskop: comma-separated sites given up during deletion because they
/// cannot be reached; their CassandraClusters are left behind.
pub const ABANDON_SITES_ANNOTATION: &str = "multicasskop.db.orange.com/abandon-sites";
/// Annotation on a MultiCasskop: comma-separated sites (or `*`) where an existing
/// CassandraCluster this ring did not create may be taken over (overwritten, and deleted with
/// the ring when `deleteCassandraCluster` is true). Without it such an object is a `Conflict`.
pub const ADOPT_SITES_ANNOTATION: &str = "multicasskop.db.orange.com/adopt-sites";
/// CassKop's own annotation holding the spec it last reconciled.
pub const CASSKOP_LAST_APPLIED_ANNOTATION: &str =
    "cassandraclusters.db.orange.com/last-applied-configuration";

/// Label on a Secret of the management cluster that holds a site's kubeconfig (key
/// `kubeconfig`, or `config` as admiralty's exports have it). Its value is the site name.
pub const SITE_SECRET_LABEL: &str = "multicasskop.db.orange.com/site-kubeconfig";
/// Field manager of the patches that release or decommission CassandraClusters we let go of.
pub const RELEASE_FIELD_MANAGER: &str = "multi-casskop/release";
/// Annotation on a site Secret: the only namespace its credentials reach; the controller then
/// watches CassandraClusters in that namespace only.
pub const SITE_NAMESPACE_ANNOTATION: &str = "multicasskop.db.orange.com/site-namespace";
/// Name of the service account, role and binding `multi-casskop site add` creates at a site.
pub const SITE_ACCOUNT: &str = "multi-casskop-site";
/// Field manager of what `multi-casskop site add` writes.
pub const SITE_ADD_FIELD_MANAGER: &str = "multi-casskop/site-add";

/// Annotation on a MultiCasskop: comma-separated sites whose DCs the user added to every
/// keyspace's replication (the statements in `status.sites[].membership`): a joining site's
/// rebuild starts only then.
pub const REPLICATION_ADDED_ANNOTATION: &str = "multicasskop.db.orange.com/replication-added";
/// Annotation on a MultiCasskop: comma-separated sites whose DCs the user dropped from every
/// keyspace's replication: a leaving site is scaled to zero only then.
pub const REPLICATION_DROPPED_ANNOTATION: &str = "multicasskop.db.orange.com/replication-dropped";

/// Field manager of the pod label patches that ask CassKop for pod operations at sites.
pub const POD_OPERATION_FIELD_MANAGER: &str = "multi-casskop/pod-operation";

/// Annotation on a MultiCasskop: any new value asks again for a scale-to-zero CassKop refused
/// at a site that left the ring (`Blocked`), once; the same value never asks twice, so a
/// refusal costs no further writes until the user acts (e.g. `--overwrite ...retry=$(date +%s)`).
pub const RETRY_ANNOTATION: &str = "multicasskop.db.orange.com/retry";

/// CassKop's pod operation labels (`controllers/cassandracluster/pod_operation.go`).
pub mod pod_operation {
    /// Operation to run: `cleanup`, `rebuild`, `upgradesstables`, `decommission`, `remove`.
    pub const NAME: &str = "operation-name";
    /// `ToDo` (asked), `Ongoing`, `Done`, `Error`, `Manual` (CassKop's suggestion without autoPilot).
    pub const STATUS: &str = "operation-status";
    /// `rebuild`: the source DC; `remove`: `<pod>_<ip>` of the node to remove.
    pub const ARGUMENT: &str = "operation-argument";
    /// When CassKop started it (`YYYYMMDDTHHMMSS`, UTC).
    pub const START: &str = "operation-start";
    /// When CassKop ended it (`YYYYMMDDTHHMMSS`, UTC).
    pub const END: &str = "operation-end";
    /// `operation-status` value that asks CassKop to run the operation.
    pub const TO_DO: &str = "ToDo";
    /// `operation-status` value while CassKop runs it.
    pub const ONGOING: &str = "Ongoing";
    /// `operation-status` value of a finished operation.
    pub const DONE: &str = "Done";
    /// `operation-status` value of a failed operation.
    pub const ERROR: &str = "Error";
    /// Label CassKop puts on every pod of a CassandraCluster: its name.
    pub const CLUSTER: &str = "cassandracluster";
    /// Label CassKop puts on every pod: the pod's DC.
    pub const DC: &str = "cassandraclusters.db.orange.com.dc";
}

/// Field manager of the pod labels a MultiCasskopTask writes at sites.
pub const TASK_FIELD_MANAGER: &str = "multi-casskop/task";
/// Field manager of the MultiCasskopTask status.
pub const TASK_STATUS_FIELD_MANAGER: &str = "multi-casskop/task-status";

/// Label on a Secret or ConfigMap of the management cluster: `true` opts it in to being copied
/// to the sites by a MultiCasskop of its namespace that names it in `spec.copyToSites`. Set by
/// the object's owner; a MultiCasskop alone cannot copy an object.
pub const COPY_TO_SITES_LABEL: &str = "multicasskop.db.orange.com/copy-to-sites";
/// Field manager of the Secrets and ConfigMaps copied to sites.
pub const COPY_FIELD_MANAGER: &str = "multi-casskop/copy";

/// kubectl's client-side apply annotation: a full copy of the object on MultiCasskops created
/// with `kubectl apply`; dropped from the controller's cached copies (never read).
pub const KUBECTL_LAST_APPLIED_ANNOTATION: &str =
    "kubectl.kubernetes.io/last-applied-configuration";
