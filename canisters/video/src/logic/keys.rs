//! Who gets the key of an end-to-end encrypted video, which key, and how often: plain decisions
//! the `video_key` endpoint (`crate::keys`) makes before and after its vetKD call. docs/encryption.md
//! explains the scheme and the trust model.
//!
//! The key follows the access policy, with one exception: a *public* video's key goes only to
//! the owner and uploaders. Anyone may call as a fresh principal, so handing the key to
//! "everyone" would make the encryption pointless (a node operator is someone) and would let
//! anyone make the canister pay a vetKD fee (~26 B cycles) per call.
//!
//! Each delivery costs the canister that fee, so deliveries to viewers are rate limited per
//! viewer and in total over a window ([`KeyLimiter`]); the owner and uploaders are not (it is
//! their canister's cycles, and they need the key to upload). The limiter is heap state: an
//! upgrade resets it, which at worst grants one more window's worth.

use std::collections::BTreeMap;

use candid::Principal;
use canvid_types::access::AccessGrant;
use canvid_types::encryption::{
    VideoKeyArgs, DEFAULT_KEY_NAME, KEY_NAMES, KEY_WINDOW_NS, MAX_KEYS_PER_VIEWER, MAX_VIEWER_KEYS,
};
use canvid_types::video::VideoStatus;
use canvid_types::{Error, Result};
use ic_stable_structures::Memory;

use crate::store::VideoStore;

/// Length of a vetKD transport public key (a compressed BLS12-381 G1 point).
pub const TRANSPORT_KEY_LEN: usize = 48;

/// Who asks, as far as key delivery cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyRole {
    /// The owner or an uploader: any key and epoch, not rate limited.
    Keeper,
    /// An allowlisted viewer or a pass holder: the upload's key only, rate limited.
    Viewer,
}

/// What `video_key` will ask vetKD for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPlan {
    pub role: KeyRole,
    pub key_name: String,
    pub key_epoch: u32,
}

/// Decides whether `who` gets a key at `now` and which one. Called before the vetKD call and
/// again after it (the state may have changed while it was in flight: a viewer removed, the
/// video sold); the second answer must be the same plan.
pub fn plan<M: Memory>(
    v: &VideoStore<M>,
    who: &Principal,
    now: u64,
    args: &VideoKeyArgs,
) -> Result<KeyPlan> {
    if args.transport_public_key.len() != TRANSPORT_KEY_LEN {
        return Err(Error::InvalidArgument {
            reason: format!(
                "transport_public_key must be {TRANSPORT_KEY_LEN} bytes (a BLS12-381 G1 point), \
                 not {}",
                args.transport_public_key.len()
            ),
        });
    }
    let refuse = |reason: &str| {
        Err(Error::NotAuthorized {
            caller: *who,
            reason: reason.into(),
        })
    };
    if *who == Principal::anonymous() {
        return refuse("the anonymous principal never gets a video key: sign in");
    }
    let s = v.state();
    let declared = s.upload.as_ref().and_then(|u| u.encryption.as_ref());
    let role = match super::access::grant(v, who, now) {
        Some(AccessGrant::Owner | AccessGrant::Uploader) => KeyRole::Keeper,
        Some(AccessGrant::Viewer | AccessGrant::Pass { .. }) => KeyRole::Viewer,
        Some(AccessGrant::Public) => {
            return refuse(
                "this video is public: its key goes only to the owner and uploaders (make it \
                 private or paid to give viewers the key)",
            )
        }
        None => {
            return refuse(
                "only the owner, uploaders, allowlisted viewers and pass holders get this \
                 video's key",
            )
        }
    };
    if role == KeyRole::Viewer {
        let Some(enc) = declared else {
            return Err(Error::InvalidArgument {
                reason: "this video is not encrypted: there is no key to deliver".into(),
            });
        };
        if s.status() != VideoStatus::Ready {
            return Err(Error::NotReady {
                reason: "the encrypted upload is not finished yet".into(),
            });
        }
        let other_name = args.key_name.as_ref().is_some_and(|n| *n != enc.key_name);
        let other_epoch = args.key_epoch.is_some_and(|e| e != enc.key_epoch);
        if other_name || other_epoch {
            return refuse("viewers get only the key the video is encrypted under");
        }
    }
    let key_name = args
        .key_name
        .clone()
        .or_else(|| declared.map(|e| e.key_name.clone()))
        .unwrap_or_else(|| DEFAULT_KEY_NAME.into());
    if !KEY_NAMES.contains(&key_name.as_str()) {
        return Err(Error::InvalidArgument {
            reason: format!("unknown vetKD key {key_name:?} (one of {KEY_NAMES:?})"),
        });
    }
    let key_epoch = args
        .key_epoch
        .or_else(|| declared.map(|e| e.key_epoch))
        .unwrap_or(0);
    Ok(KeyPlan {
        role,
        key_name,
        key_epoch,
    })
}

/// Deliveries to viewers in the current window: at most [`MAX_KEYS_PER_VIEWER`] each and
/// [`MAX_VIEWER_KEYS`] in total per [`KEY_WINDOW_NS`] (a fixed window: it restarts at the first
/// delivery after the previous one ended). At most `MAX_VIEWER_KEYS` entries.
#[derive(Clone, Debug, Default)]
pub struct KeyLimiter {
    window_start: u64,
    total: u32,
    per_viewer: BTreeMap<Principal, u32>,
}

impl KeyLimiter {
    /// Whether [`Self::admit`] would count a delivery to `who` at `now` (for `inspect_message`).
    pub fn would_admit(&self, who: &Principal, now: u64) -> bool {
        self.clone().admit(who, now).is_ok()
    }

    /// Counts a delivery to `who` at `now`, or refuses it with `Busy`. Counted before the vetKD
    /// call, so concurrent calls cannot overtake the limit; a failed call still counts (it may
    /// have cost the fee).
    pub fn admit(&mut self, who: &Principal, now: u64) -> Result<()> {
        if now >= self.window_start.saturating_add(KEY_WINDOW_NS) {
            *self = KeyLimiter {
                window_start: now,
                ..KeyLimiter::default()
            };
        }
        let resets_in_s = (self.window_start + KEY_WINDOW_NS).saturating_sub(now) / 1_000_000_000;
        let mine = self.per_viewer.get(who).copied().unwrap_or(0);
        if mine >= MAX_KEYS_PER_VIEWER {
            return Err(Error::Busy {
                reason: format!(
                    "this viewer already got {MAX_KEYS_PER_VIEWER} keys of this video in the \
                     last 24 hours (each costs the video's owner a vetKD fee); retry in \
                     {resets_in_s} s, or keep the key you have"
                ),
            });
        }
        if self.total >= MAX_VIEWER_KEYS {
            return Err(Error::Busy {
                reason: format!(
                    "viewers got {MAX_VIEWER_KEYS} keys of this video in the last 24 hours, its \
                     limit; retry in {resets_in_s} s"
                ),
            });
        }
        self.total += 1;
        self.per_viewer.insert(*who, mine + 1);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
