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
