//! Plain decisions of the collection: the deduplication window, the checks of an account that
//! may hold a video, and what the IC must say about a video canister for the collection to
//! vouch for a sale. No system API and no memory: unit-tested natively.

use candid::Principal;
use canvid_types::icrc::Account;
use ic_cdk_management_canister::{CanisterInfoResult, ChangeDetails, ChangeOrigin};

use super::{MAX_MEMO_BYTES, PERMITTED_DRIFT_SECS, TX_WINDOW_SECS};

const NS: u64 = 1_000_000_000;

/// Why a request's `created_at_time` is refused (ICRC-7 "Transaction Deduplication").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimeError {
    TooOld,
    CreatedInFuture { ledger_time: u64 },
}

/// `created_at_time` checked against the collection's time `now` (ns): before
/// `now - TX_WINDOW - PERMITTED_DRIFT` is too old, after `now + PERMITTED_DRIFT` is in the
/// future. Absent: nothing to check (and no deduplication).
pub fn check_created_at(now: u64, created_at_time: Option<u64>) -> Result<(), TimeError> {
    let Some(t) = created_at_time else {
        return Ok(());
    };
    let drift = PERMITTED_DRIFT_SECS * NS;
    let window = TX_WINDOW_SECS * NS;
    if t < now.saturating_sub(window + drift) {
        return Err(TimeError::TooOld);
    }
    if t > now.saturating_add(drift) {
        return Err(TimeError::CreatedInFuture { ledger_time: now });
    }
    Ok(())
}

/// A deduplication entry written at `created_at_time` can be forgotten at `now`: a request
/// carrying that time is refused as `TooOld` from then on.
pub fn dedup_expired(now: u64, created_at_time: u64) -> bool {
    created_at_time < now.saturating_sub((TX_WINDOW_SECS + PERMITTED_DRIFT_SECS) * NS)
}

/// The key under which a request is deduplicated: SHA-256 of the method, the caller and the
/// request's candid encoding ("all the transfer argument fields and the caller").
pub fn dedup_key(method: &str, caller: &Principal, arg_candid: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update((method.len() as u32).to_be_bytes());
    h.update(method.as_bytes());
    h.update([caller.as_slice().len() as u8]);
    h.update(caller.as_slice());
    h.update(arg_candid);
    h.finalize().into()
}

/// A memo within [`MAX_MEMO_BYTES`].
pub fn memo_fits(memo: &Option<serde_bytes::ByteBuf>) -> bool {
    memo.as_ref().is_none_or(|m| m.len() <= MAX_MEMO_BYTES)
}

/// Why an account cannot receive a video. A video is held by a principal that controls the
/// canister, and controllers are principals: only default accounts hold videos (docs/nft.md,
/// "Accounts").
pub fn recipient_problem(to: &Account, video: &Principal, index: &Principal) -> Option<String> {
    if !to.is_default() {
        return Some(
            "a video is held by a principal's default account (subaccount null or 32 zero bytes): \
             the holder becomes a controller of the video canister, and controllers are principals"
                .into(),
        );
    }
    if to.owner == Principal::anonymous()
        || to.owner == Principal::management_canister()
        || to.owner.as_slice().last() == Some(&0x7f)
    {
        return Some(format!("{} cannot act as an owner", to.owner));
    }
    if to.owner == *video || to.owner == *index {
        return Some("the video itself or its collection cannot own the video".into());
    }
    None
}

/// Module hashes the history in `info` shows a registrar (the spawn canister) installing.
/// The spawn canister installs only canvid's video module, so these are genuine.
pub fn modules_installed_by(info: &CanisterInfoResult, registrars: &[Principal]) -> Vec<[u8; 32]> {
    info.recent_changes
        .iter()
        .filter_map(|c| match (&c.origin, &c.details) {
            (ChangeOrigin::FromCanister(o), Some(ChangeDetails::CodeDeployment(d)))
                if registrars.contains(&o.canister_id) =>
            {
                <[u8; 32]>::try_from(d.module_hash.as_slice()).ok()
            }
            _ => None,
        })
        .collect()
}

