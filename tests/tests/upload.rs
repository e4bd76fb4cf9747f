//! Uploading into a video canister: out of order, retried, resumed; and every refusal, with
//! its exact typed error.

use canvid_tests::clients::{err, ok, rejected, spec_for, Relay, Video};
use canvid_tests::deploy::{standalone_video, T};
use canvid_tests::{backend_tests, principal, Backend, GenFile, Principal, Rng};
use canvid_types::video::{
    DigestsArgs, MissingArgs, UploadSpec, VideoStatus, MAX_CHUNK_SIZE, MAX_VIDEO_SIZE,
    UPLOAD_WINDOW_CHUNKS,
};
use canvid_types::Error;

/// inspect_message refused the ingress message.
const IC0406: &str = "IC0406";

fn owner() -> Principal {
    principal("owner")
}

/// Ten 100,000-byte chunks and a short last one.
fn small_file(seed: u64) -> GenFile {
    GenFile::new(seed, 10 * 100_000 + 12_345, 100_000)
}

fn upload_out_of_order_with_retries_and_resume(b: &dyn Backend) {
    let v = standalone_video(b, owner(), None, 50 * T);
    let file = small_file(1);
    let n = file.chunk_count();
    assert_eq!(n, 11);

    let meta = ok(
        "begin_upload",
        v.begin_upload(owner(), &spec_for(&file, true)),
    );
    assert_eq!(meta.status, VideoStatus::Uploading);
    assert_eq!(meta.chunk_count, n);
    assert_eq!(meta.size, file.size);

    // First "session": a shuffled half of the chunks, some sent twice (client retries).
    let mut order: Vec<u32> = (0..n).collect();
    Rng::new(42).shuffle(&mut order);
    let (first, rest) = order.split_at(6);
    v.upload_chunks(owner(), &file, Some(first));
    for &i in &first[..2] {
        let r = ok("retried put_chunk", v.put_chunk(owner(), i, file.chunk(i)));
        assert_eq!(
            r.uploaded_chunks, 6,
            "a repeated chunk is not counted twice"
        );
    }

    // Finishing now is refused with exactly the missing chunks.
    let mut want_missing: Vec<u32> = rest.to_vec();
    want_missing.sort();
    match err("early finish_upload", v.finish_upload(owner())) {
        Error::Incomplete {
            missing,
            missing_count,
        } => {
            assert_eq!(missing_count, want_missing.len() as u32);
            assert_eq!(missing, want_missing);
        }
        e => panic!("expected Incomplete, got {e:?}"),
    }

    // "Interruption": the client lost its state. It re-declares the same upload (resume) and
    // asks what is missing, page by page.
    let meta = ok(
        "begin_upload (resume)",
        v.begin_upload(owner(), &spec_for(&file, true)),
    );
    assert_eq!(
        meta.uploaded_chunks, 6,
        "resuming keeps the chunks already stored"
    );
    // The digests of what is stored, with gaps where chunks are missing; a stranger cannot
    // read them before the video is Ready.
    let page = ok(
        "chunk_digests while uploading",
        v.chunk_digests(owner(), &DigestsArgs::default()),
    );
    assert_eq!(page.digests.len() as u32, file.chunk_count());
    for (i, d) in page.digests.iter().enumerate() {
        match d {
            Some(d) => assert_eq!(d.as_slice(), file.chunk_digest(i as u32), "chunk {i}"),
            None => assert!(want_missing.contains(&(i as u32)), "chunk {i} is stored"),
        }
    }
    match err(
        "chunk_digests by a stranger while uploading",
        v.chunk_digests(principal("stranger"), &DigestsArgs::default()),
    ) {
        // As for get_chunk: to others the video does not exist as content yet.
        Error::NotReady { .. } => {}
        e => panic!("expected NotReady, got {e:?}"),
    }
    let mut found = Vec::new();
    let mut start = None;
    loop {
        let page = ok(
            "missing_chunks",
            v.missing_chunks(
                owner(),
                &MissingArgs {
                    path: None,
                    start,
                    limit: Some(2),
                },
            ),
        );
        assert!(page.missing.len() <= 2);
        assert_eq!(page.missing_count, want_missing.len() as u32);
        found.extend(page.missing);
        match page.next {
            Some(next) => start = Some(next),
            None => break,
        }
    }
    assert_eq!(found, want_missing);

    // Second session: the missing chunks, in reverse order.
    let mut second = want_missing.clone();
    second.reverse();
    v.upload_chunks(owner(), &file, Some(&second));
    let page = ok(
        "missing_chunks",
        v.missing_chunks(owner(), &MissingArgs::default()),
    );
    assert_eq!(page.missing_count, 0);
    assert!(page.missing.is_empty());

    let meta = ok("finish_upload", v.finish_upload(owner()));
    assert_eq!(meta.status, VideoStatus::Ready);
    assert_eq!(meta.uploaded_bytes, file.size);
    let want_digest = spec_for(&file, true).file_digest.expect("declared");
    assert_eq!(meta.digest.as_ref(), Some(&want_digest));

    // Read back: anyone may read a Ready video, and check every chunk against its digest
    // (paged: 3 digests per page here).
    let reader = principal("viewer");
    let mut digests = Vec::new();
    let mut start = 0;
    loop {
        let page = ok(
            "chunk_digests",
            v.chunk_digests(
                reader,
                &DigestsArgs {
                    path: None,
                    start,
                    limit: Some(3),
                },
            ),
        );
        assert_eq!(page.start, start);
        assert!(page.digests.len() <= 3);
        digests.extend(
            page.digests
                .into_iter()
                .map(|d| d.expect("Ready: all stored")),
        );
        match page.next {
            Some(next) => start = next,
            None => break,
        }
    }
    let want: Vec<[u8; 32]> = (0..file.chunk_count())
        .map(|i| file.chunk_digest(i))
        .collect();
    let got: Vec<&[u8]> = digests.iter().map(|d| d.as_slice()).collect();
    assert_eq!(got, want.iter().map(|d| d.as_slice()).collect::<Vec<_>>());
    v.verify_chunks(reader, &file);
    // Windows that straddle every chunk boundary.
    assert_eq!(v.read_all_ranges(reader, file.size, 77_777), file.sha256());
    // A range ending exactly at the end of the file, and one past it.
    let tail = ok("read_range tail", v.read_range(reader, file.size - 10, 10));
    assert_eq!(tail.as_slice(), file.range(file.size - 10, 10).as_slice());
    match err(
        "read_range past the end",
        v.read_range(reader, file.size - 10, 11),
    ) {
        Error::InvalidArgument { .. } => {}
        e => panic!("expected InvalidArgument, got {e:?}"),
    }
    match err(
        "read_range too long",
        v.read_range(reader, 0, MAX_CHUNK_SIZE as u64 + 1),
    ) {
        Error::TooLarge { size, limit } => {
            assert_eq!(size, MAX_CHUNK_SIZE as u64 + 1);
            assert_eq!(limit, MAX_CHUNK_SIZE as u64);
        }
        e => panic!("expected TooLarge, got {e:?}"),
    }
}

