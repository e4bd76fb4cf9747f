//! Property tests of the candid decoding of every endpoint's argument (issue 15): arbitrary
//! bytes, and valid encodings with bytes overwritten, decode to `Err` or a value, never panic;
//! valid values round-trip. `CANVID_PROPTEST_CASES` sets the number of cases (default 256).
//!
//! Decoding uses the limits the canisters' ic-cdk applies to ingress arguments too (a decoding
//! and a skipping quota), and once without any, as candid's defaults.

use std::fmt::Debug;

use candid::de::DecoderConfig;
use candid::{CandidType, Principal};
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde_bytes::ByteBuf;

use crate::index::{IndexInit, ListArgs, OwnerChange, VideoRegistration};
use crate::spawn::{
    CreateVideoArgs, CyclesConfig, QuotaArgs, SetWasmArgs, SpawnInit, SpawnListArgs, TopUpArgs,
    UpgradeArgs,
};
use crate::video::{
    ChangeOwnerArgs, ChunkUpload, DigestsArgs, MetadataPatch, MissingArgs, OfferArgs, PosterArgs,
    RangeArgs, UploadSpec, VideoInit,
};

fn cases() -> u32 {
    std::env::var("CANVID_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn principal() -> impl Strategy<Value = Principal> {
    prop_oneof![
        Just(Principal::anonymous()),
        Just(Principal::management_canister()),
        prop::collection::vec(any::<u8>(), 0..=29).prop_map(|b| Principal::from_slice(&b)),
    ]
}

fn blob(max: usize) -> impl Strategy<Value = ByteBuf> {
    prop::collection::vec(any::<u8>(), 0..max).prop_map(ByteBuf::from)
}

fn text() -> impl Strategy<Value = String> {
    ".{0,12}"
}

fn principals() -> impl Strategy<Value = Vec<Principal>> {
    prop::collection::vec(principal(), 0..4)
}

/// Decodes `bytes` as a `T` with quotas (like a canister) and without; must not panic.
fn decode_both<T: CandidType + DeserializeOwned>(bytes: &[u8]) {
    let mut config = DecoderConfig::new();
    config
        .set_decoding_quota(1_000_000)
        .set_skipping_quota(10_000);
    let _ = candid::utils::decode_one_with_config::<T>(bytes, &config);
    let _ = candid::decode_one::<T>(bytes);
}

/// Valid value: round-trips. The same encoding with bytes overwritten, truncated or extended,
/// and arbitrary bytes after the `DIDL` magic: decoded without panicking.
fn check<T: CandidType + DeserializeOwned + PartialEq + Debug>(
    value: &T,
    edits: &[(usize, u8)],
    cut: usize,
    noise: &[u8],
) -> Result<(), TestCaseError> {
    let bytes = candid::encode_one(value).expect("encode a valid value");
    let back: T = candid::decode_one(&bytes).expect("decode a valid encoding");
    prop_assert_eq!(&back, value);
    let mut mutated = bytes.clone();
    for &(at, b) in edits {
        let at = at % mutated.len();
        mutated[at] = b;
    }
    decode_both::<T>(&mutated);
    decode_both::<T>(&bytes[..cut % (bytes.len() + 1)]);
    let mut longer = bytes.clone();
    longer.extend_from_slice(noise);
    decode_both::<T>(&longer);
    let mut arbitrary = b"DIDL".to_vec();
    arbitrary.extend_from_slice(noise);
    decode_both::<T>(&arbitrary);
    decode_both::<T>(noise);
    Ok(())
}

fn upload_spec() -> impl Strategy<Value = UploadSpec> {
    (
        text(),
        any::<u64>(),
        any::<u32>(),
        prop::option::of(prop::collection::vec(blob(40), 0..4)),
        prop::option::of(blob(40)),
        prop::option::of(any::<u64>()),
    )
        .prop_map(
            |(mime_type, total_size, chunk_size, chunk_digests, file_digest, duration_ms)| {
                UploadSpec {
                    path: None,
                    rendition: None,
                    mime_type,
                    total_size,
                    chunk_size,
                    chunk_digests,
                    file_digest,
                    duration_ms,
                    encryption: None,
                }
            },
        )
}

fn quota() -> impl Strategy<Value = QuotaArgs> {
    (any::<u64>(), any::<u128>()).prop_map(|(max_videos, max_cycles)| QuotaArgs {
        max_videos,
        max_cycles,
    })
}

fn edits() -> impl Strategy<Value = Vec<(usize, u8)>> {
    prop::collection::vec((any::<usize>(), any::<u8>()), 1..4)
}

fn noise() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..64)
}

/// One test per endpoint argument type: `check` with a generated value.
macro_rules! endpoint_args {
    ($($name:ident: $ty:ty = $strategy:expr;)*) => {
        proptest! {
            #![proptest_config(ProptestConfig::with_cases(cases()))]
            $(
                #[test]
                fn $name(v in $strategy, e in edits(), cut in any::<usize>(), n in noise()) {
                    check::<$ty>(&v, &e, cut, &n)?;
                }
            )*
        }
    };
}

