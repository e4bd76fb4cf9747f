//! End-to-end encrypted videos through the `canvid` binary against `canvid serve` (the
//! embedded replica's vetKD): `upload --encrypt` makes the video private and stores ciphertext;
//! `get` decrypts it byte-identical for the owner; an identity that is not a viewer is refused
//! with the reason and gets no file; after `canvid access viewers add` it decrypts too (and is
//! refused again, with the reason, once the video is made public); `--raw`
//! holds no 64-byte window of the plaintext; an interrupted encrypted upload resumes (synthetic
//! nonces: the chunks encrypt to the same bytes again); `--encrypt --hls` is refused.

use crate::common::{canvid, last_line, net, ok, principal_of, require_wasm, text, Serve};
use std::path::Path;
use std::process::Output;

/// 2,500,000 bytes: two stored chunks of at most 2,000,000 (1,999,972 of plaintext + 28), the
/// second shorter. Pseudo-random, so no window of it repeats by accident.
const PLAIN_SIZE: usize = 2_500_000;
const OVERHEAD: usize = 28;

fn plaintext(seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..PLAIN_SIZE)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn fails(o: &Output, code: i32, needle: &str) -> String {
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    assert!(err.contains(needle), "{needle:?} not in {err}");
    err
}

/// Whether any 64-byte window of `needle_source` occurs anywhere in `haystack` (Rabin-Karp over
/// every offset of both, hits confirmed byte by byte).
fn shares_a_64_byte_window(needle_source: &[u8], haystack: &[u8]) -> bool {
    const W: usize = 64;
    const B: u64 = 1_000_003;
    let top = (0..W - 1).fold(1u64, |p, _| p.wrapping_mul(B));
    let windows = |data: &[u8]| -> Vec<(u64, usize)> {
        if data.len() < W {
            return Vec::new();
        }
        let mut h = data[..W]
            .iter()
            .fold(0u64, |h, &b| h.wrapping_mul(B).wrapping_add(u64::from(b)));
        let mut out = vec![(h, 0)];
        for i in W..data.len() {
            h = h
                .wrapping_sub(u64::from(data[i - W]).wrapping_mul(top))
                .wrapping_mul(B)
                .wrapping_add(u64::from(data[i]));
            out.push((h, i + 1 - W));
        }
        out
    };
    let mut plain = windows(needle_source);
    plain.sort_unstable();
    windows(haystack).into_iter().any(|(h, at)| {
        let first = plain.partition_point(|&(p, _)| p < h);
        plain[first..]
            .iter()
            .take_while(|&&(p, _)| p == h)
            .any(|&(_, from)| needle_source[from..from + W] == haystack[at..at + W])
    })
}

