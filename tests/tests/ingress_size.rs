//! The IC's ingress size limit covers the whole message, not just the argument: PocketIC 10 (as
//! the IC's HTTP endpoint) refuses a request whose CBOR envelope — argument, method name,
//! sender, canister id, expiry, nonce and framing — exceeds 2 MiB ("Request 0x… is too large.
//! Message byte size N is larger than the max allowed 2097152."). The embedded replica counts
//! the same bytes (`canvid_replica::limits::ingress_message_bytes`).
//!
//! For a few method names and senders, the largest accepted and the smallest refused argument
//! are the same on both backends, and the refusal reads the same. The CLI and SDK upload chunks
//! of 2,000,000 bytes: 97 KB inside the limit.

use canvid_replica::limits::{ingress_message_bytes, MAX_INGRESS_MESSAGE_BYTES};
use canvid_tests::{backend_tests, principal, Backend, BackendExt, Principal, Reject};

/// Whether submitting an argument of `n` bytes was refused for its size (anything else — an
/// accepted message, an unknown method — got past the size check).
fn refused(
    b: &dyn Backend,
    id: Principal,
    sender: Principal,
    method: &str,
    n: usize,
) -> Option<Reject> {
    match b.submit(id, sender, method, vec![0u8; n]) {
        Err(e) if e.message.contains("is too large") => Some(e),
        _ => None,
    }
}

/// The refusal's text without its request id (`Request 0x<id> is too large ...`).
fn without_id(msg: &str) -> String {
    match (msg.find("0x"), msg.find(" is too large")) {
        (Some(a), Some(b)) if a < b => format!("{}0x…{}", &msg[..a], &msg[b..]),
        _ => msg.to_string(),
    }
}

fn envelope_counts_toward_the_limit(b: &dyn Backend) {
    let admin = principal("admin");
    let id = b.create_canister(Some(admin), None, 100_000_000_000_000);
    let probe = canvid_tests::wasm::load("replica-probe");
    b.install(id, probe, candid::encode_args(()).unwrap(), Some(admin))
        .unwrap_or_else(|e| panic!("{}: installing the probe: {e}", b.name()));
    let long = "m".repeat(300);
    // (sender, method, the bytes beyond the argument PocketIC 10 counts, measured)
    let cases: [(Principal, &str, usize); 4] = [
        (admin, "arg_len", 193),
        (admin, "a", 187),
        (admin, &long, 488),
        (Principal::anonymous(), "arg_len", 164),
    ];
    for (sender, method, beyond) in cases {
        let largest = MAX_INGRESS_MESSAGE_BYTES - beyond;
        assert_eq!(
            ingress_message_bytes(&id, &sender, method, largest),
            MAX_INGRESS_MESSAGE_BYTES,
            "the model's count for {} bytes of method name",
            method.len()
        );
        let what = format!(
            "{}: method of {} bytes, sender {sender}",
            b.name(),
            method.len()
        );
        if let Some(e) = refused(b, id, sender, method, largest) {
            panic!("{what}: {largest} bytes refused: {e}");
        }
        let e = refused(b, id, sender, method, largest + 1)
            .unwrap_or_else(|| panic!("{what}: {} bytes accepted", largest + 1));
        assert_eq!(
            without_id(&e.message),
            format!(
                "Request 0x… is too large. Message byte size {} is larger than the max allowed 2097152.",
                MAX_INGRESS_MESSAGE_BYTES + 1
            ),
            "{what}"
        );
    }
    // The upload chunk of the CLI and SDK fits with room to spare.
    let chunk =
        candid::encode_args((0u32, serde_bytes::ByteBuf::from(vec![0u8; 2_000_000]))).unwrap();
    assert!(
        ingress_message_bytes(&id, &admin, "put_chunk", chunk.len()) + 90_000
            < MAX_INGRESS_MESSAGE_BYTES
    );
}

backend_tests!(envelope_counts_toward_the_limit);
