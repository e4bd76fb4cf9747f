//! The collection at 10⁶ tokens, natively (the canister's own store code over an in-memory
//! stable memory): stable memory per token and per block, and the paging answers at that
//! size. Instructions per call are measured on the embedded replica by
//! `cargo run --release -p canvid-tests --example bench_collection`.
//!
//! `cargo run --release -p canvid-index --example collection_scale [-- <tokens>]`

use std::time::Instant;

use candid::{Nat, Principal};
use canvid_index::logic::VerifiedInfo;
use canvid_index::store::IndexStore;
use canvid_types::icrc::{video_of_token, Account};
use canvid_types::index::{OwnerChange, VideoRegistration};
use ic_stable_structures::{DefaultMemoryImpl, Memory};

fn user(n: u64) -> Principal {
    let mut b = [0x42u8; 29];
    b[..8].copy_from_slice(&n.to_be_bytes());
    Principal::from_slice(&b)
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("a number of tokens"))
        .unwrap_or(1_000_000);
    let holders = 10_000u64;
    let mem = DefaultMemoryImpl::default();
    let mut s = IndexStore::open(mem.clone(), user(u64::MAX));
    let spawn = video_of_token(u64::MAX - 1);
    s.set_registrars(&[spawn]).unwrap();
    let pages = |m: &DefaultMemoryImpl| m.size();

    let empty = pages(&mem);
    let t = Instant::now();
    for i in 0..n {
        let owner = user(i % holders);
        s.register(
            &VideoRegistration {
                video: video_of_token(1_000 + i),
                creator: owner,
                owner,
            },
            1_700_000_000_000_000_000 + i,
        )
        .unwrap();
    }
    let minted = pages(&mem);
    let mint_secs = t.elapsed().as_secs_f64();
    println!(
        "{n} tokens minted in {mint_secs:.1} s natively; stable memory {} MiB ({} bytes per token, \
         index maps + 7mint block); log {} bytes ({} per block)",
        (minted - empty) * 64 / 1024,
        (minted - empty) * 65_536 / n,
        s.log().size_bytes(),
        s.log().size_bytes() / n,
    );

    // One direct sale per token (the report path: 7xfer block, owner maps).
    let t = Instant::now();
    for i in 0..n {
        let video = video_of_token(1_000 + i);
        let new_owner = user(holders + i % holders);
        s.report_owner_change(
            &video,
            &OwnerChange {
                new_owner,
                transfer_seq: 1,
            },
            &VerifiedInfo {
                controllers: vec![new_owner, video],
                total_num_changes: 2,
            },
            1_800_000_000_000_000_000 + i,
        )
        .unwrap();
    }
    let sold = pages(&mem);
    println!(
        "{n} transfers in {:.1} s natively; stable memory +{} MiB ({} bytes per transfer: 7xfer \
         block + history + owner maps); log {} blocks, {} bytes",
        t.elapsed().as_secs_f64(),
        (sold - minted) * 64 / 1024,
        (sold - minted) * 65_536 / n,
        s.log().len(),
        s.log().size_bytes()
    );

    // Paging at this size: the last page of the collection and of one holder.
    let last = s.tokens(Some(&Nat::from(1_000 + n - 1_001)), 1_000);
    assert_eq!(last.len(), 1_000);
    let one = s.tokens_of(&Account::of(user(holders)), None, 1_000);
    assert_eq!(one.len() as u64, n / holders);
    println!(
        "pages: icrc7_tokens(prev near the end, take 1000) = {} ids; icrc7_tokens_of(a holder of \
         {}) = {} ids",
        last.len(),
        n / holders,
        one.len()
    );
}
