//! Unit tests of the upload pipeline against an in-memory video canister that fails on command.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use canvid_cli::upload::{
    self, chunk_count, file_digest, sha256, Digest, Progress, RetryPolicy, Step, UploadError,
    UploadOptions, UploadPlan, VideoClient, CHUNK_SIZE,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Begin,
    Put(u32),
    Missing,
    Finish,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum FakeError {
    Transient(&'static str),
    Permanent(&'static str),
}

impl std::fmt::Display for FakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FakeError::Transient(m) => write!(f, "transient: {m}"),
            FakeError::Permanent(m) => write!(f, "permanent: {m}"),
        }
    }
}

/// An in-memory video canister: it checks chunk sizes and digests like the real one and
/// computes the file digest from the chunk digests it stored.
#[derive(Default)]
struct FakeVideo {
    plan: RefCell<Option<UploadPlan>>,
    chunks: RefCell<BTreeMap<u32, Vec<u8>>>,
    /// Scripted failures: the next call matching `Op` fails with the error.
    failures: RefCell<VecDeque<(Op, FakeError)>>,
    /// Every call, in order.
    calls: RefCell<Vec<Op>>,
    sleeps: RefCell<Vec<Duration>>,
    /// Silently drop the first put of this chunk (acknowledge it but do not store it).
    lose_once: RefCell<Option<u32>>,
    finished: RefCell<bool>,
}

impl FakeVideo {
    fn fail(&self, op: Op, e: FakeError) {
        self.failures.borrow_mut().push_back((op, e));
    }
    fn check(&self, op: Op) -> Result<(), FakeError> {
        self.calls.borrow_mut().push(op);
        let mut f = self.failures.borrow_mut();
        if let Some(pos) = f.iter().position(|(o, _)| *o == op) {
            return Err(f.remove(pos).unwrap().1);
        }
        Ok(())
    }
    fn puts(&self) -> Vec<u32> {
        self.calls
            .borrow()
            .iter()
            .filter_map(|c| match c {
                Op::Put(i) => Some(*i),
                _ => None,
            })
            .collect()
    }
}

impl VideoClient for FakeVideo {
    type Error = FakeError;

    async fn begin(&self, plan: &UploadPlan) -> Result<(), FakeError> {
        self.check(Op::Begin)?;
        let mut p = self.plan.borrow_mut();
        match &*p {
            Some(existing) if existing != plan => {
                Err(FakeError::Permanent("a different upload is declared"))
            }
            _ => {
                *p = Some(plan.clone());
                Ok(())
            }
        }
    }
    async fn put(&self, index: u32, bytes: Vec<u8>) -> Result<(), FakeError> {
        self.check(Op::Put(index))?;
        let plan = self
            .plan
            .borrow()
            .clone()
            .ok_or(FakeError::Permanent("not begun"))?;
        let r = plan.chunk_range(index);
        if bytes.len() as u64 != r.end - r.start {
            return Err(FakeError::Permanent("wrong chunk size"));
        }
        if sha256(&bytes) != plan.chunk_digests[index as usize] {
            return Err(FakeError::Permanent("wrong chunk digest"));
        }
        if *self.lose_once.borrow() == Some(index) {
            *self.lose_once.borrow_mut() = None;
            return Ok(());
        }
        self.chunks.borrow_mut().insert(index, bytes);
        Ok(())
    }
    async fn missing(&self) -> Result<Vec<u32>, FakeError> {
        self.check(Op::Missing)?;
        let plan = self
            .plan
            .borrow()
            .clone()
            .ok_or(FakeError::Permanent("not begun"))?;
        let chunks = self.chunks.borrow();
        Ok((0..plan.chunk_count())
            .filter(|i| !chunks.contains_key(i))
            .collect())
    }
    async fn finish(&self) -> Result<Digest, FakeError> {
        self.check(Op::Finish)?;
        let chunks = self.chunks.borrow();
        let digests: Vec<Digest> = chunks.values().map(|c| sha256(c)).collect();
        *self.finished.borrow_mut() = true;
        Ok(file_digest(&digests))
    }
    fn is_transient(&self, e: &FakeError) -> bool {
        matches!(e, FakeError::Transient(_))
    }
    async fn sleep(&self, d: Duration) {
        self.sleeps.borrow_mut().push(d);
    }
}

/// Records progress so tests can check the accounting.
#[derive(Default)]
struct Recorder {
    hashed: RefCell<u64>,
    started: RefCell<Option<(u64, u64, u32)>>,
    stored: RefCell<Vec<(u32, u64)>>,
    retries: RefCell<Vec<(Step, u32, Duration)>>,
    finished: RefCell<bool>,
}

impl Progress for Recorder {
    fn hashed(&self, b: u64) {
        *self.hashed.borrow_mut() += b;
    }
    fn started(&self, total: u64, already: u64, n: u32) {
        *self.started.borrow_mut() = Some((total, already, n));
    }
    fn chunk_stored(&self, i: u32, b: u64) {
        self.stored.borrow_mut().push((i, b));
    }
    fn retrying(&self, s: Step, a: u32, d: Duration, _e: &str) {
        self.retries.borrow_mut().push((s, a, d));
    }
    fn finished(&self) {
        *self.finished.borrow_mut() = true;
    }
}

