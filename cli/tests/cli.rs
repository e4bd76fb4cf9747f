//! The `canvid` binary end to end: the demo on a generated video, and the one-line errors and
//! exit codes of bad inputs.

use canvid_devkit::wasm_dir;
use std::process::{Command, Output};

fn canvid() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_canvid"));
    c.env_remove("RUST_BACKTRACE");
    c
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("the canvid binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts the process failed with `code` and printed exactly one `error: ...` line containing
/// `needle` on stderr, and no panic or backtrace.
fn assert_one_line_error(o: &Output, code: i32, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "exit code; stderr: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "exactly one line on stderr, got: {err:?}");
    assert!(lines[0].starts_with("error: "), "{err}");
    assert!(lines[0].contains(needle), "expected {needle:?} in {err:?}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
}

fn require_wasm() {
    let dir = wasm_dir();
    for name in ["video", "spawn", "index"] {
        assert!(
            dir.join(format!("{name}.wasm")).is_file(),
            "{}/{name}.wasm is missing: run scripts/build-wasm.sh (or scripts/setup.sh) first",
            dir.display()
        );
    }
}

fn require_ffmpeg() {
    let ok = Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok, "ffmpeg is not installed: run scripts/setup.sh (it installs ffmpeg and builds the canister wasm)");
}

#[test]
fn demo_runs_end_to_end_on_a_generated_video() {
    require_ffmpeg();
    require_wasm();
    let o = run(canvid()
        .args(["demo", "--no-serve", "--seconds", "6"])
        .env("CANVID_WASM_DIR", wasm_dir()));
    let out = stdout(&o);
    assert!(o.status.success(), "demo failed: {}\n{out}", stderr(&o));
    // Each step ran and reported its result and cost.
    for needle in [
        "[1/9] Video file",
        "generated 6 s of H.264/AAC test video",
        "[3/9] create_video",
        "sent 3 chunk(s)",
        "read back byte-exact",
        "videos_by_owner(bob):     1",
        "videos_by_owner(alice):   0",
        "videos_by_creator(alice): 1",
        "instructions (embedded)",
        "Done:",
    ] {
        assert!(
            out.contains(needle),
            "missing {needle:?} in demo output:\n{out}"
        );
    }
    // Local and canister digests are printed and equal.
    let digest = |prefix: &str| {
        out.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|d| d.trim().to_string()))
            .unwrap_or_else(|| panic!("no {prefix} line in:\n{out}"))
    };
    let local = digest("local");
    assert_eq!(local.len(), 64);
    assert_eq!(local, digest("canister"));
}

#[test]
fn demo_uploads_a_given_file_byte_exact() {
    require_wasm();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("noise.bin");
    // 2 full chunks and a 1-byte tail: exercises the last-chunk boundary.
    let bytes: Vec<u8> = (0..4_000_001u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&path, &bytes).unwrap();
    let o = run(canvid()
        .arg("demo")
        .arg(&path)
        .arg("--no-serve")
        .env("CANVID_WASM_DIR", wasm_dir()));
    let out = stdout(&o);
    assert!(o.status.success(), "demo failed: {}\n{out}", stderr(&o));
    assert!(out.contains("sent 3 chunk(s), 4.00 MB"), "{out}");
    assert!(out.contains("application/octet-stream"), "{out}");
    assert!(out.contains("read back byte-exact"), "{out}");
}

#[test]
fn demo_with_a_missing_file_says_so() {
    let o = run(canvid().args(["demo", "--no-serve", "/no/such/video.mp4"]));
    assert_one_line_error(&o, 3, "file not found: /no/such/video.mp4");
}

#[test]
fn demo_with_an_empty_file_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.mp4");
    std::fs::write(&path, b"").unwrap();
    let o = run(canvid().arg("demo").arg(&path).arg("--no-serve"));
    assert_one_line_error(&o, 3, "is empty");
}