fn chunk_refusals(b: &dyn Backend) {
    let v = standalone_video(b, owner(), None, 50 * T);
    let file = small_file(2);

    // Before begin_upload.
    match err(
        "put_chunk before begin",
        v.put_chunk(owner(), 0, file.chunk(0)),
    ) {
        Error::NotReady { .. } => {}
        e => panic!("expected NotReady, got {e:?}"),
    }

    // Declarations out of bounds.
    let mut spec = spec_for(&file, false);
    spec.total_size = MAX_VIDEO_SIZE + 1;
    match err("begin_upload oversize", v.begin_upload(owner(), &spec)) {
        Error::TooLarge { size, limit } => {
            assert_eq!(size, MAX_VIDEO_SIZE + 1);
            assert_eq!(limit, MAX_VIDEO_SIZE);
        }
        e => panic!("expected TooLarge, got {e:?}"),
    }
    let mut spec = spec_for(&file, false);
    spec.chunk_size = MAX_CHUNK_SIZE + 1;
    match err(
        "begin_upload chunk_size > 2,000,000",
        v.begin_upload(owner(), &spec),
    ) {
        Error::InvalidArgument { .. } => {}
        e => panic!("expected InvalidArgument, got {e:?}"),
    }
    // The MIME type becomes the Content-Type of the video's HTTP answers (security review L1).
    for mime in ["video/mp4\r\nX: y", "text/html", "image/svg+xml"] {
        let mut spec = spec_for(&file, false);
        spec.mime_type = mime.into();
        match err("begin_upload mime_type", v.begin_upload(owner(), &spec)) {
            Error::InvalidArgument { reason } => assert!(reason.contains("mime_type"), "{reason}"),
            e => panic!("{mime:?}: expected InvalidArgument, got {e:?}"),
        }
    }
    let mut spec = spec_for(&file, true);
    spec.chunk_digests.as_mut().expect("declared").pop();
    match err(
        "begin_upload with a digest missing",
        v.begin_upload(owner(), &spec),
    ) {
        Error::InvalidArgument { .. } => {}
        e => panic!("expected InvalidArgument, got {e:?}"),
    }

    ok(
        "begin_upload",
        v.begin_upload(owner(), &spec_for(&file, true)),
    );

    // A chunk whose bytes do not match its declared digest.
    let mut bad = file.chunk(3);
    bad[17] ^= 0xff;
    match err(
        "put_chunk wrong digest",
        v.put_chunk(owner(), 3, bad.clone()),
    ) {
        Error::WrongDigest {
            index,
            expected,
            actual,
        } => {
            assert_eq!(index, Some(3));
            assert_eq!(expected, file.chunk_digest(3).to_vec());
            assert_eq!(actual, canvid_tests::wasm::sha256(&bad).to_vec());
        }
        e => panic!("expected WrongDigest, got {e:?}"),
    }
    // Wrong length (one byte short, one byte long), and a short last chunk sent full-size.
    let mut short = file.chunk(4);
    short.pop();
    match err("put_chunk short", v.put_chunk(owner(), 4, short)) {
        Error::WrongChunkSize {
            index,
            expected,
            actual,
        } => assert_eq!((index, expected, actual), (4, 100_000, 99_999)),
        e => panic!("expected WrongChunkSize, got {e:?}"),
    }
    let last = file.chunk_count() - 1;
    match err(
        "put_chunk long last",
        v.put_chunk(owner(), last, vec![0; 100_000]),
    ) {
        Error::WrongChunkSize {
            index,
            expected,
            actual,
        } => assert_eq!((index, expected, actual), (last, 12_345, 100_000)),
        e => panic!("expected WrongChunkSize, got {e:?}"),
    }
    match err(
        "put_chunk out of range",
        v.put_chunk(owner(), last + 1, vec![0; 10]),
    ) {
        Error::ChunkOutOfRange { index, chunk_count } => {
            assert_eq!((index, chunk_count), (last + 1, file.chunk_count()))
        }
        e => panic!("expected ChunkOutOfRange, got {e:?}"),
    }
    // Nothing refused was stored.
    let m = ok(
        "missing_chunks",
        v.missing_chunks(owner(), &MissingArgs::default()),
    );
    assert_eq!(m.missing_count, file.chunk_count());

    // A different declaration once chunks exist.
    ok("put_chunk", v.put_chunk(owner(), 0, file.chunk(0)));
    let other = GenFile::new(3, file.size + 1, 100_000);
    match err(
        "re-declare differently",
        v.begin_upload(owner(), &spec_for(&other, true)),
    ) {
        Error::Conflict { .. } => {}
        e => panic!("expected Conflict, got {e:?}"),
    }
}