endpoint_args! {
    // video
    video_init: VideoInit = (principal(), principal(), prop::option::of(principal()), text(), text(), prop::collection::vec(text(), 0..3), prop::option::of(principal()))
        .prop_map(|(owner, creator, index, title, description, tags, funded_by)| VideoInit { owner, creator, index, title, description, tags, funded_by, platform_fee: None });
    begin_upload: UploadSpec = upload_spec();
    put_chunk: ChunkUpload = (any::<u32>(), blob(300)).prop_map(|(index, data)| ChunkUpload { path: None, index, data });
    missing_chunks: MissingArgs = (prop::option::of(any::<u32>()), prop::option::of(any::<u32>()))
        .prop_map(|(start, limit)| MissingArgs { path: None, start, limit });
    chunk_digests: DigestsArgs = (any::<u32>(), prop::option::of(any::<u32>()))
        .prop_map(|(start, limit)| DigestsArgs { path: None, start, limit });
    get_chunk: u32 = any::<u32>();
    read_range: RangeArgs = (any::<u64>(), any::<u64>()).prop_map(|(offset, length)| RangeArgs { path: None, offset, length });
    update_metadata: MetadataPatch = (prop::option::of(text()), prop::option::of(text()), prop::option::of(prop::collection::vec(text(), 0..3)))
        .prop_map(|(title, description, tags)| MetadataPatch { title, description, tags });
    add_or_remove_uploader: Principal = principal();
    approve: Option<Principal> = prop::option::of(principal());
    change_owner: ChangeOwnerArgs = (principal(), prop::option::of(principals()))
        .prop_map(|(new_owner, keep_controllers)| ChangeOwnerArgs { new_owner, keep_controllers });
    offer_ownership: OfferArgs = (principal(), prop::option::of(principals()))
        .prop_map(|(new_owner, keep_controllers)| OfferArgs { new_owner, keep_controllers });
    set_poster: PosterArgs = (text(), blob(300)).prop_map(|(mime_type, data)| PosterArgs { mime_type, data });
    // spawn
    spawn_init: SpawnInit = (principals(), prop::option::of(principal()), prop::option::of(blob(100)), prop::option::of(quota()),
            prop::option::of((any::<u128>(), any::<u128>(), any::<u128>()).prop_map(|(base, per_byte, reserve)| CyclesConfig { base, per_byte, reserve })),
            prop::option::of(principals()))
        .prop_map(|(admins, index, video_wasm, default_quota, cycles, app_canisters)| SpawnInit { admins, index, video_wasm, default_quota, cycles, app_canisters, platform_fee: None });
    create_video: CreateVideoArgs = (text(), text(), prop::collection::vec(text(), 0..3), any::<u64>(), prop::option::of(principal()))
        .prop_map(|(title, description, tags, declared_size, owner)| CreateVideoArgs { title, description, tags, declared_size, owner });
    set_video_wasm: SetWasmArgs = (blob(300), blob(40)).prop_map(|(wasm, sha256)| SetWasmArgs { wasm, sha256 });
    // set_quota's second argument (its first is a principal, as add_uploader's).
    set_quota: QuotaArgs = quota();
    set_app_canisters_or_registrars: Vec<Principal> = principals();
    set_cycles_config: CyclesConfig = (any::<u128>(), any::<u128>(), any::<u128>()).prop_map(|(base, per_byte, reserve)| CyclesConfig { base, per_byte, reserve });
    set_default_quota: Option<QuotaArgs> = prop::option::of(quota());
    list_videos: SpawnListArgs = (prop::option::of(principal()), prop::option::of(any::<u32>()))
        .prop_map(|(cursor, limit)| SpawnListArgs { cursor, limit });
    top_up: TopUpArgs = (principal(), any::<u128>()).prop_map(|(video, amount)| TopUpArgs { video, amount });
    upgrade_videos: UpgradeArgs = (prop::option::of(principals()), prop::option::of(blob(100)))
        .prop_map(|(videos, arg)| UpgradeArgs { videos, arg });
    // index
    index_init: IndexInit = (principals(), principals()).prop_map(|(admins, registrars)| IndexInit { admins, registrars });
    register_video: VideoRegistration = (principal(), principal(), principal())
        .prop_map(|(video, creator, owner)| VideoRegistration { video, creator, owner });
    report_owner_change: OwnerChange = (principal(), any::<u64>())
        .prop_map(|(new_owner, transfer_seq)| OwnerChange { new_owner, transfer_seq });
    list_by: ListArgs = (principal(), prop::option::of(principal()), prop::option::of(any::<u32>()))
        .prop_map(|(principal, cursor, limit)| ListArgs { principal, cursor, limit });
}
