//! `canvid_gateway::Backend` for [`ReplicaBackend`], so a test or example can put the HTTP
//! gateway in front of the harness's replica: `canvid_gateway::serve_backend(Arc<ReplicaBackend>, addr)`.

use candid::Principal;
use canvid_gateway::CallError;

use crate::ReplicaBackend;

impl canvid_gateway::Backend for ReplicaBackend {
    fn query(&self, canister: Principal, method: &str, arg: Vec<u8>) -> Result<Vec<u8>, CallError> {
        canvid_gateway::Backend::query(&self.replica, canister, method, arg)
    }
    fn update(
        &self,
        canister: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, CallError> {
        canvid_gateway::Backend::update(&self.replica, canister, method, arg)
    }
    fn verification(&self) -> Option<canvid_gateway::Verification> {
        canvid_gateway::Backend::verification(&self.replica)
    }
}
