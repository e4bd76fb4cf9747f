//! [`Backend`] for the embedded replica (feature `replica`): anonymous calls, and verification
//! against the replica's root key at the replica's time.

use crate::{Backend, CallError, GatewayHandle, Verification};
use candid::Principal;
use canvid_replica::{RejectCode, RejectResponse, Replica};

fn map(e: RejectResponse) -> CallError {
    // IC0301: canister not found; IC0537: no Wasm module (the IC gateway answers 404 too).
    if e.reject_code == RejectCode::DestinationInvalid
        || e.error_code == "IC0301"
        || e.error_code == "IC0537"
    {
        CallError::CanisterNotFound(e.reject_message)
    } else {
        CallError::Rejected(format!(
            "{} ({:?}): {}",
            e.error_code, e.reject_code, e.reject_message
        ))
    }
}

impl Backend for Replica {
    fn query(&self, canister: Principal, method: &str, arg: Vec<u8>) -> Result<Vec<u8>, CallError> {
        self.query_call(canister, Principal::anonymous(), method, arg)
            .map_err(map)
    }
    fn update(
        &self,
        canister: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, CallError> {
        self.update_call(canister, Principal::anonymous(), method, arg)
            .map_err(map)
    }
    fn verification(&self) -> Option<Verification> {
        let now = self.get_time().duration_since(std::time::UNIX_EPOCH).ok()?;
        Some(Verification {
            root_key_der: self.root_key_der(),
            now_ns: now.as_nanos(),
        })
    }
}

/// Starts a gateway in front of an embedded replica (see [`crate::serve_backend`]).
pub fn serve(
    replica: std::sync::Arc<Replica>,
    addr: std::net::SocketAddr,
) -> std::io::Result<GatewayHandle> {
    crate::serve_backend(replica, addr)
}