/// A chunk larger than 2,000,000 bytes in a video declared with the largest chunk size.
fn oversize_chunk(b: &dyn Backend) {
    let v = standalone_video(b, owner(), None, 50 * T);
    let file = GenFile::new(4, 2 * MAX_CHUNK_SIZE as u64, MAX_CHUNK_SIZE as u64);
    ok(
        "begin_upload",
        v.begin_upload(owner(), &spec_for(&file, false)),
    );
    let mut big = file.chunk(0);
    big.push(0);
    match err("put_chunk 2,000,001 bytes", v.put_chunk(owner(), 0, big)) {
        Error::WrongChunkSize {
            index,
            expected,
            actual,
        } => assert_eq!((index, expected, actual), (0, 2_000_000, 2_000_001)),
        e => panic!("expected WrongChunkSize, got {e:?}"),
    }
}

/// Declared file digest that the chunks do not produce: finish_upload refuses to publish.
fn wrong_file_digest(b: &dyn Backend) {
    let v = standalone_video(b, owner(), None, 50 * T);
    let file = small_file(5);
    let mut spec = spec_for(&file, false);
    let good = spec_for(&file, true).file_digest.expect("declared");
    let mut wrong = good.to_vec();
    wrong[0] ^= 1;
    spec.file_digest = Some(serde_bytes::ByteBuf::from(wrong.clone()));
    ok("begin_upload", v.begin_upload(owner(), &spec));
    v.upload_chunks(owner(), &file, None);
    match err("finish_upload", v.finish_upload(owner())) {
        Error::WrongDigest {
            index,
            expected,
            actual,
        } => {
            assert_eq!(index, None);
            assert_eq!(expected, wrong);
            assert_eq!(actual, good.to_vec());
        }
        e => panic!("expected WrongDigest, got {e:?}"),
    }
    assert_eq!(v.metadata().status, VideoStatus::Uploading);
}

