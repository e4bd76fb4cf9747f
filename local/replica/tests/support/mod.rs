//! Shared helpers of the conformance suite: loading the probe module, installing probes, Candid
//! call wrappers and reject assertions.

#![allow(dead_code)]

use std::io::Write;
use std::sync::OnceLock;

use candid::utils::{ArgumentDecoder, ArgumentEncoder};
use candid::{CandidType, Deserialize, Principal};
use canvid_replica::{RejectCode, RejectResponse, Replica};
use serde::de::DeserializeOwned;
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

/// Cycles every probe starts with: enough for the 40 B instruction test (1 cycle per instruction
/// in the embedded cost model) with a wide margin.
pub const PROBE_CYCLES: u128 = 100_000_000_000_000;
/// Creation fee of `create_canister` called by a canister (ic-notes.md: 500 B).
pub const CREATION_FEE: u128 = 500_000_000_000;
pub const MIB: usize = 1 << 20;
/// Start of the probe's user region in stable memory (see the probe's layout docs).
pub const USER_BASE: usize = canvid_replica_probe_types::USER_BASE as usize;

/// The principal most tests call from.
pub fn user() -> Principal {
    Principal::self_authenticating(b"canvid conformance user")
}

/// A principal that controls nothing.
pub fn stranger() -> Principal {
    Principal::self_authenticating(b"canvid conformance stranger")
}

/// A principal used as an explicit controller.
pub fn admin() -> Principal {
    Principal::self_authenticating(b"canvid conformance admin")
}

/// A canister id that no test ever creates.
pub fn missing_canister() -> Principal {
    Principal::from_slice(&[0x00, 0x00, 0x00, 0x00, 0x0f, 0xff, 0xff, 0xff, 0x01, 0x01])
}

/// The probe module. Path: `$CANVID_PROBE_WASM`, or `target/canisters/replica-probe.wasm` at the
/// workspace root (written by `scripts/build-wasm.sh`). A missing file fails the test loudly.
pub fn probe_wasm() -> Vec<u8> {
    static WASM: OnceLock<Vec<u8>> = OnceLock::new();
    WASM.get_or_init(|| {
        let path = std::env::var("CANVID_PROBE_WASM").unwrap_or_else(|_| {
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../target/canisters/replica-probe.wasm"
            )
            .to_string()
        });
        match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) => panic!(
                "cannot read the probe canister module at {path}: {e}.\n\
                 Build it first: run `scripts/build-wasm.sh` from the workspace root \
                 (or set CANVID_PROBE_WASM to a built canvid_replica_probe.wasm)."
            ),
        }
    })
    .clone()
}

/// The probe module with an extra custom section: a different module (other SHA-256) with the
/// same behaviour. Custom sections may appear anywhere after the header, so appending one keeps
/// the module valid.
pub fn probe_variant(tag: &str) -> Vec<u8> {
    let mut wasm = probe_wasm();
    let name = b"canvid-conformance-variant";
    let mut payload = Vec::new();
    leb128(&mut payload, name.len() as u64);
    payload.extend_from_slice(name);
    payload.extend_from_slice(tag.as_bytes());
    wasm.push(0); // custom section id
    leb128(&mut wasm, payload.len() as u64);
    wasm.extend_from_slice(&payload);
    wasm
}

fn leb128(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).expect("gzip in memory");
    enc.finish().expect("gzip in memory")
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Creates a canister controlled by the anonymous principal, funds it with [`PROBE_CYCLES`] and
/// installs the probe (empty init argument).
pub fn install_probe(r: &Replica) -> Principal {
    let c = r.create_canister();
    r.add_cycles(c, PROBE_CYCLES);
    r.install_canister(c, probe_wasm(), Vec::new(), None);
    c
}

/// Encodes Candid arguments.
pub fn enc<A: ArgumentEncoder>(args: A) -> Vec<u8> {
    candid::utils::encode_args(args).expect("candid encode")
}

/// Decodes a single Candid value; panics with the method name on failure.
pub fn dec<R: DeserializeOwned + CandidType>(bytes: &[u8], what: &str) -> R {
    candid::decode_one(bytes).unwrap_or_else(|e| panic!("decoding the reply of {what}: {e}"))
}

pub fn dec_args<R: for<'a> ArgumentDecoder<'a>>(bytes: &[u8], what: &str) -> R {
    candid::utils::decode_args(bytes)
        .unwrap_or_else(|e| panic!("decoding the reply of {what}: {e}"))
}

/// Ingress update from [`user`], decoding one Candid return value.
#[track_caller]
pub fn update<A: ArgumentEncoder, R: DeserializeOwned + CandidType>(
    r: &Replica,
    c: Principal,
    method: &str,
    args: A,
) -> Result<R, RejectResponse> {
    r.update_call(c, user(), method, enc(args))
        .map(|b| dec(&b, method))
}

/// Ingress update that must succeed.
#[track_caller]
pub fn update_ok<A: ArgumentEncoder, R: DeserializeOwned + CandidType>(
    r: &Replica,
    c: Principal,
    method: &str,
    args: A,
) -> R {
    match update(r, c, method, args) {
        Ok(v) => v,
        Err(e) => panic!("update {method} failed: {e}"),
    }
}

/// Ingress update of a method returning `()`, which must succeed.
#[track_caller]
pub fn update_unit<A: ArgumentEncoder>(r: &Replica, c: Principal, method: &str, args: A) {
    match r.update_call(c, user(), method, enc(args)) {
        Ok(b) => dec_args::<()>(&b, method),
        Err(e) => panic!("update {method} failed: {e}"),
    }
}

/// Query from [`user`] that must succeed.
#[track_caller]
pub fn query_ok<A: ArgumentEncoder, R: DeserializeOwned + CandidType>(
    r: &Replica,
    c: Principal,
    method: &str,
    args: A,
) -> R {
    match r.query_call(c, user(), method, enc(args)) {
        Ok(b) => dec(&b, method),
        Err(e) => panic!("query {method} failed: {e}"),
    }
}

pub fn get_heap(r: &Replica, c: Principal) -> u64 {
    query_ok(r, c, "get_heap", ())
}

pub fn read_stable(r: &Replica, c: Principal, offset: u64, len: u64) -> Vec<u8> {
    query_ok::<_, ByteBuf>(r, c, "read_stable", (offset, len)).into_vec()
}

pub fn hook_log(r: &Replica, c: Principal) -> String {
    query_ok(r, c, "hook_log", ())
}

/// Asserts that `res` is a reject with the given reject code and IC error code.
#[track_caller]
pub fn expect_reject<T: std::fmt::Debug>(
    res: Result<T, RejectResponse>,
    code: RejectCode,
    error_code: &str,
) -> RejectResponse {
    match res {
        Ok(v) => panic!("expected a reject {code:?} ({error_code}), got a reply: {v:?}"),
        Err(e) => {
            assert_eq!(
                (e.reject_code, e.error_code.as_str()),
                (code, error_code),
                "unexpected reject: {e}"
            );
            e
        }
    }
}

// ----- The probe's own candid types (`canvid-replica-probe-types`) -----

pub use canvid_replica_probe_types::{CallOutcome, CallSpec};

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct StatusSummary {
    pub status: String,
    pub controllers: Vec<Principal>,
    pub module_hash: Option<ByteBuf>,
    pub cycles: candid::Nat,
    pub version: u64,
}

/// `caller.call_other(spec)`.
#[track_caller]
pub fn call_other(r: &Replica, caller: Principal, spec: CallSpec) -> CallOutcome {
    update_ok(r, caller, "call_other", (spec,))
}
