//! Who holds a Lease (the controller's leader election), as the tests and the bench read it.

use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};

/// The holder of Lease `namespace/name`, if it exists and names one.
pub async fn holder(client: &Client, namespace: &str, name: &str) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), namespace);
    leases
        .get_opt(name)
        .await
        .ok()??
        .spec?
        .holder_identity
        .filter(|h| !h.is_empty())
}