/// Non-owners: refused by inspect_message as ingress (IC0406), and with `NotAuthorized` when the
/// endpoint itself is reached (a query, or a call from a canister).
fn non_owner_writes(b: &dyn Backend) {
    let v = standalone_video(b, owner(), None, 50 * T);
    let file = small_file(6);
    let mallory = principal("mallory");

    let r = rejected(
        "begin_upload by a stranger",
        v.begin_upload(mallory, &spec_for(&file, true)),
    );
    assert_eq!(r.error_code, IC0406, "{r}");
    ok(
        "begin_upload",
        v.begin_upload(owner(), &spec_for(&file, true)),
    );
    let r = rejected(
        "put_chunk by a stranger",
        v.put_chunk(mallory, 0, file.chunk(0)),
    );
    assert_eq!(r.error_code, IC0406, "{r}");
    let r = rejected("finish_upload by a stranger", v.finish_upload(mallory));
    assert_eq!(r.error_code, IC0406, "{r}");
    let r = rejected("approve by a stranger", v.approve(mallory, Some(mallory)));
    assert_eq!(r.error_code, IC0406, "{r}");
    let r = rejected(
        "change_owner by a stranger",
        v.change_owner(mallory, mallory),
    );
    assert_eq!(r.error_code, IC0406, "{r}");
    // Also when submitted without waiting (the refusal comes at submission).
    let e = b
        .submit(
            v.id,
            mallory,
            "put_chunk",
            candid::encode_one(canvid_types::video::ChunkUpload {
                path: None,
                index: 0,
                data: serde_bytes::ByteBuf::from(file.chunk(0)),
            })
            .expect("encode"),
        )
        .expect_err("inspect_message refuses a submitted put_chunk");
    assert_eq!(e.error_code, IC0406, "{e}");

    // Queries skip inspect_message: the endpoint's own check answers.
    match err(
        "missing_chunks by a stranger",
        v.missing_chunks(mallory, &MissingArgs::default()),
    ) {
        Error::NotAuthorized { caller, .. } => assert_eq!(caller, mallory),
        e => panic!("expected NotAuthorized, got {e:?}"),
    }
    match err("get_chunk before Ready", v.get_chunk(mallory, 0)) {
        Error::NotReady { .. } => {}
        e => panic!("expected NotReady, got {e:?}"),
    }

    // A canister caller skips inspect_message too.
    let relay = Relay::deploy(b, principal("relay-controller"), 10 * T);
    let chunk0 = canvid_types::video::ChunkUpload {
        path: None,
        index: 0,
        data: serde_bytes::ByteBuf::from(file.chunk(0)),
    };
    let res: canvid_types::Result<canvid_types::video::ChunkReceipt> =
        relay.call(v.id, "put_chunk", &chunk0, 0);
    match res {
        Err(Error::NotAuthorized { caller, .. }) => assert_eq!(caller, relay.id),
        other => panic!("expected NotAuthorized for a canister caller, got {other:?}"),
    }
    let m = ok(
        "missing_chunks",
        v.missing_chunks(owner(), &MissingArgs::default()),
    );
    assert_eq!(
        m.missing_count,
        file.chunk_count(),
        "nothing a stranger sent was stored"
    );

    // An uploader the owner authorised may upload, but not administer.
    let helper = principal("uploader");
    ok("add_uploader", v.add_uploader(owner(), helper));
    ok(
        "put_chunk by uploader",
        v.put_chunk(helper, 0, file.chunk(0)),
    );
    let r = rejected("approve by an uploader", v.approve(helper, Some(helper)));
    assert_eq!(r.error_code, IC0406, "{r}");
}

