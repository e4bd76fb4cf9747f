//! Shared setup of the HTTP interface tests: a replica with the probe canister installed,
//! served on a loopback port, and a minimal HTTP/1.1 client for hand-built requests.

#![allow(dead_code)]

use canvid_devkit::raw_http::Request;
use canvid_gateway::ServerHandle;
use canvid_replica::{CanisterSettings, Principal, Replica};
use std::sync::Arc;

/// `<workspace>/target/canisters/<name>.wasm` (or under `$CANVID_WASM_DIR`), as built by
/// `scripts/build-wasm.sh`.
pub fn wasm(name: &str) -> Vec<u8> {
    canvid_devkit::load_wasm(name)
}

pub struct Setup {
    pub replica: Arc<Replica>,
    pub server: ServerHandle,
    pub canister: Principal,
    pub wasm: Vec<u8>,
}

/// A replica with the probe canister (controlled by `controllers`), served on 127.0.0.1:0.
pub fn setup(controllers: Vec<Principal>) -> Setup {
    let replica = Arc::new(Replica::with_seed([42; 32]));
    let canister = replica.create_canister_with_settings(
        None,
        Some(CanisterSettings {
            controllers: Some(controllers.clone()),
            ..CanisterSettings::default()
        }),
    );
    replica.add_cycles(canister, 100_000_000_000_000);
    let wasm = wasm("replica-probe");
    replica.install_canister(
        canister,
        wasm.clone(),
        candid::encode_args(()).unwrap(),
        controllers.first().copied(),
    );
    let server =
        canvid_gateway::serve(replica.clone(), "127.0.0.1:0".parse().unwrap()).expect("serve");
    Setup {
        replica,
        server,
        canister,
        wasm,
    }
}

/// Answer to a hand-made HTTP request: status and body.
pub fn http(port: u16, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let (status, _, body) = http_with_head(port, method, path, body);
    (status, body)
}

/// Answer to a hand-made HTTP request: status, the response head (status line and headers), body.
pub fn http_with_head(port: u16, method: &str, path: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
    let r = Request::new(method, path)
        .header("Content-Type", "application/cbor")
        .body(body)
        .send(port);
    (r.status, r.head, r.body)
}

pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Envelope of `content` signed by `signer` (its key as `sender_pubkey`, its delegations).
pub fn signed(
    content: &ic_transport_types::EnvelopeContent,
    signer: &dyn ic_agent::Identity,
) -> ic_transport_types::Envelope<'static> {
    let sig = signer.sign(content).unwrap();
    ic_transport_types::Envelope {
        content: std::borrow::Cow::Owned(content.clone()),
        sender_pubkey: sig.public_key,
        sender_sig: sig.signature,
        sender_delegation: sig.delegations,
    }
}