/// Does the IC's view of `video` (`info`) show that `holder` controls it alone — the
/// guarantee a sale gives the buyer, and the state a sale starts from? The controllers must
/// include `holder` and be within {holder, the video itself, the registrars (the spawn
/// canister, which keeps platform upgrades)}, and the installed module must be one a registrar
/// installed (`is_trusted`): an owner controls their canister's code, and a tampered module that
/// is its own controller could hand the canister back to the seller after the sale.
pub fn sole_control_problem(
    info: &CanisterInfoResult,
    holder: &Principal,
    video: &Principal,
    registrars: &[Principal],
    is_trusted: impl Fn(&[u8; 32]) -> bool,
) -> Option<String> {
    if !info.controllers.contains(holder) {
        return Some(format!("{holder} is not a controller of video {video}"));
    }
    let others: Vec<String> = info
        .controllers
        .iter()
        .filter(|c| *c != holder && *c != video && !registrars.contains(c))
        .map(|c| c.to_text())
        .collect();
    if !others.is_empty() {
        return Some(format!(
            "video {video} has controllers besides its holder, itself and the platform: {}",
            others.join(", ")
        ));
    }
    match info
        .module_hash
        .as_ref()
        .and_then(|h| <[u8; 32]>::try_from(h.as_slice()).ok())
    {
        Some(h) if is_trusted(&h) => None,
        Some(h) => Some(format!(
            "video {video} runs a module (sha256 {}) that the platform did not install",
            hex(&h)
        )),
        None => Some(format!("video {video} has no code installed")),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ic_cdk_management_canister::{
        Change, CodeDeploymentMode, CodeDeploymentRecord, FromCanisterRecord, FromUserRecord,
    };
    use serde_bytes::ByteBuf;
    use std::collections::BTreeSet;

    fn p(n: u8) -> Principal {
        Principal::from_slice(&[n; 29])
    }
    fn c(n: u64) -> Principal {
        canvid_types::icrc::video_of_token(n)
    }

    fn deploy(origin: ChangeOrigin, hash: [u8; 32]) -> Change {
        Change {
            timestamp_nanos: 0,
            canister_version: 0,
            origin,
            details: Some(ChangeDetails::CodeDeployment(CodeDeploymentRecord {
                mode: CodeDeploymentMode::Install,
                module_hash: hash.to_vec(),
            })),
        }
    }

    fn info(controllers: Vec<Principal>, module: Option<[u8; 32]>) -> CanisterInfoResult {
        CanisterInfoResult {
            total_num_changes: 3,
            recent_changes: vec![],
            module_hash: module.map(|h| h.to_vec()),
            controllers,
        }
    }

    #[test]
    fn the_window_and_the_drift() {
        let now = 10_000 * NS * 3600;
        assert_eq!(check_created_at(now, None), Ok(()));
        assert_eq!(check_created_at(now, Some(now)), Ok(()));
        let oldest = now - (TX_WINDOW_SECS + PERMITTED_DRIFT_SECS) * NS;
        assert_eq!(check_created_at(now, Some(oldest)), Ok(()));
        assert_eq!(
            check_created_at(now, Some(oldest - 1)),
            Err(TimeError::TooOld)
        );
        let latest = now + PERMITTED_DRIFT_SECS * NS;
        assert_eq!(check_created_at(now, Some(latest)), Ok(()));
        assert_eq!(
            check_created_at(now, Some(latest + 1)),
            Err(TimeError::CreatedInFuture { ledger_time: now })
        );
        assert!(dedup_expired(now, oldest - 1) && !dedup_expired(now, oldest));
    }

    #[test]
    fn dedup_keys_separate_methods_callers_and_arguments() {
        let k = dedup_key("icrc7_transfer", &p(1), b"x");
        assert_eq!(k, dedup_key("icrc7_transfer", &p(1), b"x"));
        assert_ne!(k, dedup_key("icrc37_transfer_from", &p(1), b"x"));
        assert_ne!(k, dedup_key("icrc7_transfer", &p(2), b"x"));
        assert_ne!(k, dedup_key("icrc7_transfer", &p(1), b"y"));
    }

    #[test]
    fn who_can_receive_a_video() {
        let (video, index) = (c(5), c(6));
        assert_eq!(recipient_problem(&Account::of(p(1)), &video, &index), None);
        let zeros = Account {
            owner: p(1),
            subaccount: Some(ByteBuf::from(vec![0; 32])),
        };
        assert_eq!(recipient_problem(&zeros, &video, &index), None);
        let sub = Account {
            owner: p(1),
            subaccount: Some(ByteBuf::from(vec![3; 32])),
        };
        assert!(recipient_problem(&sub, &video, &index).is_some());
        for bad in [Principal::anonymous(), video, index] {
            assert!(recipient_problem(&Account::of(bad), &video, &index).is_some());
        }
    }

    #[test]
    fn sole_control_needs_the_holder_alone_and_a_platform_module() {
        let (holder, seller, video, spawn) = (p(1), p(2), c(5), c(9));
        let genuine = [7u8; 32];
        let trusted: BTreeSet<_> = [genuine].into_iter().collect();
        let ok = |i: &CanisterInfoResult| {
            sole_control_problem(i, &holder, &video, &[spawn], |h| trusted.contains(h))
        };
        assert_eq!(ok(&info(vec![holder, video, spawn], Some(genuine))), None);
        assert_eq!(ok(&info(vec![video, holder], Some(genuine))), None);
        assert!(ok(&info(vec![video, spawn], Some(genuine))).is_some());
        assert!(ok(&info(vec![holder, video, seller], Some(genuine))).is_some());
        assert!(ok(&info(vec![holder, video], Some([8; 32]))).is_some());
        assert!(ok(&info(vec![holder, video], None)).is_some());
    }

    #[test]
    fn only_a_registrars_deployments_are_trusted() {
        let spawn = c(9);
        let mut i = info(vec![], None);
        i.recent_changes = vec![
            deploy(
                ChangeOrigin::FromCanister(FromCanisterRecord {
                    canister_id: spawn,
                    canister_version: None,
                }),
                [1; 32],
            ),
            deploy(
                ChangeOrigin::FromUser(FromUserRecord { user_id: p(2) }),
                [2; 32],
            ),
            deploy(
                ChangeOrigin::FromCanister(FromCanisterRecord {
                    canister_id: c(10),
                    canister_version: None,
                }),
                [3; 32],
            ),
        ];
        assert_eq!(modules_installed_by(&i, &[spawn]), vec![[1; 32]]);
    }
}