/// After finish_upload the content is immutable: writes are refused as ingress (IC0406) and, from
/// a canister owner, with `AlreadyFinished`.
fn post_finish_writes(b: &dyn Backend) {
    // The relay canister owns this video so that its calls reach the endpoints' logic.
    let relay = Relay::deploy(b, principal("relay-controller"), 10 * T);
    let v = standalone_video(b, owner(), None, 50 * T);
    let file = small_file(7);
    v.upload(owner(), &file);

    let r = rejected(
        "put_chunk after finish",
        v.put_chunk(owner(), 0, file.chunk(0)),
    );
    assert_eq!(r.error_code, IC0406, "{r}");
    let r = rejected(
        "begin_upload after finish",
        v.begin_upload(owner(), &spec_for(&file, true)),
    );
    assert_eq!(r.error_code, IC0406, "{r}");
    let r = rejected("finish_upload twice", v.finish_upload(owner()));
    assert_eq!(r.error_code, IC0406, "{r}");

    // Hand the video to the relay canister, then write as the (canister) owner.
    ok(
        "change_owner to the relay",
        v.change_owner(owner(), relay.id),
    );
    let chunk0 = canvid_types::video::ChunkUpload {
        path: None,
        index: 0,
        data: serde_bytes::ByteBuf::from(file.chunk(0)),
    };
    let res: canvid_types::Result<canvid_types::video::ChunkReceipt> =
        relay.call(v.id, "put_chunk", &chunk0, 0);
    assert_eq!(res, Err(Error::AlreadyFinished));
    let res: canvid_types::Result<canvid_types::video::VideoMetadata> =
        relay.call(v.id, "begin_upload", &spec_for(&file, true), 0);
    assert_eq!(res.map(|_| ()), Err(Error::AlreadyFinished));
    let res: canvid_types::Result<canvid_types::video::VideoMetadata> = match relay.call_raw(
        v.id,
        "finish_upload",
        candid::encode_args(()).expect("()"),
        0,
    ) {
        canvid_tests::clients::CallOutcome::Reply { data, .. } => {
            candid::decode_one(&data).expect("finish_upload reply")
        }
        other => panic!("finish_upload via relay: {other:?}"),
    };
    assert_eq!(res.map(|_| ()), Err(Error::AlreadyFinished));

    // Content unchanged.
    let reader = principal("viewer");
    v.verify_chunks(reader, &file);
}