/// Deterministic, non-repeating test bytes.
fn data(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn small_options(chunk_size: u64) -> UploadOptions {
    UploadOptions {
        chunk_size,
        concurrency: 3,
        ..UploadOptions::default()
    }
}

fn run(
    client: &FakeVideo,
    bytes: &[u8],
    opts: &UploadOptions,
    p: &Recorder,
) -> Result<upload::UploadReport, UploadError<FakeError>> {
    futures::executor::block_on(upload::upload(client, bytes, opts, p))
}

#[test]
fn chunking_boundaries() {
    assert_eq!(chunk_count(0, CHUNK_SIZE), 0);
    assert_eq!(chunk_count(1, CHUNK_SIZE), 1);
    assert_eq!(chunk_count(CHUNK_SIZE, CHUNK_SIZE), 1);
    assert_eq!(chunk_count(CHUNK_SIZE + 1, CHUNK_SIZE), 2);
    assert_eq!(chunk_count(5_000_000, CHUNK_SIZE), 3);

    let bytes = data(5_000_000);
    let plan = upload::plan(bytes.as_slice(), CHUNK_SIZE, &upload::NoProgress).unwrap();
    assert_eq!(plan.chunk_count(), 3);
    assert_eq!(plan.chunk_range(0), 0..2_000_000);
    assert_eq!(plan.chunk_range(1), 2_000_000..4_000_000);
    assert_eq!(plan.chunk_range(2), 4_000_000..5_000_000);
    assert_eq!(plan.chunk_digests[2], sha256(&bytes[4_000_000..]));
}

#[test]
fn file_digest_is_sha256_over_chunk_digests() {
    let bytes = data(10);
    let plan = upload::plan(bytes.as_slice(), 4, &upload::NoProgress).unwrap();
    let mut concat = Vec::new();
    for r in [0..4, 4..8, 8..10] {
        concat.extend_from_slice(&sha256(&bytes[r]));
    }
    assert_eq!(plan.file_digest, sha256(&concat));
    // Not the plain SHA-256 of the file (that would be a different definition).
    assert_ne!(plan.file_digest, sha256(&bytes));
}

#[test]
fn uploads_every_chunk_and_verifies_digest() {
    let bytes = data(1000);
    let client = FakeVideo::default();
    let p = Recorder::default();
    let report = run(&client, &bytes, &small_options(128), &p).unwrap();
    assert_eq!(report.chunks_sent, 8);
    assert_eq!(report.bytes_sent, 1000);
    assert_eq!(report.retries, 0);
    let mut puts = client.puts();
    puts.sort();
    assert_eq!(puts, (0..8).collect::<Vec<_>>());
    let stored: Vec<u8> = client.chunks.borrow().values().flatten().copied().collect();
    assert_eq!(stored, bytes);
    assert!(*client.finished.borrow());
}

#[test]
fn file_source_reads_chunks_from_disk() {
    let bytes = data(3000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.bin");
    std::fs::write(&path, &bytes).unwrap();
    let source = upload::FileSource::open(&path).unwrap();
    let client = FakeVideo::default();
    let report = futures::executor::block_on(upload::upload(
        &client,
        &source,
        &small_options(1024),
        &upload::NoProgress,
    ))
    .unwrap();
    assert_eq!(report.chunks_sent, 3);
    let stored: Vec<u8> = client.chunks.borrow().values().flatten().copied().collect();
    assert_eq!(stored, bytes);
}

#[test]
fn resume_sends_only_missing_chunks() {
    let bytes = data(1000);
    let opts = small_options(100);
    let client = FakeVideo::default();
    // First run dies permanently on chunk 6 (e.g. the user pressed Ctrl-C / the network died).
    client.fail(Op::Put(6), FakeError::Permanent("connection reset"));
    let opts_seq = UploadOptions {
        concurrency: 1,
        ..opts.clone()
    };
    let err = run(&client, &bytes, &opts_seq, &Recorder::default()).unwrap_err();
    assert!(
        matches!(
            err,
            UploadError::Call {
                step: Step::Put(6),
                attempts: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(!*client.finished.borrow());
    let stored_before: Vec<u32> = client.chunks.borrow().keys().copied().collect();
    assert_eq!(stored_before, vec![0, 1, 2, 3, 4, 5]);

    // Second run: only 6..10 are sent.
    client.calls.borrow_mut().clear();
    let p = Recorder::default();
    let report = run(&client, &bytes, &opts, &p).unwrap();
    let mut puts = client.puts();
    puts.sort();
    assert_eq!(puts, vec![6, 7, 8, 9]);
    assert_eq!(report.chunks_sent, 4);
    assert_eq!(report.bytes_sent, 400);
    assert_eq!(*p.started.borrow(), Some((1000, 600, 4)));
    let stored: Vec<u8> = client.chunks.borrow().values().flatten().copied().collect();
    assert_eq!(stored, bytes);
}

#[test]
fn transient_failures_are_retried_with_exponential_backoff() {
    let bytes = data(300);
    let client = FakeVideo::default();
    client.fail(Op::Put(1), FakeError::Transient("queue full"));
    client.fail(Op::Put(1), FakeError::Transient("queue full"));
    client.fail(Op::Put(1), FakeError::Transient("queue full"));
    client.fail(Op::Begin, FakeError::Transient("timeout"));
    let retry = RetryPolicy {
        max_attempts: 5,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(250),
    };
    let opts = UploadOptions {
        chunk_size: 100,
        concurrency: 1,
        retry,
        max_rounds: 3,
    };
    let p = Recorder::default();
    let report = run(&client, &bytes, &opts, &p).unwrap();
    assert_eq!(report.retries, 4);
    assert_eq!(
        *client.sleeps.borrow(),
        vec![
            Duration::from_millis(100),
            Duration::from_millis(100),
            Duration::from_millis(200),
            Duration::from_millis(250)
        ]
    );
    assert_eq!(
        *p.retries.borrow(),
        vec![
            (Step::Begin, 1, Duration::from_millis(100)),
            (Step::Put(1), 1, Duration::from_millis(100)),
            (Step::Put(1), 2, Duration::from_millis(200)),
            (Step::Put(1), 3, Duration::from_millis(250)),
        ]
    );
    assert_eq!(client.puts().iter().filter(|&&i| i == 1).count(), 4);
}

#[test]
fn retries_give_up_after_max_attempts() {
    let bytes = data(300);
    let client = FakeVideo::default();
    for _ in 0..3 {
        client.fail(Op::Put(0), FakeError::Transient("queue full"));
    }
    let retry = RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(1),
    };
    let opts = UploadOptions {
        chunk_size: 100,
        concurrency: 1,
        retry,
        max_rounds: 3,
    };
    let err = run(&client, &bytes, &opts, &Recorder::default()).unwrap_err();
    match &err {
        UploadError::Call {
            step: Step::Put(0),
            attempts: 3,
            error: FakeError::Transient(_),
        } => {}
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "put_chunk 0 failed after 3 attempts: transient: queue full"
    );
    assert!(!*client.finished.borrow());
}

#[test]
fn permanent_failures_are_not_retried() {
    let bytes = data(300);
    let client = FakeVideo::default();
    client.fail(Op::Finish, FakeError::Permanent("not authorized"));
    let err = run(&client, &bytes, &small_options(100), &Recorder::default()).unwrap_err();
    assert!(matches!(
        err,
        UploadError::Call {
            step: Step::Finish,
            attempts: 1,
            ..
        }
    ));
    assert!(client.sleeps.borrow().is_empty());
}

#[test]
fn backoff_schedule_is_capped_and_does_not_overflow() {
    let p = RetryPolicy {
        max_attempts: 100,
        initial_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(5),
    };
    let delays: Vec<u64> = (1..=7).map(|a| p.delay(a).as_millis() as u64).collect();
    assert_eq!(delays, vec![200, 400, 800, 1600, 3200, 5000, 5000]);
    assert_eq!(p.delay(64), Duration::from_secs(5));
    assert_eq!(p.delay(u32::MAX), Duration::from_secs(5));
}

#[test]
fn a_chunk_acknowledged_but_not_stored_is_sent_again() {
    let bytes = data(500);
    let client = FakeVideo::default();
    *client.lose_once.borrow_mut() = Some(3);
    let report = run(&client, &bytes, &small_options(100), &Recorder::default()).unwrap();
    assert_eq!(client.puts().iter().filter(|&&i| i == 3).count(), 2);
    assert_eq!(report.chunks_sent, 6);
}

#[test]
fn gives_up_when_chunks_stay_missing() {
    struct Forgetful(FakeVideo);
    impl VideoClient for Forgetful {
        type Error = FakeError;
        async fn begin(&self, p: &UploadPlan) -> Result<(), FakeError> {
            self.0.begin(p).await
        }
        async fn put(&self, _: u32, _: Vec<u8>) -> Result<(), FakeError> {
            Ok(()) // acknowledges, never stores
        }
        async fn missing(&self) -> Result<Vec<u32>, FakeError> {
            self.0.missing().await
        }
        async fn finish(&self) -> Result<Digest, FakeError> {
            self.0.finish().await
        }
        fn is_transient(&self, e: &FakeError) -> bool {
            self.0.is_transient(e)
        }
    }
    let client = Forgetful(FakeVideo::default());
    let bytes = data(250);
    let err = futures::executor::block_on(upload::upload(
        &client,
        bytes.as_slice(),
        &small_options(100),
        &upload::NoProgress,
    ))
    .unwrap_err();
    assert!(
        matches!(&err, UploadError::StillMissing { missing } if missing == &vec![0, 1, 2]),
        "{err}"
    );
    assert!(!*client.0.finished.borrow());
}

#[test]
fn digest_mismatch_is_reported() {
    struct Liar(FakeVideo);
    impl VideoClient for Liar {
        type Error = FakeError;
        async fn begin(&self, p: &UploadPlan) -> Result<(), FakeError> {
            self.0.begin(p).await
        }
        async fn put(&self, i: u32, b: Vec<u8>) -> Result<(), FakeError> {
            self.0.put(i, b).await
        }
        async fn missing(&self) -> Result<Vec<u32>, FakeError> {
            self.0.missing().await
        }
        async fn finish(&self) -> Result<Digest, FakeError> {
            Ok([7; 32])
        }
        fn is_transient(&self, _: &FakeError) -> bool {
            false
        }
    }
    let bytes = data(250);
    let err = futures::executor::block_on(upload::upload(
        &Liar(FakeVideo::default()),
        bytes.as_slice(),
        &small_options(100),
        &upload::NoProgress,
    ))
    .unwrap_err();
    assert!(matches!(err, UploadError::DigestMismatch { actual, .. } if actual == [7; 32]));
}

#[test]
fn progress_accounting_adds_up() {
    let bytes = data(1050);
    let client = FakeVideo::default();
    client.fail(Op::Put(2), FakeError::Transient("busy"));
    let p = Recorder::default();
    let report = run(&client, &bytes, &small_options(100), &p).unwrap();
    assert_eq!(*p.hashed.borrow(), 1050);
    assert_eq!(*p.started.borrow(), Some((1050, 0, 11)));
    let stored = p.stored.borrow();
    assert_eq!(
        stored.len(),
        11,
        "each chunk reported once, even the retried one"
    );
    assert_eq!(stored.iter().map(|(_, b)| b).sum::<u64>(), 1050);
    assert_eq!(stored.iter().find(|(i, _)| *i == 10), Some(&(10, 50)));
    assert_eq!(report.bytes_sent, 1050);
    assert!(*p.finished.borrow());
}

#[test]
fn empty_file_has_no_chunks() {
    let client = FakeVideo::default();
    let p = Recorder::default();
    let report = run(&client, &[], &small_options(100), &p).unwrap();
    assert_eq!(report.chunks_sent, 0);
    assert_eq!(report.plan.file_digest, file_digest([] as [Digest; 0]));
    assert!(client.puts().is_empty());
}

// ---------------------------------------------------------------------- HLS ladder arithmetic

mod hls_ladder {
    use canvid_cli::hls::{
        bitrates, ladder_segment_seconds, master_playlist, master_renditions, media_segments,
        parse_subtitle_arg, sanitize_lang, segment_seconds, select_rungs, subtitle_playlist,
        SubtitleTrack, VariantInfo, LADDER, MAX_FILE_BYTES, MAX_SEGMENT_SECONDS,
    };

    fn names(w: u32, h: u32) -> Vec<String> {
        select_rungs(w, h).into_iter().map(|r| r.name).collect()
    }

    #[test]
    fn rungs_never_exceed_the_source_height() {
        assert_eq!(names(1920, 1080), ["1080p", "720p", "480p", "360p", "240p"]);
        assert_eq!(names(3840, 2160), ["1080p", "720p", "480p", "360p", "240p"]);
        assert_eq!(names(1280, 720), ["720p", "480p", "360p", "240p"]);
        assert_eq!(names(854, 480), ["480p", "360p", "240p"]);
        // Between rungs: the next rung down, never an upscaled one.
        assert_eq!(names(1000, 600), ["480p", "360p", "240p"]);
        assert_eq!(names(426, 240), ["240p"]);
        for (w, h) in [(1920, 1080), (1000, 600), (640, 359), (7680, 4320)] {
            for r in select_rungs(w, h) {
                assert!(r.height <= h, "{w}x{h}: rung {} upscales", r.name);
            }
        }
    }

    #[test]
    fn a_source_below_240p_gets_one_rung_at_its_own_even_size() {
        let r = select_rungs(321, 181);
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].name.as_str(), r[0].width, r[0].height),
            ("180p", 320, 180)
        );
        let r = select_rungs(160, 120);
        assert_eq!((r[0].width, r[0].height), (160, 120));
    }

    #[test]
    fn rung_sizes_keep_the_aspect_ratio_with_even_dimensions() {
        let r = select_rungs(1920, 1080);
        let sizes: Vec<(u32, u32)> = r.iter().map(|r| (r.width, r.height)).collect();
        assert_eq!(
            sizes,
            [
                (1920, 1080),
                (1280, 720),
                (854, 480),
                (640, 360),
                (426, 240)
            ]
        );
        // 4:3 and a cinema 2.39:1 source.
        let r = select_rungs(1440, 1080);
        assert_eq!((r[1].width, r[1].height), (960, 720));
        for r in select_rungs(2048, 858)
            .iter()
            .chain(&select_rungs(1437, 1079))
        {
            assert_eq!(r.width % 2, 0, "{r:?}");
            assert_eq!(r.height % 2, 0, "{r:?}");
        }
        let r = select_rungs(2048, 858);
        assert_eq!((r[0].width, r[0].height), (1718, 720));
    }

    #[test]
    fn segment_duration_fits_the_size_limit_under_the_bitrate_cap() {
        for spec in LADDER {
            let d = segment_seconds(&spec);
            assert!((1..=MAX_SEGMENT_SECONDS).contains(&d), "{spec:?}: {d}");
            // The VBV bound on one segment: peak video rate over d seconds plus the buffer,
            // plus the audio; it must fit one HTTP answer.
            let worst_bytes =
                ((spec.max_video_bps + spec.audio_bps) * u64::from(d) + spec.bufsize_bits) / 8;
            assert!(
                worst_bytes <= MAX_FILE_BYTES,
                "{spec:?}: {d} s segments can reach {worst_bytes} bytes"
            );
            // And the duration is the longest whole number of seconds that does (or the cap).
            if d < MAX_SEGMENT_SECONDS {
                let longer = ((spec.max_video_bps + spec.audio_bps) * u64::from(d + 1)
                    + spec.bufsize_bits)
                    / 8;
                assert!(
                    longer as f64 > MAX_FILE_BYTES as f64 * 0.85,
                    "{spec:?}: {d}"
                );
            }
        }
        // Higher rungs need shorter segments; the ladder uses its shortest.
        assert_eq!(segment_seconds(&LADDER[0]), 2);
        assert_eq!(segment_seconds(&LADDER[4]), MAX_SEGMENT_SECONDS);
        assert_eq!(ladder_segment_seconds(&select_rungs(1920, 1080)), 2);
        assert_eq!(ladder_segment_seconds(&select_rungs(1280, 720)), 4);
        assert_eq!(ladder_segment_seconds(&select_rungs(640, 360)), 6);
        // Caps fall with the rung.
        for w in LADDER.windows(2) {
            assert!(w[0].max_video_bps > w[1].max_video_bps);
        }
    }

    #[test]
    fn master_playlist_text() {
        let v = |name: &str, w, h, peak, avg, codecs: &str| VariantInfo {
            name: name.into(),
            width: w,
            height: h,
            peak_bps: peak,
            average_bps: avg,
            codecs: codecs.into(),
            fps: 29.97,
        };
        let variants = [
            v(
                "720p",
                1280,
                720,
                2_000_000,
                1_500_000,
                "avc1.64001f,mp4a.40.2",
            ),
            v("240p", 426, 240, 300_000, 250_000, "avc1.640015,mp4a.40.2"),
        ];
        let subs = [
            SubtitleTrack {
                lang: "en".into(),
                name: "English".into(),
            },
            SubtitleTrack {
                lang: "fr".into(),
                name: "fr".into(),
            },
        ];
        let m = master_playlist(&variants, &subs);
        assert_eq!(
            m,
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"English\",LANGUAGE=\"en\",DEFAULT=YES,AUTOSELECT=YES,FORCED=NO,URI=\"subs/en.m3u8\"\n\
             #EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"fr\",LANGUAGE=\"fr\",DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,URI=\"subs/fr.m3u8\"\n\
             #EXT-X-STREAM-INF:BANDWIDTH=2000000,AVERAGE-BANDWIDTH=1500000,RESOLUTION=1280x720,CODECS=\"avc1.64001f,mp4a.40.2\",FRAME-RATE=29.970,SUBTITLES=\"subs\"\n\
             720p/index.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=300000,AVERAGE-BANDWIDTH=250000,RESOLUTION=426x240,CODECS=\"avc1.640015,mp4a.40.2\",FRAME-RATE=29.970,SUBTITLES=\"subs\"\n\
             240p/index.m3u8\n"
        );
        // Read back as the renditions the upload declares.
        let r = master_renditions(&m);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].0, "720p/index.m3u8");
        assert_eq!(r[0].1.name, "720p");
        assert_eq!(
            (r[0].1.width, r[0].1.height, r[0].1.bandwidth),
            (1280, 720, 2_000_000)
        );
        assert_eq!(r[0].1.codecs.as_deref(), Some("avc1.64001f,mp4a.40.2"));
        r[1].1.validate().unwrap();
        // Without subtitles there is no group and no SUBTITLES attribute.
        let m = master_playlist(&variants[..1], &[]);
        assert!(!m.contains("SUBTITLES"), "{m}");
    }

    #[test]
    fn subtitle_playlist_is_one_segment_pointing_at_the_vtt() {
        let p = subtitle_playlist("en", 61.2);
        assert_eq!(
            p,
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:62\n#EXT-X-MEDIA-SEQUENCE:0\n\
             #EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:61.200,\n../../subs/en.vtt\n#EXT-X-ENDLIST\n"
        );
        // /hls/subs/en.m3u8 + ../../subs/en.vtt = /subs/en.vtt
        assert_eq!(
            media_segments(&p),
            [(61.2, "../../subs/en.vtt".to_string())]
        );
    }

    #[test]
    fn bandwidth_from_measured_segments() {
        // 2 s segments of 500 kB and 600 kB and a short 0.5 s tail of 100 kB: the peak is the
        // densest segment's rate, the tail's included (RFC 8216).
        let (peak, avg) = bitrates(&[(2.0, 500_000), (2.0, 600_000), (0.5, 100_000)]);
        assert_eq!(peak, 2_400_000);
        let (peak, _) = bitrates(&[(2.0, 500_000), (0.5, 400_000)]);
        assert_eq!(peak, 6_400_000);
        let (_, avg2) = bitrates(&[(2.0, 500_000), (2.0, 600_000), (0.5, 400_000)]);
        assert_eq!(avg2, (1_500_000.0f64 * 8.0 / 4.5).ceil() as u64);
        assert_eq!(avg, (1_200_000.0f64 * 8.0 / 4.5).ceil() as u64);
    }

    #[test]
    fn subtitle_arguments() {
        assert_eq!(
            parse_subtitle_arg("en=a/b.srt").unwrap(),
            ("en".to_string(), std::path::PathBuf::from("a/b.srt"))
        );
        parse_subtitle_arg("pt-BR=x.VTT").unwrap();
        for bad in ["en", "=x.vtt", "e n=x.vtt", "en=x.ass", "../x=x.vtt"] {
            let e = parse_subtitle_arg(bad).unwrap_err().to_string();
            assert!(e.starts_with("subtitles: "), "{bad}: {e}");
        }
        assert_eq!(sanitize_lang("eng"), "eng");
        assert_eq!(sanitize_lang("pt_BR"), "pt-BR");
        assert_eq!(sanitize_lang(" / "), "und");
    }
}

