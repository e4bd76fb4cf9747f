//! `canvid serve` + the agent commands, run as processes: upload/get round trip on a real
//! generated video, ls by creator and owner, transfer, an interrupted upload resumed with only
//! the missing chunks, a restart on the same state directory, and the one-line errors.

mod common;

use common::{canvid, last_line, net, ok, principal_of, require_wasm, text, Serve};
use std::process::{Command, Output};

fn fails(cmd: &mut Command, code: i32, needle: &str) -> Output {
    let o = cmd.output().unwrap();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "{cmd:?}: stderr {err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(lines.len(), 1, "one error line expected: {err}");
    assert!(lines[0].contains(needle), "{needle:?} not in {err}");
    o
}

#[test]
fn serve_upload_get_ls_transfer_resume_restart() {
    require_wasm();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    // A real small video (ffmpeg), about 4.8 MB: three chunks.
    let video = tmp.path().join("clip.mp4");
    canvid_cli::video_gen::generate(&video, 6, "6M").unwrap();
    let bytes = std::fs::read(&video).unwrap();
    assert!(bytes.len() > 4_000_000);

    let serve = Serve::start(&state);
    let ids: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("canister_ids.json")).unwrap())
            .unwrap();
    let index = ids["index"]["embedded"].as_str().unwrap().to_string();
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("serve.json")).unwrap()).unwrap();
    let root_key = info["root_key"].as_str().unwrap().to_string();
    assert!(info["url"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:"));

    // Upload (default identity, created in the state dir) and get, byte-exact.
    let out = ok(net(canvid().arg("upload").arg(&video), &state));
    let id = last_line(&out);
    assert!(out.contains("sent 3 of 3 chunk(s)"), "{out}");
    assert!(state.join("identity.pem").is_file());
    let back = tmp.path().join("back.mp4");
    ok(net(canvid().args(["get", &id, "-o"]).arg(&back), &state));
    assert_eq!(std::fs::read(&back).unwrap(), bytes);

    // ls --creator shows it.
    let me = principal_of(&state.join("identity.pem"), &state);
    let listed = ok(net(canvid().args(["ls", "--creator", &me]), &state));
    assert!(listed.contains(&id), "{listed}");

    // Transfer to a second identity; the index follows.
    let bob_pem = tmp.path().join("bob.pem");
    std::fs::write(&bob_pem, canvid_cli::identity::ed25519_pem(&[42u8; 32])).unwrap();
    let bob = principal_of(&bob_pem, &state);
    let out = ok(net(canvid().args(["transfer", &id, &bob]), &state));
    // The certified controllers are read back and printed: the new owner and the video.
    let certified = out
        .lines()
        .find_map(|l| l.strip_prefix("certified controllers "))
        .unwrap_or_else(|| panic!("no certified controllers in {out}"));
    assert!(certified.contains(&bob) && certified.contains(&id), "{out}");
    assert!(!certified.contains(&me), "{out}");
    assert!(out.contains("certified module hash "), "{out}");
    let owned = ok(net(canvid().args(["ls", "--owner", &bob]), &state));
    assert!(owned.contains(&id), "{owned}");
    let mine = ok(net(canvid().args(["ls", "--owner", &me]), &state));
    assert!(!mine.contains(&id), "{mine}");
    let info_out = ok(net(canvid().args(["info", &id]), &state));
    assert!(
        info_out.contains(&format!("owner      {bob}")),
        "{info_out}"
    );
    // The old owner may no longer transfer it: a refusal with its own exit code.
    fails(
        net(canvid().args(["transfer", &id, &me]), &state),
        7,
        "not authorized",
    );
    // Bob hands it back naming the controllers (--keep-none): the certified set is exactly
    // {me, video}, which the command checks.
    let out = ok(net(
        canvid()
            .args(["transfer", "--keep-none", "--identity"])
            .arg(&bob_pem)
            .args([&id, &me]),
        &state,
    ));
    let certified = out
        .lines()
        .find_map(|l| l.strip_prefix("certified controllers "))
        .unwrap_or_else(|| panic!("no certified controllers in {out}"));
    let mut got: Vec<&str> = certified.split(", ").collect();
    got.sort();
    let mut want = vec![me.as_str(), id.as_str()];
    want.sort();
    assert_eq!(got, want, "{out}");

    // The two-step transfer: an offer changes nothing until the offered identity accepts; a
    // cancelled offer cannot be accepted.
    let out = ok(net(
        canvid().args(["transfer", "--offer", "--keep-none", &id, &bob]),
        &state,
    ));
    assert!(out.contains(&format!("canvid accept {id}")), "{out}");
    let info_out = ok(net(canvid().args(["info", &id]), &state));
    assert!(info_out.contains(&format!("owner      {me}")), "{info_out}");
    let out = ok(net(
        canvid()
            .args(["accept", "--identity"])
            .arg(&bob_pem)
            .arg(&id),
        &state,
    ));
    let certified = out
        .lines()
        .find_map(|l| l.strip_prefix("certified controllers "))
        .unwrap_or_else(|| panic!("no certified controllers in {out}"));
    let mut got: Vec<&str> = certified.split(", ").collect();
    got.sort();
    let mut want = vec![bob.as_str(), id.as_str()];
    want.sort();
    assert_eq!(got, want, "accepted with the offer's --keep-none: {out}");
    ok(net(
        canvid()
            .args(["transfer", "--offer", "--keep-none", "--identity"])
            .arg(&bob_pem)
            .args([&id, &me]),
        &state,
    ));
    ok(net(
        canvid()
            .args(["accept", "--cancel", "--identity"])
            .arg(&bob_pem)
            .arg(&id),
        &state,
    ));
    fails(net(canvid().args(["accept", &id]), &state), 7, "");
    ok(net(
        canvid()
            .args(["transfer", "--offer", "--keep-none", "--identity"])
            .arg(&bob_pem)
            .args([&id, &me]),
        &state,
    ));
    ok(net(canvid().args(["accept", &id]), &state));

    // An upload interrupted after 2 of 5 chunks, then resumed: only 3 chunks are sent.
    let big = tmp.path().join("big.bin");
    let big_bytes: Vec<u8> = (0..9_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    std::fs::write(&big, &big_bytes).unwrap();
    let o = fails(
        net(
            canvid()
                .args(["upload", "--stop-after-chunks", "2"])
                .arg(&big),
            &state,
        ),
        1,
        "upload interrupted",
    );
    assert!(text(&o.stderr).contains("run the same upload again"));
    let out = ok(net(canvid().arg("upload").arg(&big), &state));
    assert!(out.contains("sent 3 of 5 chunk(s)"), "{out}");
    let big_id = last_line(&out);
    let big_back = tmp.path().join("big_back.bin");
    ok(net(
        canvid().args(["get", &big_id, "-o"]).arg(&big_back),
        &state,
    ));
    assert_eq!(std::fs::read(&big_back).unwrap(), big_bytes);

    // Restart on the same state directory: same ids, same root key, same bytes.
    serve.stop();
    assert!(!state.join("serve.json").exists());
    fails(
        net(canvid().args(["get", &id]), &state),
        5,
        "no running `canvid serve`",
    );
    let serve = Serve::start(&state);
    let info2: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("serve.json")).unwrap()).unwrap();
    assert_eq!(info2["root_key"].as_str().unwrap(), root_key);
    let ids2: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("canister_ids.json")).unwrap())
            .unwrap();
    assert_eq!(ids2["index"]["embedded"].as_str().unwrap(), index);
    let back2 = tmp.path().join("back2.mp4");
    ok(net(canvid().args(["get", &id, "-o"]).arg(&back2), &state));
    assert_eq!(std::fs::read(&back2).unwrap(), bytes);
    // Bob handed it back before the restart.
    let owned = ok(net(canvid().args(["ls", "--owner", &me]), &state));
    assert!(owned.contains(&id), "{owned}");
    // New uploads keep working after the restore.
    let small = tmp.path().join("small.bin");
    std::fs::write(&small, b"after the restart").unwrap();
    let out = ok(net(canvid().arg("upload").arg(&small), &state));
    let small_id = last_line(&out);
    let got = ok(net(canvid().args(["get", &small_id]), &state));
    assert_eq!(got, "after the restart");
    serve.stop();
}

