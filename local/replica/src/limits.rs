//! Per-message execution limits, configurable so tests can prove enforcement at small scale.
//!
//! The defaults ([`Limits::IC`]) are the IC's: 40 B instructions per update / callback / cleanup
//! / timer / heartbeat message, 5 B per query, 300 B per install or upgrade, 200 M per
//! `inspect_message`, replies of 2 MiB (replicated) and 3 MiB (non-replicated queries). Burning
//! 40 B instructions takes minutes in an interpreter, so a test that wants to see the update
//! limit enforced runs a replica with a small limit instead ([`Replica::with_limits`]): the
//! enforcement code is the same, only the number differs.

use crate::system_api::ExecKind;
use crate::Replica;

/// Largest ingress message, envelope included (the IC's `MAX_INGRESS_BYTES_PER_MESSAGE_APP_SUBNET`
/// = 2 MiB, `rs/limits/src/lib.rs`), checked at submission against
/// [`ingress_message_bytes`].
pub const MAX_INGRESS_MESSAGE_BYTES: usize = 2 * 1024 * 1024;

/// Bytes of the CBOR envelope of a PocketIC / agent ingress message beyond its four
/// variable-length fields and their CBOR length headers: the field names, `request_type`,
/// `ingress_expiry`, the nonce and the framing. Measured on PocketIC 10 (`canvid-tests`'
/// `ingress_size`): the largest accepted argument is 2 MiB − 193 bytes for a 7-byte method name
/// and a 29-byte sender, − 164 for the anonymous sender, − 488 for a 300-byte method name.
pub const INGRESS_ENVELOPE_FIXED_BYTES: usize = 138;

/// The length of a CBOR item header for a byte or text string of `len` bytes.
fn cbor_head(len: usize) -> usize {
    match len {
        0..=23 => 1,
        24..=0xff => 2,
        0x100..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

/// The size the IC counts against [`MAX_INGRESS_MESSAGE_BYTES`]: the whole signed request as
/// received (`SignedIngress::count_bytes()`, the CBOR envelope; `rs/http_endpoints/public/src/
/// call.rs`: "if msg.count_bytes() > ingress_registry_settings.max_ingress_bytes_per_message"),
/// so the method name, sender and canister id count besides the argument. A message of the HTTP
/// interface counts its body; an in-process one this estimate of an unsigned envelope (a signed
/// one adds its public key and signature).
pub fn ingress_message_bytes(
    canister: &candid::Principal,
    sender: &candid::Principal,
    method: &str,
    arg_len: usize,
) -> usize {
    let field = |n: usize| cbor_head(n) + n;
    field(arg_len)
        + field(method.len())
        + field(sender.as_slice().len())
        + field(canister.as_slice().len())
        + INGRESS_ENVELOPE_FIXED_BYTES
}

/// The IC's answer to an ingress message over [`MAX_INGRESS_MESSAGE_BYTES`].
pub fn ingress_too_large_message(request_id: &[u8; 32], bytes: usize) -> String {
    let id = hex::encode(request_id);
    format!(
        "Request 0x{id} is too large. Message byte size {bytes} is larger than the max allowed {MAX_INGRESS_MESSAGE_BYTES}."
    )
}
/// Instructions per message (the IC's; [`Limits::IC`]).
pub(crate) const LIMIT_UPDATE: u64 = 40_000_000_000;
pub(crate) const LIMIT_QUERY: u64 = 5_000_000_000;
pub(crate) const LIMIT_INSTALL: u64 = 300_000_000_000;
pub(crate) const LIMIT_INSPECT: u64 = 200_000_000;
/// Stable memory a message may touch: 2 GiB (update), 8 GiB (upgrade).
pub(crate) const TOUCH_UPDATE: u64 = 2 << 30;
pub(crate) const TOUCH_UPGRADE: u64 = 8 << 30;
/// Reply size limits (the IC's; [`Limits::IC`]).
pub(crate) const MAX_REPLY_REPLICATED: usize = 2 * 1024 * 1024;
pub(crate) const MAX_REPLY_QUERY: usize = 3 * 1024 * 1024;
/// Inter-canister request payload limit (same subnet).
pub(crate) const MAX_CALL_PAYLOAD: usize = 10 * 1024 * 1024;

/// Instruction and reply-size limits of one message (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Update calls, reply/reject callbacks, cleanup callbacks, timers and heartbeats.
    pub update_instructions: u64,
    /// Queries (replicated and non-replicated).
    pub query_instructions: u64,
    /// One install / reinstall / upgrade (pre_upgrade + start + init/post_upgrade together).
    pub install_instructions: u64,
    /// `canister_inspect_message`.
    pub inspect_instructions: u64,
    /// Reply of a replicated execution (update, callback, replicated query), in bytes.
    pub reply_replicated_bytes: usize,
    /// Reply of a non-replicated (or composite) query, in bytes.
    pub reply_query_bytes: usize,
}

impl Limits {
    /// The IC's limits (the default).
    pub const IC: Limits = Limits {
        update_instructions: LIMIT_UPDATE,
        query_instructions: LIMIT_QUERY,
        install_instructions: LIMIT_INSTALL,
        inspect_instructions: LIMIT_INSPECT,
        reply_replicated_bytes: MAX_REPLY_REPLICATED,
        reply_query_bytes: MAX_REPLY_QUERY,
    };

    /// The reply-size limit of an execution of `kind`.
    pub fn reply_bytes(&self, kind: ExecKind) -> usize {
        if kind == ExecKind::NonReplicatedQuery || kind == ExecKind::CompositeQuery {
            self.reply_query_bytes
        } else {
            self.reply_replicated_bytes
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::IC
    }
}

impl Replica {
    /// A replica (fresh keys, like [`Replica::new`]) enforcing `limits` instead of the IC's.
    pub fn with_limits(limits: Limits) -> Replica {
        let r = Replica::new();
        r.set_limits(limits);
        r
    }

    /// Replaces the limits; applies to messages executed from now on.
    pub fn set_limits(&self, limits: Limits) {
        self.lock().limits = limits;
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.lock().limits
    }
}