// ---------------------------------------------------------------------- set upload (named files)

mod set_upload {
    use std::cell::{Cell, RefCell};
    use std::collections::BTreeMap;
    use std::time::Duration;

    use candid::Principal;
    use canvid_cli::error::{Error, Result};
    use canvid_cli::hls_upload::{upload_set, FilesClient, SetItem, MAX_BATCH_BYTES};
    use canvid_cli::upload::{file_digest, sha256, NoProgress};
    use canvid_types::files::{FileInfo, FileRendition, Rendition, MAX_FILES_PER_CALL};
    use canvid_types::video::{ChunkUpload, UploadSpec, VideoMetadata, VideoStatus};
    use serde_bytes::ByteBuf;

    const VIDEO: Principal = Principal::from_slice(&[7; 10]);

    /// Stored chunks by (file path, None = main file; index).
    type Chunks = BTreeMap<(Option<String>, u32), Vec<u8>>;

    fn refused(error: canvid_types::Error) -> Error {
        Error::Refused {
            canister: VIDEO,
            method: "fake".into(),
            error: Box::new(error),
        }
    }

    fn busy() -> Error {
        refused(canvid_types::Error::Busy {
            reason: "too much declared and unwritten".into(),
        })
    }

    /// An in-memory video canister with the named-file rules: identical re-declarations are
    /// accepted, a different one is refused; `begin_files` answers Busy when the bytes declared
    /// but unwritten would pass `unwritten_bound`; chunks are checked against declared digests.
    struct FakeSet {
        main: RefCell<Option<UploadSpec>>,
        declared: RefCell<Vec<UploadSpec>>,
        chunks: RefCell<Chunks>,
        unwritten_bound: u64,
        /// Busy answers to give to the next puts.
        busy_puts: Cell<u32>,
        begin_files_calls: RefCell<Vec<usize>>,
        puts: RefCell<Vec<(Option<String>, u32)>>,
        sleeps: Cell<u32>,
        ready: Cell<bool>,
        /// Report a zero digest for this file (a canister that stored something else).
        lie_about: RefCell<Option<String>>,
    }