#[test]
fn agent_commands_report_bad_inputs_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    // No serve running for this state dir.
    fails(
        net(canvid().args(["ls"]), &state),
        5,
        "no running `canvid serve`",
    );
    // A serve.json pointing at a dead port: network down.
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(
        state.join("serve.json"),
        r#"{"url": "http://127.0.0.1:9", "pid": 1, "root_key": "00"}"#,
    )
    .unwrap();
    std::fs::write(
        state.join("canister_ids.json"),
        r#"{"index": {"embedded": "aaaaa-aa"}, "spawn": {"embedded": "aaaaa-aa"}}"#,
    )
    .unwrap();
    fails(
        net(canvid().args(["info", "aaaaa-aa"]), &state),
        5,
        "cannot reach http://127.0.0.1:9",
    );
    // Missing file, unreadable identity.
    fails(
        net(canvid().args(["upload", "/no/such/file.mp4"]), &state),
        3,
        "file not found",
    );
    let f = tmp.path().join("v.bin");
    std::fs::write(&f, b"x").unwrap();
    fails(
        net(
            canvid()
                .arg("upload")
                .arg(&f)
                .args(["--identity", "/no/such.pem"]),
            &state,
        ),
        6,
        "cannot use identity",
    );
}

/// `canvid get`'s source of truth: the certified `/metadata.json` of a real `canvid serve`
/// answer verifies against the serve's root key; a tampered digest, body or key does not, and a
/// forged `metadata` digest is refused against it (security review L6).
#[test]
fn l6_certified_metadata_verifies_and_tampering_fails() {
    use canvid_cli::commands::{verify_metadata_answer, METADATA_PATH};
    use ic_http_certification::{HttpRequest, HttpResponse};
    require_wasm();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let serve = Serve::start(&state);
    let file = tmp.path().join("f.bin");
    std::fs::write(&file, vec![7u8; 3_000_000]).unwrap();
    let out = ok(net(canvid().arg("upload").arg(&file), &state));
    let id = candid::Principal::from_text(last_line(&out)).unwrap();
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("serve.json")).unwrap()).unwrap();
    let url = info["url"].as_str().unwrap().to_string();
    let root_key = hex::decode(info["root_key"].as_str().unwrap()).unwrap();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let request = HttpRequest::get(METADATA_PATH)
        .with_certificate_version(2)
        .build();
    let (response, meta): (HttpResponse<'static>, canvid_types::video::VideoMetadata) = rt
        .block_on(async {
            let agent = ic_agent::Agent::builder().with_url(url).build().unwrap();
            agent.set_root_key(root_key.clone());
            let bytes = agent
                .query(&id, "http_request")
                .with_arg(candid::encode_one(&request).unwrap())
                .call()
                .await
                .unwrap();
            let meta = agent
                .query(&id, "metadata")
                .with_arg(candid::encode_args(()).unwrap())
                .call()
                .await
                .unwrap();
            (
                candid::decode_one(&bytes).unwrap(),
                candid::decode_one(&meta).unwrap(),
            )
        });
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let verify = |resp: &HttpResponse<'static>, key: &[u8]| {
        verify_metadata_answer(id, request.clone(), resp.clone(), key, now)
    };
    let doc = verify(&response, &root_key).expect("the genuine answer verifies");
    let digest = doc.digest.expect("a Ready video has a digest");
    assert_eq!(doc.status, "ready");
    assert_eq!((doc.size, doc.chunk_count), (3_000_000, 2));

    // The digest in the body changed by one hex digit: the certified body hash no longer matches.
    let body = String::from_utf8(response.body().to_vec()).unwrap();
    let hex_digest = hex::encode(digest);
    let mut forged_digest = digest;
    forged_digest[0] ^= 1;
    let forged_body = body.replace(&hex_digest, &hex::encode(forged_digest));
    assert_ne!(forged_body, body);
    let forged = HttpResponse::builder()
        .with_status_code(response.status_code())
        .with_headers(response.headers().to_vec())
        .with_body(forged_body.into_bytes())
        .build();
    let e = verify(&forged, &root_key).unwrap_err().to_string();
    assert!(e.contains("did not verify"), "{e}");
    // Another root key (a replica that certifies for itself).
    let mut other_key = root_key.clone();
    let last = other_key.len() - 1;
    other_key[last] ^= 1;
    let e = verify(&response, &other_key).unwrap_err().to_string();
    assert!(e.contains("did not verify"), "{e}");
    // No certificate at all.
    let bare = HttpResponse::builder()
        .with_status_code(response.status_code())
        .with_body(response.body().to_vec())
        .build();
    assert!(verify(&bare, &root_key).is_err());

    // A `metadata` query answer whose digest is not the certified one is refused.
    assert_eq!(doc.check(id, &meta, &digest).unwrap(), digest);
    let e = doc
        .check(id, &meta, &forged_digest)
        .unwrap_err()
        .to_string();
    assert!(e.contains("forged"), "{e}");
    serve.stop();
}