/// Whoever is not owner or uploader cannot read an unfinished upload; nobody needs to be anybody
/// to read a finished one.
fn read_access(b: &dyn Backend) {
    let v: Video = standalone_video(b, owner(), None, 50 * T);
    let file = small_file(8);
    ok(
        "begin_upload",
        v.begin_upload(owner(), &spec_for(&file, true)),
    );
    ok("put_chunk", v.put_chunk(owner(), 0, file.chunk(0)));
    let got = ok("owner reads own upload", v.get_chunk(owner(), 0));
    assert_eq!(got.as_slice(), file.chunk(0).as_slice());
    match err(
        "stranger reads upload",
        v.read_range(Principal::anonymous(), 0, 10),
    ) {
        Error::NotReady { .. } => {}
        e => panic!("expected NotReady, got {e:?}"),
    }
    match err("owner reads a missing chunk", v.get_chunk(owner(), 1)) {
        Error::NotFound { .. } => {}
        e => panic!("expected NotFound, got {e:?}"),
    }
}

/// Ingress is free for its sender and paid by the canister: messages that cannot succeed must be
/// refused by `inspect_message` before the canister pays for them. A query method sent as an
/// update (refused with an explanation) and a 2 MB `http_request_update` cost the video nothing;
/// a gateway-sized one is served.
fn h1_ingress_that_cannot_succeed_costs_nothing(b: &dyn Backend) {
    use canvid_tests::http_types::{HttpResponse, HttpUpdateRequest};
    use canvid_tests::BackendExt;
    let v = standalone_video(b, owner(), None, 20 * T);
    let f = small_file(9);
    v.upload(owner(), &f);
    let anon = Principal::anonymous();
    let request = |body: usize| HttpUpdateRequest {
        method: "GET".into(),
        url: "/video".into(),
        headers: vec![("Range".into(), "bytes=10-20".into())],
        body: serde_bytes::ByteBuf::from(vec![b'x'; body]),
    };
    let before = b.cycle_balance(v.id);
    let e = b
        .update1::<_, HttpResponse>(v.id, anon, "http_request_update", &request(2_000_000))
        .expect_err("a 2 MB http_request_update");
    assert_eq!(e.error_code, IC0406, "{e}");
    for (method, arg) in [
        ("metadata", candid::encode_args(()).unwrap()),
        ("get_chunk", candid::encode_one(0u32).unwrap()),
        ("http_request", candid::encode_one(request(0)).unwrap()),
    ] {
        for sender in [anon, owner()] {
            let e = b
                .update_raw(v.id, sender, method, arg.clone())
                .expect_err(method);
            // Refused by a trap whose message the sender receives (a bare IC0406 told
            // icp-cli / dfx users nothing): still before the canister pays anything.
            assert_eq!(e.error_code, "IC0503", "{method} as ingress: {e}");
            let why = format!("`{method}` is a query: call it as a query (icp, dfx: --query)");
            assert!(e.message.contains(&why), "{method} as ingress: {e}");
        }
    }
    assert_eq!(
        b.cycle_balance(v.id),
        before,
        "refused ingress cost the canister cycles"
    );
    // What a gateway sends is served (and paid for, as it should be).
    let r: HttpResponse = b
        .update1(v.id, anon, "http_request_update", &request(0))
        .expect("a gateway's http_request_update");
    assert_eq!(r.status_code, 206);
    assert!(r.body == f.range(10, 11));
}