    impl FakeSet {
        fn new(unwritten_bound: u64) -> Self {
            FakeSet {
                main: RefCell::new(None),
                declared: RefCell::new(Vec::new()),
                chunks: RefCell::new(BTreeMap::new()),
                unwritten_bound,
                busy_puts: Cell::new(0),
                begin_files_calls: RefCell::new(Vec::new()),
                puts: RefCell::new(Vec::new()),
                sleeps: Cell::new(0),
                ready: Cell::new(false),
                lie_about: RefCell::new(None),
            }
        }
        fn spec_of(&self, path: &Option<String>) -> Option<UploadSpec> {
            match path {
                None => self.main.borrow().clone(),
                Some(p) => self
                    .declared
                    .borrow()
                    .iter()
                    .find(|s| s.path.as_ref() == Some(p))
                    .cloned(),
            }
        }
        fn stored_of(&self, path: &Option<String>) -> (u32, Vec<[u8; 32]>) {
            let chunks = self.chunks.borrow();
            let mine: Vec<_> = chunks.iter().filter(|((p, _), _)| p == path).collect();
            (
                mine.len() as u32,
                mine.iter().map(|(_, b)| sha256(b)).collect(),
            )
        }
        fn unwritten(&self) -> u64 {
            let stored: u64 = self
                .chunks
                .borrow()
                .iter()
                .filter(|((p, _), _)| p.is_some())
                .map(|(_, b)| b.len() as u64)
                .sum();
            self.declared
                .borrow()
                .iter()
                .map(|s| s.total_size)
                .sum::<u64>()
                - stored
        }
        fn count(spec: &UploadSpec) -> u32 {
            spec.total_size.div_ceil(u64::from(spec.chunk_size)) as u32
        }
    }