#[test]
fn demo_without_wasm_says_to_build_it() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("v.mp4");
    std::fs::write(&video, b"not really a video").unwrap();
    let o = run(canvid()
        .arg("demo")
        .arg(&video)
        .arg("--no-serve")
        .env("CANVID_WASM_DIR", dir.path().join("none")));
    assert_one_line_error(&o, 4, "run scripts/build-wasm.sh");
}

#[test]
fn demo_without_ffmpeg_and_without_a_file_says_to_install_it() {
    require_wasm();
    let empty_path = tempfile::tempdir().unwrap();
    let o = run(canvid()
        .args(["demo", "--no-serve"])
        .env("PATH", empty_path.path())
        .env("CANVID_WASM_DIR", wasm_dir()));
    assert_one_line_error(&o, 4, "ffmpeg is not installed");
    assert!(stderr(&o).contains("scripts/setup.sh"));
}

#[test]
fn upload_of_a_missing_file_says_so() {
    let o = run(canvid().args(["upload", "/no/such/file.mp4"]));
    assert_one_line_error(&o, 3, "file not found: /no/such/file.mp4");
}

#[test]
fn upload_of_a_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(canvid().arg("upload").arg(dir.path()));
    assert_one_line_error(&o, 3, "directory");
}

#[test]
fn an_unreadable_identity_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("v.mp4");
    std::fs::write(&video, b"bytes").unwrap();
    let o = run(canvid()
        .arg("upload")
        .arg(&video)
        .args(["--identity", "/no/such/identity.pem"]));
    assert_one_line_error(
        &o,
        6,
        "cannot use identity /no/such/identity.pem: file not found",
    );

    let not_pem = dir.path().join("id.pem");
    std::fs::write(&not_pem, "just some text").unwrap();
    let o = run(canvid()
        .arg("upload")
        .arg(&video)
        .arg("--identity")
        .arg(&not_pem));
    assert_one_line_error(&o, 6, "not a PEM file");
}

#[test]
fn an_invalid_principal_is_reported() {
    let o = run(canvid().args(["transfer", "not-a-principal!", "aaaaa-aa"]));
    assert_one_line_error(&o, 3, "invalid video id 'not-a-principal!'");
    let o = run(canvid().args(["transfer", "aaaaa-aa", "bogus"]));
    assert_one_line_error(&o, 3, "invalid new owner 'bogus'");
    let o = run(canvid().args(["ls", "--creator", "xyz"]));
    assert_one_line_error(&o, 3, "invalid creator 'xyz'");
}

#[test]
fn bad_command_lines_are_usage_errors() {
    let o = run(canvid().args(["ls", "--network", "moon"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("not embedded, local, ic or an http(s):// URL"),
        "{}",
        stderr(&o)
    );
    let o = run(canvid().args(["ls", "--creator", "aaaaa-aa", "--owner", "aaaaa-aa"]));
    assert_eq!(o.status.code(), Some(2));
    let o = run(canvid().arg("frobnicate"));
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn help_documents_commands_exit_codes_and_persistence() {
    let o = run(canvid().arg("--help"));
    assert!(o.status.success());
    let out = stdout(&o);
    for cmd in [
        "demo",
        "serve",
        "upload",
        "get",
        "ls",
        "transfer",
        "info",
        "Exit codes",
        "scripts/build-wasm.sh",
    ] {
        assert!(out.contains(cmd), "--help lacks {cmd}:\n{out}");
    }
    let o = run(canvid().args(["serve", "--help"]));
    assert!(stdout(&o).contains("snapshot"), "{}", stdout(&o));
}

/// Kills the child when the test ends, even if an assertion fails first.
struct KillOnDrop(std::process::Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serve_uploads_and_serves_the_video_over_http() {
    use std::io::{BufRead, BufReader, Read, Write};
    require_wasm();
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("clip.mp4");
    let bytes: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
        .collect();
    std::fs::write(&video, &bytes).unwrap();
    let state = dir.path().join("state");
    let mut child = KillOnDrop(
        canvid()
            .args(["serve", "--port", "0", "--upload"])
            .arg(&video)
            .arg("--state")
            .arg(&state)
            .env("CANVID_WASM_DIR", wasm_dir())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("serve printed the video URL before exiting")
            .unwrap();
        if let Some(u) = line.trim().strip_prefix("video  ") {
            break u.to_string();
        }
    };
    // http://<id>.localhost:<port>/
    let rest = url.strip_prefix("http://").unwrap();
    let (host, _) = rest.split_once('/').unwrap();
    let (_, port) = host.rsplit_once(':').unwrap();
    let ids: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("canister_ids.json")).unwrap())
            .unwrap();
    assert!(
        host.starts_with(ids["video_0"]["embedded"].as_str().unwrap()),
        "{url} vs {ids}"
    );

    let mut stream =
        std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).unwrap();
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: {host}\r\nRange: bytes=100-199\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP header end")
        + 4;
    let head = String::from_utf8_lossy(&response[..split]);
    assert!(head.starts_with("HTTP/1.1 206"), "{head}");
    assert_eq!(&response[split..], &bytes[100..200]);
}

#[test]
fn serve_fund_needs_an_icrc_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(canvid()
        .env_remove("CANVID_ICRC_LEDGER")
        .args(["serve", "--port", "0", "--state"])
        .arg(dir.path())
        .args(["--fund", "2vxsx-fae=5"]));
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--icrc-ledger"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        !dir.path().join("replica").exists(),
        "nothing is deployed before the arguments are checked"
    );
}