/// Security review L5: stable memory never shrinks, so it must grow with the bytes uploaded,
/// not the declared size. The last chunk of a 400 GiB declaration is refused (`Busy`, which
/// clients retry) and allocates nothing; chunks within the window go in, in any order.
fn l5_declared_size_is_not_allocated_at_once(b: &dyn Backend) {
    let v = standalone_video(b, owner(), None, 50 * T);
    let cs = MAX_CHUNK_SIZE;
    let spec = UploadSpec {
        path: None,
        rendition: None,
        mime_type: "video/mp4".into(),
        total_size: MAX_VIDEO_SIZE,
        chunk_size: cs,
        chunk_digests: None,
        file_digest: None,
        duration_ms: None,
        encryption: None,
    };
    let meta = ok("begin_upload 400 GiB", v.begin_upload(owner(), &spec));
    let before = v.canister_info().stable_memory_bytes;
    assert!(before < 128 << 20, "{}: {before} bytes", b.name());
    let last = meta.chunk_count - 1;
    let last_len = (MAX_VIDEO_SIZE - u64::from(last) * u64::from(cs)) as usize;
    match err(
        "put_chunk(last)",
        v.put_chunk(owner(), last, vec![1; last_len]),
    ) {
        Error::Busy { reason } => assert!(reason.contains(&format!("chunk {last}")), "{reason}"),
        e => panic!("expected Busy, got {e:?}"),
    }
    let info = v.canister_info();
    assert_eq!(
        info.stable_memory_bytes,
        before,
        "{}: the refused chunk grew stable memory",
        b.name()
    );
    assert_eq!(info.chunks_stored, 0);

    // Out of order within the window, as parallel clients send.
    let full = |i: u32| vec![i as u8; cs as usize];
    for i in [3, 1, 0, 2] {
        ok("put_chunk", v.put_chunk(owner(), i, full(i)));
    }
    // Four chunks stored: the window ends with chunk 4 + 64 - 1.
    let w = UPLOAD_WINDOW_CHUNKS as u32;
    ok(
        "put_chunk at the window's end",
        v.put_chunk(owner(), w + 3, full(w + 3)),
    );
    // Past the window (and past the allocated arena, which is whole 16 MiB buckets, here
    // 9 of them: 151 MB): refused, nothing grows.
    let past = w + 12;
    let bucket = 16u64 << 20;
    assert!(u64::from(past + 1) * u64::from(cs) > (u64::from(w) + 4) * u64::from(cs) + bucket);
    assert!(matches!(
        err(
            "put_chunk past the window",
            v.put_chunk(owner(), past, full(past))
        ),
        Error::Busy { .. }
    ));
    let info = v.canister_info();
    assert_eq!(info.chunks_stored, 5);
    assert!(
        info.stable_memory_bytes <= before + u64::from(w + 4) * u64::from(cs) + bucket,
        "{}: {} bytes of stable memory for 5 chunks",
        b.name(),
        info.stable_memory_bytes
    );
    // The lower chunks arrive; the refused one goes in when retried (as the clients do).
    for i in 4..12 {
        ok("put_chunk", v.put_chunk(owner(), i, full(i)));
    }
    ok("put_chunk, retried", v.put_chunk(owner(), past, full(past)));
    assert_eq!(
        ok("get_chunk", v.get_chunk(owner(), past)).as_slice(),
        full(past).as_slice()
    );
    assert_eq!(v.canister_info().chunks_stored, 14);
}

