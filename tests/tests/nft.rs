//! canvid as an ICRC-7 collection (docs/nft.md): every spawned video is a token of the index
//! canister, and moving the token moves the video canister itself.

use candid::Nat;
use canvid_tests::clients::ok;
use canvid_tests::deploy::{deploy, Deployment};
use canvid_tests::{backend_tests, principal, Backend, BackendExt, GenFile, Principal};
use canvid_types::icrc::{token_id_of, Account, TransferArg, TransferError, TransferResult};
use canvid_types::spawn::CreateVideoArgs;
use std::collections::BTreeSet;

fn set(v: impl IntoIterator<Item = Principal>) -> BTreeSet<Principal> {
    v.into_iter().collect()
}

/// A spawned, uploaded and finished video of `owner`.
fn finished_video(d: &Deployment, owner: Principal) -> Principal {
    let id = ok(
        "create_video",
        d.spawn_client().create_video(
            owner,
            &CreateVideoArgs {
                title: "token".into(),
                description: String::new(),
                tags: vec![],
                declared_size: 5_000,
                owner: None,
            },
        ),
    )
    .canister_id;
    d.video(id).upload(owner, &GenFile::new(7, 5_000, 5_000));
    assert_eq!(set(d.b.controllers(id)), set([owner, id, d.spawn]));
    id
}

fn owner_of(d: &Deployment, tid: u64) -> Option<Account> {
    let r: Vec<Option<Account>> =
        d.b.query1(
            d.index,
            Principal::anonymous(),
            "icrc7_owner_of",
            &vec![Nat::from(tid)],
        )
        .unwrap();
    r.into_iter().next().flatten()
}

fn transfer(d: &Deployment, by: Principal, tid: u64, to: Principal) -> TransferResult {
    try_transfer(d, by, tid, to).unwrap_or_else(|e| panic!("icrc7_transfer by {by}: {e}"))
}

fn try_transfer(
    d: &Deployment,
    by: Principal,
    tid: u64,
    to: Principal,
) -> Result<TransferResult, canvid_tests::Reject> {
    let r: Vec<Option<TransferResult>> = d.b.update1(
        d.index,
        by,
        "icrc7_transfer",
        &vec![TransferArg {
            from_subaccount: None,
            to: Account::of(to),
            token_id: Nat::from(tid),
            memo: None,
            created_at_time: None,
        }],
    )?;
    Ok(r.into_iter().next().flatten().expect("one answer"))
}

fn the_holder_transfers_the_canister(b: &dyn Backend) {
    let d = deploy(b);
    let (alice, bob) = (principal("alice"), principal("bob"));
    let video = finished_video(&d, alice);
    let tid = token_id_of(&video).unwrap();
    assert_eq!(owner_of(&d, tid), Some(Account::of(alice)));
    // Not a holder of any token: refused at ingress, which the collection does not pay for.
    let r = try_transfer(&d, bob, tid, bob).unwrap_err();
    assert_eq!(r.error_code, "IC0406", "{r}");
    // A holder of another token: the typed refusal.
    let carol = principal("carol");
    let _carols = finished_video(&d, carol);
    assert_eq!(
        transfer(&d, carol, tid, carol),
        Err(TransferError::Unauthorized)
    );
    let block = transfer(&d, alice, tid, bob).expect("the holder's transfer");
    assert_eq!(owner_of(&d, tid), Some(Account::of(bob)));
    assert_eq!(set(b.controllers(video)), set([bob, video, d.spawn]));
    assert_eq!(d.video(video).metadata().owner, bob);
    assert!(block >= 1u8, "after the mint: {block}");
    // The seller can do nothing any more.
    let r = try_transfer(&d, alice, tid, alice).unwrap_err();
    assert_eq!(r.error_code, "IC0406", "{r}");
}

backend_tests!(the_holder_transfers_the_canister);
