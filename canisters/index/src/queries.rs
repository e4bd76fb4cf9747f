//! Read endpoints, open to everybody: one video's entry, a creator's or owner's videos (paged)
//! and their counts, and the canister's stats.

use candid::Principal;
use canvid_types::index::{IndexStats, ListArgs, Page, VideoEntry};
use ic_cdk::query;

use crate::store;

#[query]
fn get_video(video: Principal) -> Option<VideoEntry> {
    store::with(|s| s.get(&video))
}

#[query]
fn videos_by_creator(args: ListArgs) -> Page {
    store::with(|s| s.by_creator(&args))
}

#[query]
fn videos_by_owner(args: ListArgs) -> Page {
    store::with(|s| s.by_owner(&args))
}

#[query]
fn count_by_creator(p: Principal) -> u64 {
    store::with(|s| s.count_by_creator(&p))
}

#[query]
fn count_by_owner(p: Principal) -> u64 {
    store::with(|s| s.count_by_owner(&p))
}

#[query]
fn stats() -> IndexStats {
    store::with(|s| s.stats())
}
