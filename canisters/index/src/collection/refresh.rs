//! The token summaries (`icrc7_token_metadata`'s title, description, MIME type, size,
//! duration, digest) are read from the videos themselves: the video's `metadata` is the source
//! (its owner edits it there), the collection keeps a copy so that its queries answer without
//! calls. A copy is refreshed by `refresh_token_metadata` (the holder, the video itself, or an
//! admin; e.g. the SDK after an upload) and after every transfer the collection applies.

use candid::{Nat, Principal};
use canvid_types::icrc::{token_id_from_nat, video_of_token};
use canvid_types::video::{VideoMetadata, VideoStatus};
use canvid_types::{Error, Result};
use ic_cdk::api::{msg_caller, time};
use ic_cdk::call::Call;

use std::cell::RefCell;

use super::limits::{RateLimiter, REFRESHES_PER_WINDOW};
use super::store::TokenSummary;
use super::MAX_UPDATE_BATCH;
use crate::store;

thread_local! {
    /// Explicit refreshes per token and hour (`super::limits`).
    static REFRESHES: RefCell<RateLimiter> = RefCell::new(RateLimiter::default());
}

/// Reads `video`'s metadata and records its summary (a `7update_token` block if it changed).
pub(crate) async fn refresh(video: Principal) -> Result<()> {
    let answer = Call::bounded_wait(video, "metadata")
        .await
        .map_err(|e| Error::CallFailed {
            target: video,
            method: "metadata".into(),
            reason: e.to_string(),
        })?;
    let m: VideoMetadata = answer.candid().map_err(|e| Error::CallFailed {
        target: video,
        method: "metadata".into(),
        reason: format!("not a canvid video's answer: {e}"),
    })?;
    let summary = TokenSummary {
        title: m.title,
        description: m.description,
        mime_type: m.mime_type,
        size: m.size,
        duration_ms: m.duration_ms,
        digest: m.digest,
        ready: m.status == VideoStatus::Ready,
        refreshed_at: time(),
    };
    let out = store::with_mut(|s| s.set_token_summary(&video, summary, time()));
    crate::certify();
    out.map(|_| ()).map_err(|reason| Error::Conflict { reason })
}

/// Refreshes in the background (after a transfer: its answer does not wait for it).
pub(crate) fn refresh_later(video: Principal) {
    ic_cdk_timers::set_timer(std::time::Duration::ZERO, async move {
        let _ = refresh(video).await;
    });
}

/// Re-reads the videos' own metadata into the collection's token metadata. For each token: the
/// holder, the video canister itself or an admin may ask (each costs the collection a call).
#[ic_cdk::update]
async fn refresh_token_metadata(token_ids: Vec<Nat>) -> Vec<Result<()>> {
    if token_ids.len() > MAX_UPDATE_BATCH {
        return vec![Err(Error::TooLarge {
            size: token_ids.len() as u64,
            limit: MAX_UPDATE_BATCH as u64,
        })];
    }
    let caller = msg_caller();
    let mut out = Vec::with_capacity(token_ids.len());
    for t in token_ids {
        let Some(tid) = token_id_from_nat(&t) else {
            out.push(Err(Error::NotFound {
                what: format!("token {t}"),
            }));
            continue;
        };
        let video = video_of_token(tid);
        let allowed = store::with(|s| match s.token_holder(tid) {
            None => Err(Error::NotFound {
                what: format!("token {t}"),
            }),
            Some(holder) if holder == caller || video == caller || s.is_admin(&caller) => Ok(()),
            Some(_) => Err(Error::NotAuthorized {
                caller,
                reason: "the token's holder, its video or an admin may refresh it".into(),
            }),
        });
        let allowed = allowed.and_then(|()| {
            REFRESHES
                .with(|r| r.borrow_mut().admit(tid, time(), REFRESHES_PER_WINDOW))
                .map_err(|wait_ns| Error::Busy {
                    reason: format!(
                        "token {tid} was refreshed {REFRESHES_PER_WINDOW} times this hour; retry in {} s",
                        wait_ns.div_ceil(1_000_000_000)
                    ),
                })
        });
        out.push(match allowed {
            Ok(()) => refresh(video).await,
            Err(e) => Err(e),
        });
    }
    out
}