#[test]
fn the_window_check_finds_a_copied_window() {
    let plain = plaintext(7);
    let mut other = plaintext(8);
    assert!(!shares_a_64_byte_window(
        &plain[..100_000],
        &other[..100_000]
    ));
    other[5_000..5_064].copy_from_slice(&plain[77_777..77_841]);
    assert!(shares_a_64_byte_window(
        &plain[..100_000],
        &other[..100_000]
    ));
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn encrypted_upload_get_viewers_raw_and_resume() {
    require_wasm();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let out_dir = tmp.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let plain = plaintext(1);
    let file = tmp.path().join("secret.mp4");
    std::fs::write(&file, &plain).unwrap();

    // Refused before anything is sent (no network needed).
    let o = canvid()
        .args(["upload", "--encrypt", "--hls"])
        .arg(&file)
        .arg("--state")
        .arg(&state)
        .output()
        .unwrap();
    fails(&o, 5, "only the main file can be encrypted");

    let _serve = Serve::start(&state);
    let o = net(canvid().args(["upload", "--encrypt"]).arg(&file), &state)
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "{stdout}\n{stderr}");
    let video = last_line(&stdout);
    assert!(
        stderr.contains(&format!("made {video} private")),
        "{stderr}"
    );
    assert!(
        stdout.contains("encrypted end to end (canvid-aes256gcm-v1, vetKD key key_1, epoch 0)"),
        "{stdout}"
    );
    let show = ok(net(canvid().args(["access", "show", &video]), &state));
    assert!(show.contains("mode            private"), "{show}");
    let info = ok(net(canvid().args(["info", &video]), &state));
    assert!(
        info.contains(
            "encryption canvid-aes256gcm-v1 (vetKD key key_1, epoch 0): 2500000 bytes of plaintext in chunks of 1999972"
        ),
        "{info}"
    );
    assert!(info.contains("mime type  video/mp4"), "{info}");

    // The owner decrypts it byte for byte.
    let mine = out_dir.join("mine.mp4");
    let o = net(canvid().args(["get", &video, "-o"]).arg(&mine), &state)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("decrypted, every chunk authenticated"),
        "{}",
        text(&o.stderr)
    );
    assert!(
        std::fs::read(&mine).unwrap() == plain,
        "decrypted bytes differ"
    );

    // The stored bytes are ciphertext: the encrypted size, no 64-byte window of the plaintext.
    let raw = out_dir.join("raw.bin");
    ok(net(
        canvid().args(["get", &video, "--raw", "-o"]).arg(&raw),
        &state,
    ));
    let stored = std::fs::read(&raw).unwrap();
    assert_eq!(stored.len(), PLAIN_SIZE + 2 * OVERHEAD);
    assert!(!shares_a_64_byte_window(&plain, &stored));

    // Someone else: refused with the reason, and no file (not even a temporary one) left.
    let stranger_pem = tmp.path().join("stranger.pem");
    std::fs::write(&stranger_pem, canvid_cli::identity::ed25519_pem(&[31; 32])).unwrap();
    let stranger = principal_of(&stranger_pem, &state);
    let theirs = out_dir.join("theirs.mp4");
    let before = files_in(&out_dir);
    let get_as_stranger = || {
        net(
            canvid()
                .args(["get", &video, "-o"])
                .arg(&theirs)
                .arg("--identity")
                .arg(&stranger_pem),
            &state,
        )
        .output()
        .unwrap()
    };
    let err = fails(&get_as_stranger(), 7, &format!("cannot decrypt {video}"));
    assert!(
        err.contains(&format!(
            "{stranger} is not on its allowlist and holds no pass"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("canvid access viewers add {video} {stranger}")),
        "{err}"
    );
    assert_eq!(files_in(&out_dir), before, "a refused get left a file");

    // On the allowlist, the stranger decrypts it.
    ok(net(
        canvid().args(["access", "viewers", "add", &video, &stranger]),
        &state,
    ));
    let o = get_as_stranger();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        std::fs::read(&theirs).unwrap() == plain,
        "the viewer's bytes differ"
    );

    // Made public again, the video's key goes to its owner only: the viewer is told why.
    std::fs::remove_file(&theirs).unwrap();
    ok(net(
        canvid().args(["access", "set", &video, "--public"]),
        &state,
    ));
    let err = fails(&get_as_stranger(), 7, &format!("cannot decrypt {video}"));
    assert!(err.contains("the video is public"), "{err}");
    assert!(!theirs.exists());

    // An interrupted encrypted upload resumes: only the missing chunk is sent.
    let other = tmp.path().join("other.mp4");
    let other_plain = plaintext(2);
    std::fs::write(&other, &other_plain).unwrap();
    let o = net(
        canvid()
            .args([
                "upload",
                "--encrypt",
                "--key-name",
                "test_key_1",
                "--stop-after-chunks",
                "1",
            ])
            .arg(&other),
        &state,
    )
    .output()
    .unwrap();
    fails(&o, 1, "stopped after 1 chunk(s)");
    let out = ok(net(
        canvid().args(["upload", "--encrypt"]).arg(&other),
        &state,
    ));
    assert!(out.contains("sent 1 of 2 chunk(s)"), "{out}");
    assert!(out.contains("vetKD key test_key_1, epoch 0"), "{out}");
    let resumed = last_line(&out);
    let back = out_dir.join("other.mp4");
    ok(net(
        canvid().args(["get", &resumed, "-o"]).arg(&back),
        &state,
    ));
    assert!(
        std::fs::read(&back).unwrap() == other_plain,
        "resumed upload differs"
    );
}