    impl FilesClient for FakeSet {
        fn video(&self) -> Principal {
            VIDEO
        }
        async fn begin_upload(&self, spec: UploadSpec) -> Result<()> {
            let mut m = self.main.borrow_mut();
            match &*m {
                Some(s) if *s != spec => Err(refused(canvid_types::Error::Conflict {
                    reason: "another main file is declared".into(),
                })),
                _ => {
                    *m = Some(spec);
                    Ok(())
                }
            }
        }
        async fn begin_files(&self, specs: Vec<UploadSpec>) -> Result<u32> {
            self.begin_files_calls.borrow_mut().push(specs.len());
            let mut new_bytes = 0;
            for s in &specs {
                assert!(s.path.is_some(), "begin_files declares named files only");
                match self.spec_of(&s.path) {
                    Some(existing) if existing != *s => {
                        return Err(refused(canvid_types::Error::Conflict {
                            reason: format!("{:?} is declared differently", s.path),
                        }))
                    }
                    Some(_) => {}
                    None => new_bytes += s.total_size,
                }
            }
            if self.unwritten() + new_bytes > self.unwritten_bound {
                return Err(busy());
            }
            let mut d = self.declared.borrow_mut();
            for s in specs {
                if !d.iter().any(|x| x.path == s.path) {
                    d.push(s);
                }
            }
            Ok(d.len() as u32)
        }
        async fn put_chunk(&self, chunk: ChunkUpload) -> Result<()> {
            if self.busy_puts.get() > 0 {
                self.busy_puts.set(self.busy_puts.get() - 1);
                return Err(busy());
            }
            let spec = self.spec_of(&chunk.path).expect("put into a declared file");
            let want = &spec.chunk_digests.as_ref().unwrap()[chunk.index as usize];
            assert_eq!(want.as_slice(), sha256(&chunk.data), "chunk digest");
            self.puts
                .borrow_mut()
                .push((chunk.path.clone(), chunk.index));
            self.chunks
                .borrow_mut()
                .insert((chunk.path, chunk.index), chunk.data.into_vec());
            Ok(())
        }
        async fn missing_chunks(&self, path: Option<String>) -> Result<Vec<u32>> {
            let spec = self.spec_of(&path).expect("declared");
            let chunks = self.chunks.borrow();
            Ok((0..Self::count(&spec))
                .filter(|i| !chunks.contains_key(&(path.clone(), *i)))
                .collect())
        }
        async fn files(&self) -> Result<BTreeMap<String, FileInfo>> {
            let mut out = BTreeMap::new();
            for s in self.declared.borrow().iter() {
                let (uploaded, digests) = self.stored_of(&s.path);
                let path = s.path.clone().unwrap();
                out.insert(
                    path.clone(),
                    FileInfo {
                        path,
                        mime_type: s.mime_type.clone(),
                        size: s.total_size,
                        chunk_size: s.chunk_size,
                        chunk_count: Self::count(s),
                        uploaded_chunks: uploaded,
                        uploaded_bytes: 0,
                        digest: self.ready.get().then(|| {
                            if *self.lie_about.borrow() == s.path {
                                ByteBuf::from(vec![0; 32])
                            } else {
                                ByteBuf::from(file_digest(&digests).to_vec())
                            }
                        }),
                        duration_ms: None,
                        rendition: s.rendition.clone(),
                    },
                );
            }
            Ok(out)
        }
        async fn finish_upload(&self) -> Result<VideoMetadata> {
            for s in self
                .declared
                .borrow()
                .iter()
                .chain(self.main.borrow().iter())
            {
                let (n, _) = self.stored_of(&s.path);
                assert_eq!(n, Self::count(s), "finish with {:?} incomplete", s.path);
            }
            self.ready.set(true);
            let main = self.main.borrow().clone();
            let p = Principal::anonymous();
            Ok(VideoMetadata {
                status: VideoStatus::Ready,
                title: String::new(),
                description: String::new(),
                tags: vec![],
                mime_type: main
                    .as_ref()
                    .map(|m| m.mime_type.clone())
                    .unwrap_or_default(),
                size: main.as_ref().map(|m| m.total_size).unwrap_or(0),
                duration_ms: None,
                chunk_size: 0,
                chunk_count: 0,
                uploaded_chunks: 0,
                uploaded_bytes: 0,
                digest: main.map(|_| ByteBuf::from(file_digest(&self.stored_of(&None).1).to_vec())),
                creator: p,
                owner: p,
                operator: None,
                index: None,
                created_at: 0,
                updated_at: 0,
                ready_at: Some(1),
                transfer_seq: 0,
                pending_offer: None,
                control: None,
                encryption: None,
                files: Some(self.declared.borrow().len() as u32),
                renditions: Some(
                    self.declared
                        .borrow()
                        .iter()
                        .filter_map(|s| {
                            Some(FileRendition {
                                path: s.path.clone()?,
                                rendition: s.rendition.clone()?,
                            })
                        })
                        .collect(),
                ),
            })
        }
        async fn sleep(&self, _delay: Duration) {
            self.sleeps.set(self.sleeps.get() + 1);
        }
    }