/// Named files (issue 19): a main file and an HLS-like set uploaded into one video, read back
/// through the agent interface, and the storage it costs on a real replica's stable memory:
/// at most 1.05 × content + 2 MiB (layout 4).
fn named_files_and_their_footprint(b: &dyn Backend) {
    use canvid_tests::clients::Answer;
    use canvid_tests::BackendExt;
    use canvid_types::files::{FileChunkArgs, FilePage, FilesArgs, Rendition};
    let v = standalone_video(b, owner(), None, 50 * T);
    let main = GenFile::new(7, 5_000_000, 2_000_000);
    let mut content = main.size;
    ok(
        "begin_upload",
        v.begin_upload(owner(), &spec_for(&main, true)),
    );
    v.upload_chunks(owner(), &main, None);
    // Two renditions of 12 single-chunk segments, their playlists, a subtitle file.
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for (rung, seg) in [("720p", 90_000usize), ("360p", 30_000)] {
        files.push((format!("/hls/{rung}/index.m3u8"), vec![b'#'; 600]));
        for k in 0..12 {
            let mut data = vec![0u8; seg + k];
            Rng::new(k as u64).fill(&mut data);
            files.push((format!("/hls/{rung}/seg-{k:05}.m4s"), data));
        }
    }
    files.push((
        "/subs/en.vtt".into(),
        b"WEBVTT\n\n00:00.000 --> 00:01.000\nhi\n".to_vec(),
    ));
    let specs: Vec<UploadSpec> = files
        .iter()
        .map(|(path, data)| UploadSpec {
            mime_type: if path.ends_with(".m3u8") {
                "application/vnd.apple.mpegurl"
            } else if path.ends_with(".vtt") {
                "text/vtt"
            } else {
                "video/mp4"
            }
            .into(),
            total_size: data.len() as u64,
            chunk_size: MAX_CHUNK_SIZE,
            chunk_digests: Some(vec![canvid_tests::clients::sha256(data)]),
            file_digest: None,
            duration_ms: None,
            rendition: path.ends_with("720p/index.m3u8").then(|| Rendition {
                name: "720p".into(),
                width: 1280,
                height: 720,
                bandwidth: 2_000_000,
                codecs: None,
            }),
            path: Some(path.clone()),
            encryption: None,
        })
        .collect();
    let declared: u32 = ok(
        "begin_files",
        b.update1(v.id, owner(), "begin_files", &specs),
    );
    assert_eq!(declared, files.len() as u32);
    for (path, data) in &files {
        let arg = canvid_types::video::ChunkUpload {
            index: 0,
            data: serde_bytes::ByteBuf::from(data.clone()),
            path: Some(path.clone()),
        };
        let _: canvid_types::video::ChunkReceipt = ok(
            "put_chunk (named)",
            b.update1(v.id, owner(), "put_chunk", &arg),
        );
        content += data.len() as u64;
    }
    // Before Ready a stranger reads nothing, not even the listing.
    let stranger = principal("stranger");
    let listing: Answer<FilePage> = b.query1(v.id, stranger, "files", &FilesArgs::default());
    assert!(matches!(
        err("files by a stranger", listing),
        Error::NotReady { .. }
    ));
    let meta = ok("finish_upload", v.finish_upload(owner()));
    assert_eq!(meta.status, VideoStatus::Ready);
    assert_eq!(meta.files, Some(files.len() as u32));
    assert_eq!(meta.renditions.unwrap()[0].rendition.name, "720p");
    // Anyone reads a public video's files, by chunk or by range.
    let page: FilePage = ok(
        "files",
        b.query1(
            v.id,
            stranger,
            "files",
            &FilesArgs {
                after: None,
                limit: Some(10),
            },
        ),
    );
    assert_eq!((page.files.len(), page.total), (10, files.len() as u32));
    assert_eq!(page.files[0].path, "/hls/360p/index.m3u8");
    let (path, data) = &files[5];
    let chunk: serde_bytes::ByteBuf = ok(
        "get_file_chunk",
        b.query1(
            v.id,
            stranger,
            "get_file_chunk",
            &FileChunkArgs {
                path: path.clone(),
                index: 0,
            },
        ),
    );
    assert_eq!(&chunk[..], &data[..]);
    let range: serde_bytes::ByteBuf = ok(
        "read_range (named)",
        b.query1(
            v.id,
            stranger,
            "read_range",
            &canvid_types::video::RangeArgs {
                offset: 10,
                length: 100,
                path: Some(path.clone()),
            },
        ),
    );
    assert_eq!(&range[..], &data[10..110]);
    let info = v.canister_info();
    assert_eq!(info.layout_version, 4);
    let used = info.stable_memory_bytes;
    eprintln!(
        "{}: footprint of {} files, {content} bytes: {used} bytes of stable memory",
        b.name(),
        files.len() + 1
    );
    assert!(
        used <= content + content / 20 + (2 << 20),
        "{}: {used} bytes of stable memory for {content} bytes",
        b.name()
    );
}

backend_tests!(
    named_files_and_their_footprint,
    l5_declared_size_is_not_allocated_at_once,
    h1_ingress_that_cannot_succeed_costs_nothing,
    upload_out_of_order_with_retries_and_resume,
    chunk_refusals,
    oversize_chunk,
    wrong_file_digest,
    non_owner_writes,
    post_finish_writes,
    read_access,
);
