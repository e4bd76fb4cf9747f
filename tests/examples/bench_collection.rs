//! The collection's costs on the embedded replica: instructions of its calls with `N` tokens
//! registered (default 5,000; `CANVID_COLLECTION_TOKENS`), and the cycles one real sale costs
//! the collection (two `canister_info` calls and the video's own transfer). Stable memory per
//! token at 10⁶ tokens is measured natively by
//! `cargo run --release -p canvid-index --example collection_scale`.
//!
//! ```text
//! scripts/build-wasm.sh && cargo run --release -p canvid-tests --example bench_collection
//! ```
//!
//! Figures go to docs/performance.md; none is asserted.

use candid::Nat;
use canvid_icrc3::types::{GetBlocksRequest, GetBlocksResult};
use canvid_tests::backend::{Backend, BackendExt};
use canvid_tests::clients::ok;
use canvid_tests::deploy::deploy;
use canvid_tests::{principal, GenFile, Principal, ReplicaBackend};
use canvid_types::icrc::{
    token_id_of, video_of_token, Account, ApprovalInfo, ApproveTokenArg, ApproveTokenResult,
    TransferArg, TransferResult,
};
use canvid_types::index::VideoRegistration;
use canvid_types::spawn::CreateVideoArgs;

fn main() {
    let n: u64 = std::env::var("CANVID_COLLECTION_TOKENS")
        .ok()
        .map(|v| v.parse().expect("a number"))
        .unwrap_or(5_000);
    let b = ReplicaBackend::new();
    let d = deploy(&b);
    let idx = d.index_client();
    ok(
        "set_registrars",
        idx.set_registrars(d.admin, vec![d.spawn, d.admin]),
    );
    let holder = |i: u64| principal(&format!("holder-{}", i % 100));

    let mut register_instr = 0u64;
    for i in 0..n {
        let owner = holder(i);
        let reg = VideoRegistration {
            video: video_of_token(10_000_000 + i),
            creator: owner,
            owner,
        };
        let (r, cost) = b.update1_with_cost::<_, canvid_types::Result<()>>(
            d.index,
            d.admin,
            "register_video",
            &reg,
        );
        r.unwrap().unwrap();
        if i + 100 >= n {
            register_instr += cost.map_or(0, |c| c.instructions);
        }
    }
    println!(
        "register_video (7mint block + maps + certified tip), at {n} tokens: {} instructions",
        register_instr / 100.min(n)
    );

    let q = |method: &str, arg: Vec<u8>| {
        let (r, cost) = b.query_raw_with_cost(d.index, Principal::anonymous(), method, arg);
        r.unwrap_or_else(|e| panic!("{method}: {e}"));
        cost.map_or(0, |c| c.instructions)
    };
    let ids: Vec<Nat> = (0..100)
        .map(|i| Nat::from(10_000_000 + n / 2 + i))
        .collect();
    println!(
        "icrc7_owner_of(100 ids): {} instructions",
        q("icrc7_owner_of", candid::encode_one(&ids).unwrap())
    );
    println!(
        "icrc7_token_metadata(100 ids): {} instructions",
        q("icrc7_token_metadata", candid::encode_one(&ids).unwrap())
    );
    println!(
        "icrc7_tokens(prev = middle, take 1000): {} instructions",
        q(
            "icrc7_tokens",
            candid::encode_args((
                Some(Nat::from(10_000_000 + n / 2)),
                Some(Nat::from(1000u32))
            ))
            .unwrap()
        )
    );
    println!(
        "icrc7_tokens_of(a holder of {}, take 1000): {} instructions",
        n / 100,
        q(
            "icrc7_tokens_of",
            candid::encode_args((
                Account::of(holder(7)),
                None::<Nat>,
                Some(Nat::from(1000u32))
            ))
            .unwrap()
        )
    );
    let blocks = vec![GetBlocksRequest {
        start: Nat::from(n / 2),
        length: Nat::from(500u32),
    }];
    println!(
        "icrc3_get_blocks(500 7mint blocks): {} instructions",
        q("icrc3_get_blocks", candid::encode_one(&blocks).unwrap())
    );
    let r: GetBlocksResult = b
        .query1(d.index, Principal::anonymous(), "icrc3_get_blocks", &blocks)
        .unwrap();
    assert_eq!(r.blocks.len(), 500);

    // An approval by a holder.
    let now = b
        .time()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let approve = vec![ApproveTokenArg {
        token_id: Nat::from(10_000_007u64),
        approval_info: ApprovalInfo {
            spender: Account::of(principal("market")),
            from_subaccount: None,
            expires_at: None,
            memo: None,
            created_at_time: now,
        },
    }];
    let (r, cost) = b.update1_with_cost::<_, Vec<Option<ApproveTokenResult>>>(
        d.index,
        holder(7),
        "icrc37_approve_tokens",
        &approve,
    );
    assert!(matches!(r.unwrap()[0], Some(Ok(_))));
    println!(
        "icrc37_approve_tokens(1): {} instructions",
        cost.map_or(0, |c| c.instructions)
    );

    // A real sale of a spawned, finished video: what it costs the collection in cycles.
    let (alice, bob) = (principal("alice"), principal("bob"));
    let video = ok(
        "create_video",
        d.spawn_client().create_video(
            alice,
            &CreateVideoArgs {
                title: "bench".into(),
                description: String::new(),
                tags: vec![],
                declared_size: 5_000,
                owner: None,
            },
        ),
    )
    .canister_id;
    d.video(video).upload(alice, &GenFile::new(1, 5_000, 5_000));
    let before = b.cycle_balance(d.index);
    let r: Vec<Option<TransferResult>> = b
        .update1(
            d.index,
            alice,
            "icrc7_transfer",
            &vec![TransferArg {
                from_subaccount: None,
                to: Account::of(bob),
                token_id: Nat::from(token_id_of(&video).unwrap()),
                memo: None,
                created_at_time: None,
            }],
        )
        .unwrap();
    assert!(matches!(r[0], Some(Ok(_))), "{r:?}");
    // The metadata refresh after the transfer runs from a timer.
    for _ in 0..5 {
        b.tick();
    }
    println!(
        "icrc7_transfer of a real video (ingress, two canister_info, the video's transfer, its \
         ownership report, the metadata refresh): {} cycles of the collection",
        before - b.cycle_balance(d.index)
    );
}