    /// `n` named files of `size` bytes (distinct contents) and a 4,000,001-byte main file.
    fn set(dir: &std::path::Path, n: usize, size: usize, main: bool) -> Vec<SetItem> {
        let mut items = Vec::new();
        if main {
            let p = dir.join("main.mp4");
            let bytes: Vec<u8> = (0..4_000_001u32).map(|i| ((i * 7) >> 5) as u8).collect();
            std::fs::write(&p, bytes).unwrap();
            items.push(SetItem::plan(None, &p, "video/mp4", None, &NoProgress).unwrap());
        }
        for i in 0..n {
            let p = dir.join(format!("f{i}"));
            let mut bytes = vec![(i % 251) as u8; size];
            bytes[..8].copy_from_slice(&(i as u64).to_le_bytes());
            std::fs::write(&p, bytes).unwrap();
            let rendition = (i == 1).then(|| Rendition {
                name: "240p".into(),
                width: 426,
                height: 240,
                bandwidth: 300_000,
                codecs: Some("avc1.640015,mp4a.40.2".into()),
            });
            items.push(
                SetItem::plan(
                    Some(format!("/hls/240p/seg-{i:05}.m4s")),
                    &p,
                    "video/mp4",
                    rendition,
                    &NoProgress,
                )
                .unwrap(),
            );
        }
        items
    }

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        futures::executor::block_on(f)
    }

    #[test]
    fn declares_at_most_500_per_call_in_order_and_verifies_every_file() {
        let dir = tempfile::tempdir().unwrap();
        let items = set(dir.path(), 1_203, 64, true);
        let fake = FakeSet::new(u64::MAX);
        let r = run(upload_set(&fake, &items, false, None, &NoProgress)).unwrap();
        assert_eq!(*fake.begin_files_calls.borrow(), [500, 500, 203]);
        assert_eq!((r.batches, r.largest_batch), (3, MAX_FILES_PER_CALL));
        // 3 chunks of the main file, then one per named file, in declaration order.
        let puts = fake.puts.borrow();
        assert_eq!(r.chunks_sent, 3 + 1_203);
        assert_eq!(puts[..3], [(None, 0), (None, 1), (None, 2)]);
        let named: Vec<String> = puts[3..].iter().map(|p| p.0.clone().unwrap()).collect();
        let declared: Vec<String> = items[1..].iter().map(|i| i.path.clone().unwrap()).collect();
        assert_eq!(named, declared);
        assert_eq!(r.metadata.files, Some(1_203));
        assert_eq!(r.metadata.renditions.as_ref().unwrap().len(), 1);
    }

    #[test]
    fn a_busy_begin_files_is_split_until_it_fits_the_unwritten_bound() {
        let dir = tempfile::tempdir().unwrap();
        // Ten 1,000-byte files; the canister holds at most 3,000 bytes declared and unwritten.
        let items = set(dir.path(), 10, 1_000, false);
        let fake = FakeSet::new(3_000);
        let r = run(upload_set(&fake, &items, false, None, &NoProgress)).unwrap();
        assert_eq!(r.chunks_sent, 10);
        assert!(r.largest_batch <= 3, "{r:?}");
        // 10 refused, 5 refused, then batches of 2 that fit.
        assert_eq!(fake.begin_files_calls.borrow()[..3], [10, 5, 2]);
        assert_eq!(fake.declared.borrow().len(), 10);
    }

    #[test]
    fn batches_stop_at_max_batch_bytes() {
        let dir = tempfile::tempdir().unwrap();
        // Files of 1,999,000 bytes: MAX_BATCH_BYTES holds 64 of them per begin_files.
        let per = (MAX_BATCH_BYTES / 1_999_000) as usize;
        let items = set(dir.path(), per + 3, 1_999_000, false);
        let fake = FakeSet::new(u64::MAX);
        let r = run(upload_set(&fake, &items, false, None, &NoProgress)).unwrap();
        assert_eq!(*fake.begin_files_calls.borrow(), [per, 3]);
        assert_eq!(r.chunks_sent as usize, per + 3);
    }

    #[test]
    fn busy_puts_are_retried_with_backoff() {
        let dir = tempfile::tempdir().unwrap();
        let items = set(dir.path(), 3, 100, false);
        let fake = FakeSet::new(u64::MAX);
        fake.busy_puts.set(2);
        let r = run(upload_set(&fake, &items, false, None, &NoProgress)).unwrap();
        assert_eq!(r.chunks_sent, 3);
        assert_eq!(fake.sleeps.get(), 2);
    }

    #[test]
    fn an_interrupted_set_resumes_with_only_the_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let items = set(dir.path(), 20, 100, true);
        let fake = FakeSet::new(u64::MAX);
        let e = run(upload_set(&fake, &items, false, Some(7), &NoProgress)).unwrap_err();
        assert!(matches!(e, Error::Interrupted(_)), "{e}");
        assert_eq!(fake.puts.borrow().len(), 7);
        // Same set again: identical declarations are accepted; 3 + 20 - 7 chunks remain.
        let r = run(upload_set(&fake, &items, true, None, &NoProgress)).unwrap();
        assert_eq!(r.chunks_sent, 3 + 20 - 7);
        assert_eq!(fake.puts.borrow().len(), 23, "nothing is sent twice");
        // A different file at a declared path is refused, not overwritten.
        let other = tempfile::tempdir().unwrap();
        let mut changed = set(other.path(), 20, 100, true);
        changed[5] = SetItem::plan(
            changed[5].path.clone(),
            &other.path().join("f0"),
            "video/mp4",
            None,
            &NoProgress,
        )
        .unwrap();
        let fake2 = FakeSet::new(u64::MAX);
        run(upload_set(
            &fake2,
            &set(other.path(), 20, 100, true),
            false,
            Some(4),
            &NoProgress,
        ))
        .unwrap_err();
        let e = run(upload_set(&fake2, &changed, true, None, &NoProgress)).unwrap_err();
        assert!(e.to_string().contains("declared differently"), "{e}");
    }

    #[test]
    fn a_stored_file_that_differs_fails_the_verification() {
        let dir = tempfile::tempdir().unwrap();
        let items = set(dir.path(), 3, 100, false);
        let fake = FakeSet::new(u64::MAX);
        *fake.lie_about.borrow_mut() = items[2].path.clone();
        let e = run(upload_set(&fake, &items, false, None, &NoProgress)).unwrap_err();
        assert!(matches!(e, Error::Verify(_)), "{e}");
        assert!(
            e.to_string()
                .contains("/hls/240p/seg-00002.m4s as 100 bytes with digest 0000"),
            "{e}"
        );
    }
}