/// `GET path` on the gateway of `canvid serve` for canister `id` (HTTP/1.0, so the body is not
/// chunked): (status line and headers, body).
fn http_get(
    state: &std::path::Path,
    id: &str,
    path: &str,
    range: Option<&str>,
) -> (String, Vec<u8>) {
    use std::io::{Read, Write};
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("serve.json")).unwrap()).unwrap();
    let url = info["url"].as_str().unwrap();
    let port: u16 = url
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let range = range.map(|r| format!("Range: {r}\r\n")).unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {id}.localhost:{port}\r\n{range}\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP header end")
        + 4;
    (
        String::from_utf8_lossy(&response[..split]).into_owned(),
        response[split..].to_vec(),
    )
}

#[test]
fn upload_hls_stores_the_ladder_resumes_and_serves_every_file() {
    require_wasm();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let state = d.join("state");
    // 4 s of 640x360 with audio and a subtitle track, 1 s segments: two rungs (360p, 240p) of
    // four segments each, enough files for an interruption in the middle.
    let srt = d.join("in.srt");
    std::fs::write(&srt, "1\n00:00:00,500 --> 00:00:02,000\nHello\n").unwrap();
    let src = d.join("src.mp4");
    let o = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-i",
        ])
        .arg(&srt)
        .args(["-t", "4", "-map", "0:v", "-map", "1:a", "-map", "2:s"])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ])
        .args([
            "-c:a",
            "aac",
            "-c:s",
            "mov_text",
            "-metadata:s:s:0",
            "language=eng",
        ])
        .arg(&src)
        .output()
        .expect("ffmpeg runs (scripts/setup.sh installs it)");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let src_bytes = std::fs::read(&src).unwrap();
    let ladder_args = ["--segment-seconds", "1", "--preset", "ultrafast"];

    let _serve = Serve::start(&state);
    let started = std::time::Instant::now();
    // upload --hls interrupted after 3 chunks: the ladder stays in the state directory.
    let o = fails(
        net(
            canvid()
                .args(["upload", "--stop-after-chunks", "3", "--hls"])
                .arg(&src)
                .args(ladder_args),
            &state,
        ),
        1,
        "upload interrupted",
    );
    assert!(text(&o.stderr).contains("run the same upload again"));
    let work: Vec<_> = std::fs::read_dir(state.join("hls-work"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(work.len(), 1, "{work:?}");
    let tree = canvid_cli::hls::scan(&work[0]).unwrap();
    let tree_bytes: Vec<(String, Vec<u8>)> = tree
        .iter()
        .map(|f| (f.path.clone(), std::fs::read(&f.local).unwrap()))
        .collect();
    assert_eq!(tree.iter().filter(|f| f.rendition.is_some()).count(), 2);
    let total_chunks = tree.len() as u32 + src_bytes.len().div_ceil(2_000_000) as u32;

    // The same command again: the kept ladder, the same canister, only the rest is sent.
    let o = net(
        canvid()
            .args(["upload", "--hls"])
            .arg(&src)
            .args(ladder_args),
        &state,
    )
    .output()
    .unwrap();
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "{err}\n{out}");
    assert!(err.contains("reusing the ladder prepared in"), "{err}");
    assert!(err.contains("resuming the upload into"), "{err}");
    assert!(
        out.contains(&format!("sent {} chunk(s)", total_chunks - 3)),
        "{total_chunks} chunks in all: {out}"
    );
    assert!(out.contains("renditions 360p 240p"), "{out}");
    let id = last_line(&out);
    assert!(!work[0].exists(), "the ladder is removed once uploaded");
    eprintln!(
        "upload --hls of {} files, interrupted and resumed: {:.1} s",
        tree.len(),
        started.elapsed().as_secs_f64()
    );

    // Metadata: the file count and the renditions, highest first, as declared.
    let info = ok(net(canvid().args(["info", &id]), &state));
    assert!(
        info.contains(&format!("files      {} named file(s)", tree.len())),
        "{info}"
    );
    let renditions: Vec<&str> = info
        .lines()
        .filter(|l| l.starts_with("rendition"))
        .collect();
    assert_eq!(renditions.len(), 2, "{info}");
    assert!(
        renditions[0].contains("360p   640x360") && renditions[0].ends_with("/hls/360p/index.m3u8"),
        "{info}"
    );
    assert!(renditions[1].contains("240p   426x240"), "{info}");

    // Every file read back with get_file_chunk, byte-exact and digest-checked.
    let back = d.join("back");
    for (path, bytes) in &tree_bytes {
        ok(net(
            canvid().args(["get", &id, "--path", path, "-o"]).arg(&back),
            &state,
        ));
        assert_eq!(&std::fs::read(&back).unwrap(), bytes, "{path}");
    }
    let master = String::from_utf8(tree_bytes[0].1.clone()).unwrap();
    assert!(master.contains("URI=\"subs/eng.m3u8\""), "{master}");
    // Over HTTP, as a player fetches them: every file of the tree by a plain GET, 200 with the
    // whole file and its MIME type; the original is the main file, served with ranges.
    for (f, (path, bytes)) in tree.iter().zip(&tree_bytes) {
        let (head, body) = http_get(&state, &id, path, None);
        assert!(
            head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
            "{path}: {head}"
        );
        assert!(
            head.to_ascii_lowercase()
                .contains(&format!("content-type: {}", f.mime_type)),
            "{path}: {head}"
        );
        assert_eq!(&body, bytes, "{path} over HTTP");
    }
    let (head, body) = http_get(&state, &id, "/", Some("bytes=100-199"));
    assert!(head.contains(" 206"), "{head}");
    assert_eq!(body, src_bytes[100..200]);
    fails(
        net(
            canvid().args(["get", &id, "--path", "/hls/none.m3u8"]),
            &state,
        ),
        3,
        "has no named file /hls/none.m3u8",
    );
    // A --hls-dir that is not a prepared tree fails in one line, before any call.
    fails(
        net(
            canvid()
                .args(["upload", "--no-original", "--hls-dir"])
                .arg(d.join("nope")),
            &state,
        ),
        3,
        "is not a prepared HLS tree",
    );
}