// ---------------------------------------------------------------------- HLS ladder (ffmpeg)

/// Runs ffmpeg with `args` (quiet), panicking with its stderr on failure.
fn ffmpeg(args: &[&str]) {
    let o = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg runs");
    assert!(o.status.success(), "ffmpeg {args:?}: {}", stderr(&o));
}

/// (pts in seconds, is keyframe) of the first video frame of `seg` (init segment prepended).
fn first_frame(
    init: &std::path::Path,
    seg: &std::path::Path,
    tmp: &std::path::Path,
) -> (f64, bool) {
    let mut bytes = std::fs::read(init).unwrap();
    bytes.extend(std::fs::read(seg).unwrap());
    std::fs::write(tmp, bytes).unwrap();
    let o = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-read_intervals",
            "%+#1",
        ])
        .args([
            "-show_entries",
            "frame=pts_time,key_frame",
            "-of",
            "csv=p=0",
        ])
        .arg(tmp)
        .output()
        .unwrap();
    let out = stdout(&o);
    let line = out
        .lines()
        .next()
        .unwrap_or_else(|| panic!("no frame in {}", seg.display()));
    // ffprobe prints the fields in its own order: key_frame, pts_time.
    let mut key = None;
    let mut pts = None;
    for f in line.split(',') {
        match f {
            "0" | "1" if key.is_none() => key = Some(f == "1"),
            v => pts = v.parse::<f64>().ok().or(pts),
        }
    }
    (pts.unwrap(), key.unwrap())
}

