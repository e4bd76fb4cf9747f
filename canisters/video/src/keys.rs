//! `video_key`: the key of an end-to-end encrypted video, derived by vetKD and encrypted to the
//! caller's transport key, so that neither this canister nor the network sees it
//! (docs/encryption.md). The decisions are in [`crate::logic::keys`]; this module only awaits.
//!
//! Order: decide (`logic::keys::plan`) and count the delivery (`KeyLimiter`) before the first
//! await; fetch the canister's public key for the key name (cached on the heap: it never
//! changes); check the cycles for the fee; derive; then decide again with the state as it is
//! after the awaits — a viewer removed or a video sold while vetKD worked gets nothing (the fee
//! is spent either way, which the limiter accounts for).

use std::cell::RefCell;
use std::collections::BTreeMap;

use candid::Principal;
use canvid_types::encryption::{vetkd_input, VideoKey, VideoKeyArgs, VETKD_CONTEXT};
use canvid_types::{Error, Result};
use ic_cdk::api::{msg_caller, time};
use ic_cdk_management_canister::{VetKDCurve, VetKDDeriveKeyArgs, VetKDKeyId, VetKDPublicKeyArgs};
use serde_bytes::ByteBuf;

use crate::logic::keys::{plan, KeyLimiter, KeyRole};
use crate::store::canister;

thread_local! {
    static LIMITER: RefCell<KeyLimiter> = RefCell::new(KeyLimiter::default());
    /// This canister's vetKD public key for `VETKD_CONTEXT`, per key name.
    static PUBLIC_KEYS: RefCell<BTreeMap<String, Vec<u8>>> = const { RefCell::new(BTreeMap::new()) };
}

/// Largest `video_key` argument `inspect_message` decodes (a 48-byte key and two short options).
pub const MAX_KEY_ARGS_BYTES: usize = 512;

/// Whether `inspect_message` lets `caller`'s `video_key` through: only a call the endpoint would
/// answer with a key (so that refused callers cost the canister nothing).
pub fn may_request_key(caller: &Principal, arg: &[u8], now: u64) -> bool {
    if arg.len() > MAX_KEY_ARGS_BYTES {
        return false;
    }
    let Ok(args) = candid::decode_one::<VideoKeyArgs>(arg) else {
        return false;
    };
    match canister::with(|s| plan(s, caller, now, &args)) {
        Ok(p) if p.role == KeyRole::Viewer => LIMITER.with_borrow(|l| l.would_admit(caller, now)),
        Ok(_) => true,
        Err(_) => false,
    }
}

fn key_id(name: &str) -> VetKDKeyId {
    VetKDKeyId {
        curve: VetKDCurve::Bls12_381_G2,
        name: name.into(),
    }
}

fn call_failed(method: &str, reason: String) -> Error {
    Error::CallFailed {
        target: Principal::management_canister(),
        method: method.into(),
        reason,
    }
}

async fn public_key(name: &str) -> Result<Vec<u8>> {
    if let Some(k) = PUBLIC_KEYS.with_borrow(|m| m.get(name).cloned()) {
        return Ok(k);
    }
    let answer = ic_cdk_management_canister::vetkd_public_key(&VetKDPublicKeyArgs {
        canister_id: None,
        context: VETKD_CONTEXT.to_vec(),
        key_id: key_id(name),
    })
    .await
    .map_err(|e| call_failed("vetkd_public_key", e.to_string()))?;
    PUBLIC_KEYS.with_borrow_mut(|m| m.insert(name.into(), answer.public_key.clone()));
    Ok(answer.public_key)
}

/// The video's key for the caller: vetKD's key of (`VETKD_CONTEXT`, `vetkd_input(key_epoch)`)
/// encrypted to `transport_public_key`, and the public key to verify it. The owner and
/// uploaders may ask for any key (they need it to encrypt the upload); allowlisted viewers and
/// pass holders for the finished encrypted video's key, at most 8 times a day each and 100 times
/// a day together (each delivery costs the canister a vetKD fee); everyone else, and everyone
/// but the owner and uploaders on a public video, gets `NotAuthorized`.
#[ic_cdk::update]
async fn video_key(args: VideoKeyArgs) -> Result<VideoKey> {
    let caller = msg_caller();
    let first = canister::with(|s| plan(s, &caller, time(), &args))?;
    if first.role == KeyRole::Viewer {
        LIMITER.with_borrow_mut(|l| l.admit(&caller, time()))?;
    }
    let public_key = public_key(&first.key_name).await?;
    let derive = VetKDDeriveKeyArgs {
        input: vetkd_input(first.key_epoch),
        context: VETKD_CONTEXT.to_vec(),
        transport_public_key: args.transport_public_key.to_vec(),
        key_id: key_id(&first.key_name),
    };
    let fee = ic_cdk_management_canister::cost_vetkd_derive_key(&derive)
        .map_err(|e| call_failed("vetkd_derive_key", e.to_string()))?;
    let available = ic_cdk::api::canister_liquid_cycle_balance();
    if available < fee {
        return Err(Error::InsufficientCycles {
            required: fee,
            available,
        });
    }
    let derived = ic_cdk_management_canister::vetkd_derive_key(&derive)
        .await
        .map_err(|e| call_failed("vetkd_derive_key", e.to_string()))?;
    // After the awaits: the caller may have lost access, or the video may have been sold.
    let now_plan = canister::with(|s| plan(s, &caller, time(), &args))?;
    if now_plan.key_name != first.key_name || now_plan.key_epoch != first.key_epoch {
        return Err(Error::Conflict {
            reason: "the video's encryption changed while its key was derived: ask again".into(),
        });
    }
    Ok(VideoKey {
        encrypted_key: ByteBuf::from(derived.encrypted_key),
        public_key: ByteBuf::from(public_key),
        key_name: first.key_name,
        key_epoch: first.key_epoch,
        context: ByteBuf::from(VETKD_CONTEXT.to_vec()),
        input: ByteBuf::from(derive.input),
    })
}