fn tree_files(root: &std::path::Path) -> Vec<(String, u64)> {
    fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<(String, u64)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.push((rel, p.metadata().unwrap().len()));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

#[test]
fn hls_prepare_builds_an_aligned_ladder_within_the_size_limit() {
    require_ffmpeg();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let srt = d.join("in.srt");
    std::fs::write(
        &srt,
        "1\n00:00:00,500 --> 00:00:02,000\nHello\n\n2\n00:00:03,000 --> 00:00:05,000\nWorld\n",
    )
    .unwrap();
    let src = d.join("src.mp4");
    let (src_s, srt_s) = (src.to_str().unwrap(), srt.to_str().unwrap());
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=1920x1080:rate=30",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-i",
        srt_s,
        "-t",
        "6",
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-map",
        "2:s",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-c:s",
        "mov_text",
        "-metadata:s:s:0",
        "language=eng",
        src_s,
    ]);
    let ext = d.join("fr.vtt");
    std::fs::write(&ext, "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nBonjour\n").unwrap();
    let out = d.join("ladder");
    let started = std::time::Instant::now();
    let o = run(canvid()
        .args(["hls", "prepare"])
        .arg(&src)
        .arg(&out)
        .arg("--subtitles")
        .arg(format!("fr={}", ext.display()))
        .arg("--thumbnails")
        // Half the time of the default preset, and the harder case for the size limit: the
        // least efficient encoder fills its VBV cap the most.
        .args(["--preset", "ultrafast"]));
    assert!(o.status.success(), "hls prepare failed: {}", stderr(&o));
    eprintln!(
        "hls prepare of 6 s of 1080p: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        stdout(&o).trim(),
        out.join("hls/master.m3u8").display().to_string()
    );

    let files = tree_files(&out);
    let rungs = ["1080p", "720p", "480p", "360p", "240p"];
    for (path, size) in &files {
        assert!(*size <= 2_000_000, "{path} is {size} bytes");
        assert!(*size > 0, "{path} is empty");
    }
    let names: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    for r in rungs {
        for f in ["index.m3u8", "init.mp4", "seg-00000.m4s"] {
            let want = format!("hls/{r}/{f}");
            assert!(
                names.contains(&want.as_str()),
                "{want} missing from {names:?}"
            );
        }
    }
    for want in [
        "hls/master.m3u8",
        "hls/subs/eng.m3u8",
        "hls/subs/fr.m3u8",
        "subs/eng.vtt",
        "subs/fr.vtt",
        "thumbs/sprite.jpg",
        "thumbs/thumbs.vtt",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    // Nothing else: the tree is exactly the layout (no probe leftovers).
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("hls/") || n.starts_with("subs/") || n.starts_with("thumbs/")),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.contains("/.")), "{names:?}");

    let read = |p: &str| std::fs::read_to_string(out.join(p)).unwrap();
    let master = read("hls/master.m3u8");
    assert_eq!(master.matches("#EXT-X-STREAM-INF:").count(), 5, "{master}");
    for r in rungs {
        assert!(master.contains(&format!("\n{r}/index.m3u8\n")), "{master}");
    }
    assert!(
        master.contains("RESOLUTION=1920x1080,CODECS=\"avc1."),
        "{master}"
    );
    assert!(master.contains("RESOLUTION=854x480,"), "{master}");
    assert!(
        master.contains("mp4a.40.2\",FRAME-RATE=30.000,SUBTITLES=\"subs\""),
        "{master}"
    );
    assert!(
        master.contains("TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"eng\",LANGUAGE=\"eng\"")
            && master.contains("URI=\"subs/fr.m3u8\""),
        "{master}"
    );
    assert!(read("subs/eng.vtt").contains("Hello"));
    assert!(read("subs/fr.vtt").contains("Bonjour"));
    assert!(read("hls/subs/eng.m3u8").contains("\n../../subs/eng.vtt\n"));
    assert!(read("thumbs/thumbs.vtt").contains("sprite.jpg#xywh=0,0,160,90"));

    // Segment n of every rung starts with a keyframe at the same instant.
    let probe = d.join("probe.mp4");
    let mut grid: Option<Vec<f64>> = None;
    for r in rungs {
        let playlist = read(&format!("hls/{r}/index.m3u8"));
        assert!(
            playlist.contains("#EXT-X-MAP:URI=\"init.mp4\""),
            "{playlist}"
        );
        assert!(
            playlist.contains("#EXT-X-PLAYLIST-TYPE:VOD") && playlist.contains("#EXT-X-ENDLIST")
        );
        let segs: Vec<&str> = playlist.lines().filter(|l| l.ends_with(".m4s")).collect();
        assert_eq!(segs.len(), 3, "6 s in 2 s segments for {r}: {playlist}");
        let starts: Vec<f64> = segs
            .iter()
            .map(|s| {
                let (pts, key) = first_frame(
                    &out.join(format!("hls/{r}/init.mp4")),
                    &out.join(format!("hls/{r}/{s}")),
                    &probe,
                );
                assert!(key, "{r}/{s} does not start with a keyframe");
                pts
            })
            .collect();
        match &grid {
            None => grid = Some(starts),
            Some(g) => {
                for (a, b) in g.iter().zip(&starts) {
                    assert!(
                        (a - b).abs() < 0.001,
                        "{r}: segment starts {starts:?} vs {g:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn hls_prepare_never_upscales_a_480p_source() {
    require_ffmpeg();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("small.mp4");
    // No audio: the ladder is video only, and the codecs say so.
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=640x480:rate=25",
        "-t",
        "2",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        src.to_str().unwrap(),
    ]);
    // The ladder goes next to the source: the source is not part of the tree.
    let out = dir.path().to_path_buf();
    let o = run(canvid()
        .args(["hls", "prepare"])
        .arg(&src)
        .arg(&out)
        .arg("--thumbnails"));
    assert!(o.status.success(), "hls prepare failed: {}", stderr(&o));
    assert!(out.join("thumbs/sprite.jpg").is_file());
    // Prepared again without thumbnails: the old track does not linger.
    let o = run(canvid().args(["hls", "prepare"]).arg(&src).arg(&out));
    assert!(o.status.success(), "hls prepare failed: {}", stderr(&o));
    assert!(!out.join("thumbs").exists());
    let tree = canvid_cli::hls::scan(&out).unwrap();
    assert!(tree.iter().all(|f| f.path.starts_with("/hls/")), "{tree:?}");
    // Declaration order: master, then rungs from the lowest (playlist, init, segments).
    let order: Vec<&str> = tree.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        order[..4],
        [
            "/hls/master.m3u8",
            "/hls/240p/index.m3u8",
            "/hls/240p/init.mp4",
            "/hls/240p/seg-00000.m4s"
        ]
    );
    let r = tree[1]
        .rendition
        .as_ref()
        .expect("index.m3u8 carries its rendition");
    assert_eq!((r.name.as_str(), r.width, r.height), ("240p", 320, 240));
    r.validate().unwrap();
    let dirs: Vec<String> = std::fs::read_dir(out.join("hls"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".m3u8"))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(dirs, ["240p", "360p", "480p"]);
    let master = std::fs::read_to_string(out.join("hls/master.m3u8")).unwrap();
    assert!(master.contains("RESOLUTION=640x480,"), "{master}");
    assert!(master.contains("RESOLUTION=320x240,"), "{master}");
    assert!(
        !master.contains("mp4a") && !master.contains("SUBTITLES"),
        "{master}"
    );
    assert!(!out.join("subs").exists());
    // ≤480p rungs allow 6 s segments: 2 s of video is one segment per rung.
    let p = std::fs::read_to_string(out.join("hls/480p/index.m3u8")).unwrap();
    assert_eq!(p.matches(".m4s").count(), 1, "{p}");
    assert!(p.contains("#EXT-X-TARGETDURATION:2"), "{p}");
}

#[test]
fn hls_prepare_refuses_bad_inputs_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let not_video = dir.path().join("notes.mp4");
    std::fs::write(&not_video, "this is not a video").unwrap();
    let out = dir.path().join("out");
    let o = run(canvid()
        .args(["hls", "prepare", "/no/such/src.mp4"])
        .arg(&out));
    assert_one_line_error(&o, 3, "file not found: /no/such/src.mp4");
    let o = run(canvid()
        .args(["hls", "prepare"])
        .arg(&not_video)
        .arg(&out)
        .args(["--subtitles", "en"]));
    assert_one_line_error(&o, 3, "is not LANG=PATH");
    let o = run(canvid()
        .args(["hls", "prepare"])
        .arg(&not_video)
        .arg(&out)
        .args(["--subtitles", "en=/no/such.srt"]));
    assert_one_line_error(&o, 3, "file not found: /no/such.srt");
    // A tree made elsewhere with a segment larger than one HTTP answer is refused before any
    // call (no network is running here).
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("hls/240p")).unwrap();
    std::fs::write(
        tree.join("hls/master.m3u8"),
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=2x2\n240p/index.m3u8\n",
    )
    .unwrap();
    std::fs::write(tree.join("hls/240p/index.m3u8"), "#EXTM3U\n").unwrap();
    std::fs::write(tree.join("hls/240p/seg-00000.m4s"), vec![0u8; 2_000_001]).unwrap();
    let o = run(canvid()
        .args(["upload", "--no-original", "--hls-dir"])
        .arg(&tree)
        .arg("--state")
        .arg(dir.path().join("state")));
    assert_one_line_error(
        &o,
        1,
        "/hls/240p/seg-00000.m4s is 2000001 bytes, more than the 2000000 bytes",
    );
    // A tree whose master names a rung playlist that is not there.
    std::fs::remove_file(tree.join("hls/240p/seg-00000.m4s")).unwrap();
    std::fs::remove_file(tree.join("hls/240p/index.m3u8")).unwrap();
    let o = run(canvid()
        .args(["upload", "--no-original", "--hls-dir"])
        .arg(&tree)
        .arg("--state")
        .arg(dir.path().join("state")));
    assert_one_line_error(&o, 3, "names hls/240p/index.m3u8, which is missing");
    require_ffmpeg();
    let o = run(canvid().args(["hls", "prepare"]).arg(&not_video).arg(&out));
    assert_one_line_error(&o, 3, "is not a video ffprobe can read (");
    // An audio-only file has no video stream to make a ladder of.
    let audio = dir.path().join("tone.m4a");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=duration=1",
        "-c:a",
        "aac",
        audio.to_str().unwrap(),
    ]);
    let o = run(canvid().args(["hls", "prepare"]).arg(&audio).arg(&out));
    assert_one_line_error(&o, 3, "(no video stream)");
    // Without ffmpeg/ffprobe on PATH: the environment exit code and what to install.
    let src = dir.path().join("v.mp4");
    std::fs::write(&src, "x").unwrap();
    let o = run(canvid()
        .args(["hls", "prepare"])
        .arg(&src)
        .arg(&out)
        .env("PATH", dir.path().join("empty")));
    assert_one_line_error(&o, 4, "ffprobe is not installed");
}

#[test]
fn hls_prepare_cuts_shorter_segments_until_every_file_fits_or_says_why_not() {
    use canvid_cli::hls::{prepare, HlsError, PrepareOptions};
    require_ffmpeg();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=426x240:rate=25",
        "-t",
        "2",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        src.to_str().unwrap(),
    ]);
    let largest = |out: &std::path::Path| tree_files(out).iter().map(|f| f.1).max().unwrap();
    let opts = |max: Option<u64>| PrepareOptions {
        segment_seconds: Some(2),
        preset: Some("ultrafast".into()),
        max_file_bytes: max,
        ..PrepareOptions::default()
    };
    let quiet = |_: &str| {};
    // One rung (240p); 2 s segments: one segment, whose size is the limit to beat.
    let out = dir.path().join("a");
    let p = prepare(&src, &out, &opts(None), &quiet).unwrap();
    assert_eq!(p.segment_seconds, 2);
    assert_eq!(p.variants.len(), 1);
    let l2 = largest(&out);
    // A limit of 3/4 of it: the ladder is cut again with 1 s segments (about half the bytes),
    // which fit. (Not "just below": x264 under a VBV cap with threads varies by a few percent
    // from run to run.)
    let limit = l2 * 3 / 4;
    let out = dir.path().join("b");
    let p = prepare(&src, &out, &opts(Some(limit)), &quiet).unwrap();
    assert_eq!(p.segment_seconds, 1);
    assert!(largest(&out) <= limit, "{} vs {limit}", largest(&out));
    let segs = std::fs::read_to_string(out.join("hls/240p/index.m3u8")).unwrap();
    assert_eq!(segs.matches(".m4s").count(), 2, "{segs}");
    // A limit no segment can meet: refused, naming the file and the limit.
    let out = dir.path().join("c");
    match prepare(&src, &out, &opts(Some(5_000)), &quiet) {
        Err(e @ HlsError::FileTooLarge { .. }) => {
            let m = e.to_string();
            assert!(
                m.contains("more than the 5000 bytes") && m.contains("1-second"),
                "{m}"
            );
            assert!(m.contains(".m4s is "), "{m}");
        }
        other => panic!("expected FileTooLarge, got {other:?}"),
    }
}
