//! `canvid demo`: the whole life of one video on the embedded replica, each step printed with
//! what it cost.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use candid::Principal;
use canvid_replica::Replica;
use canvid_types::index::{ListArgs, Page};
use canvid_types::spawn::{CreateVideoArgs, CreatedVideo};
use canvid_types::video::{
    ChangeOwnerArgs, ChangeOwnerResult, RangeArgs, VideoMetadata, VideoStatus,
};
use serde_bytes::ByteBuf;

use crate::embedded::{
    self, demo_identity, query, query_ok, update_ok, Cost, EmbeddedVideo, Wasms,
};
use crate::error::{Error, Result};
use crate::fmt;
use crate::upload::{self, ChunkSource, FileSource, UploadOptions, CHUNK_SIZE};

pub struct DemoOptions {
    pub file: Option<PathBuf>,
    /// Serve the HTTP gateway at the end and wait for Ctrl-C.
    pub serve: bool,
    pub port: u16,
    /// Seconds of generated video when no file is given.
    pub seconds: u32,
}

const STEPS: u32 = 9;

struct Steps {
    n: u32,
}

impl Steps {
    fn next(&mut self, title: &str) {
        self.n += 1;
        println!("\n[{}/{STEPS}] {title}", self.n);
    }
}

fn cost_line(cost: Cost) {
    println!("      cost: {cost}");
}

pub fn run(opts: DemoOptions) -> Result<()> {
    // Check everything the user can get wrong before doing slow work: the file first (the
    // user's own mistake), then what the machine lacks.
    if let Some(p) = &opts.file {
        let source = FileSource::open(p).map_err(|e| Error::from_open(p, e))?;
        if source.size() == 0 {
            return Err(Error::EmptyFile(p.clone()));
        }
    }
    let wasms = Wasms::load()?;
    let tmp;
    let (path, generated) = match &opts.file {
        Some(p) => (p.clone(), false),
        None => {
            if !crate::video_gen::ffmpeg_available() {
                return Err(Error::FfmpegMissing);
            }
            tmp =
                tempfile::tempdir().map_err(|e| Error::io("creating a temporary directory", e))?;
            (tmp.path().join("canvid-demo.mp4"), true)
        }
    };
    let mut steps = Steps { n: 0 };

    steps.next("Video file");
    if generated {
        let t = Instant::now();
        crate::video_gen::generate(&path, opts.seconds, "6M")?;
        println!(
            "      generated {} s of H.264/AAC test video with ffmpeg in {:.1} s",
            opts.seconds,
            t.elapsed().as_secs_f64()
        );
    }
    let source = FileSource::open(&path).map_err(|e| Error::from_open(&path, e))?;
    if source.size() == 0 {
        return Err(Error::EmptyFile(path));
    }
    let mime = crate::video_gen::mime_type(&path);
    println!(
        "      {} ({}, {}, {} chunk(s) of up to {})",
        path.display(),
        fmt::bytes(source.size()),
        mime,
        upload::chunk_count(source.size(), CHUNK_SIZE),
        fmt::bytes(CHUNK_SIZE)
    );

    steps.next("Start the embedded replica and deploy the index and spawn canisters");
    let replica = Arc::new(Replica::new());
    let admin = demo_identity("admin");
    let t = Instant::now();
    let d = embedded::deploy(replica.clone(), &wasms, admin)?;
    println!("      wasm from {}", wasms.dir.display());
    println!(
        "      index  {} (registrar: spawn)   install: {}",
        d.index,
        Cost::of(d.index_install)
    );
    println!(
        "      spawn  {} (holds the video wasm, {} gzipped)   install: {}",
        d.spawn,
        fmt::bytes(d.video_wasm_size as u64),
        Cost::of(d.spawn_install)
    );
    println!(
        "      pool: {}; deployed in {:.2} s",
        fmt::cycles(replica.cycle_balance(d.spawn)),
        t.elapsed().as_secs_f64()
    );

    let alice = demo_identity("alice");
    let bob = demo_identity("bob");
    println!("      creator identity alice = {alice}");
    println!("      second identity  bob   = {bob}");

    steps.next("create_video (spawn canister creates and installs a video canister)");
    let title = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "video".into());
    let pool_before = replica.cycle_balance(d.spawn);
    let args = CreateVideoArgs {
        title: title.clone(),
        description: "uploaded by canvid demo".into(),
        tags: vec!["demo".into()],
        declared_size: source.size(),
        owner: None,
    };
    let (created, stats): (CreatedVideo, _) =
        update_ok(&replica, d.spawn, alice, "create_video", (args,))?;
    let video = created.canister_id;
    println!(
        "      video canister {video} (indexed: {})",
        created.indexed
    );
    println!(
        "      cycles given to it: {}; spawn pool paid {}",
        fmt::cycles(created.cycles_given),
        fmt::cycles(pool_before.saturating_sub(replica.cycle_balance(d.spawn)))
    );
    println!(
        "      controllers: {}",
        join(&replica.get_controllers(video))
    );
    cost_line(Cost::of(stats));

    steps.next("Upload (begin_upload, put_chunk ..., finish_upload)");
    let client = EmbeddedVideo::new(&replica, video, alice, mime);
    let video_cycles_before = replica.cycle_balance(video);
    let bar = crate::progress::BarProgress::new(source.size());
    let t = Instant::now();
    let plan = upload::plan(&source, CHUNK_SIZE, &bar)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let hash_secs = t.elapsed().as_secs_f64();
    println!(
        "      SHA-256 of {} chunk(s) in {:.2} s ({})",
        plan.chunk_count(),
        hash_secs,
        fmt::rate(plan.size, hash_secs)
    );
    // The embedded replica runs one message at a time: more puts in flight would not overlap.
    let options = UploadOptions {
        concurrency: 1,
        ..UploadOptions::default()
    };
    let t = Instant::now();
    let report = futures::executor::block_on(upload::upload_planned(
        &client, &source, plan, &options, &bar,
    ))
    .map_err(|e| Error::Upload(e.to_string()))?;
    drop(bar);
    let secs = t.elapsed().as_secs_f64();
    println!(
        "      sent {} chunk(s), {} in {:.2} s ({}), {} retries",
        report.chunks_sent,
        fmt::bytes(report.bytes_sent),
        secs,
        fmt::rate(report.bytes_sent, secs),
        report.retries
    );
    let upload_cost = client.total_cost();
    cost_line(upload_cost);
    println!(
        "      video canister balance: {} -> {}",
        fmt::cycles(video_cycles_before),
        fmt::cycles(replica.cycle_balance(video))
    );

    steps.next("Verify the digest");
    let (meta, stats): (VideoMetadata, _) =
        query(&replica, video, Principal::anonymous(), "metadata", ())?;
    let expected = report.plan.file_digest;
    let actual = meta.digest.as_ref().map(|d| d.to_vec()).unwrap_or_default();
    println!("      definition: SHA-256 over the concatenated SHA-256 digests of the chunks");
    println!("      local     {}", hex::encode(expected));
    println!("      canister  {}", hex::encode(&actual));
    if meta.status != VideoStatus::Ready || actual != expected {
        return Err(Error::Verify(format!(
            "the canister reports status {:?} and digest {}, expected Ready and {}",
            meta.status,
            hex::encode(&actual),
            hex::encode(expected)
        )));
    }
    println!(
        "      status Ready, {} bytes, {}",
        meta.size, meta.mime_type
    );
    println!(
        "      cost: {} instructions (embedded), query: free",
        fmt::count(stats.instructions as u128)
    );

    steps.next("Read it back (read_range queries, anonymous caller)");
    let t = Instant::now();
    let read_cost = read_back(&replica, video, &source)?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "      {} read back byte-exact in {:.2} s ({})",
        fmt::bytes(source.size()),
        secs,
        fmt::rate(source.size(), secs)
    );
    println!(
        "      cost: {} queries, {} instructions (embedded), free",
        read_cost.calls,
        fmt::count(read_cost.instructions as u128)
    );

    steps.next("List the creator's videos from the index");
    let by_creator = list(&replica, d.index, "videos_by_creator", alice)?;
    print_entries(&by_creator);
    if !by_creator.videos.iter().any(|e| e.video == video) {
        return Err(Error::Verify(format!(
            "the index does not list {video} for its creator {alice}"
        )));
    }

    steps.next("Transfer ownership to bob (change_owner)");
    let (moved, stats): (ChangeOwnerResult, _) = update_ok(
        &replica,
        video,
        alice,
        "change_owner",
        (ChangeOwnerArgs {
            new_owner: bob,
            keep_controllers: None,
        },),
    )?;
    if !moved.index_notified {
        // The notification waits in the video's outbox for its retry timer: let time pass and
        // the replica run the timer, as it would on the IC.
        println!("      index notification queued; running the retry timer");
        replica.advance_time(std::time::Duration::from_secs(60));
        replica.run_until_idle();
    }
    println!(
        "      transfer #{}; controllers now {}; index notified in the call: {}",
        moved.transfer_seq,
        join(&moved.controllers),
        moved.index_notified
    );
    cost_line(Cost::of(stats));
    let (meta, _): (VideoMetadata, _) =
        query(&replica, video, Principal::anonymous(), "metadata", ())?;
    if meta.owner != bob || meta.creator != alice {
        return Err(Error::Verify(format!(
            "after the transfer the video reports owner {} and creator {}",
            meta.owner, meta.creator
        )));
    }
    println!(
        "      video metadata: owner {}, creator {} (unchanged)",
        short(bob),
        short(alice)
    );

    steps.next("The index follows the new owner");
    let bob_owns = list(&replica, d.index, "videos_by_owner", bob)?;
    let alice_owns = list(&replica, d.index, "videos_by_owner", alice)?;
    let alice_created = list(&replica, d.index, "videos_by_creator", alice)?;
    println!("      videos_by_owner(bob):     {}", bob_owns.videos.len());
    print_entries(&bob_owns);
    println!(
        "      videos_by_owner(alice):   {}",
        alice_owns.videos.len()
    );
    println!(
        "      videos_by_creator(alice): {}",
        alice_created.videos.len()
    );
    let follows = bob_owns
        .videos
        .iter()
        .any(|e| e.video == video && e.owner == bob)
        && !alice_owns.videos.iter().any(|e| e.video == video)
        && alice_created.videos.iter().any(|e| e.video == video);
    if !follows {
        return Err(Error::Verify(
            "the index did not follow the ownership transfer".into(),
        ));
    }

    println!(
        "\nDone: {} uploaded, verified, read back and transferred.",
        fmt::bytes(source.size())
    );
    println!("  upload cost: {}", upload_cost);
    println!(
        "  spawn pool: {} left; video canister: {}",
        fmt::cycles(replica.cycle_balance(d.spawn)),
        fmt::cycles(replica.cycle_balance(video))
    );

    if opts.serve {
        crate::serve::serve_until_ctrl_c(&replica, opts.port, &[video])?;
    }
    Ok(())
}

/// Reads the whole video back with `read_range` and compares it with `source`, chunk by chunk.
pub fn read_back(replica: &Replica, video: Principal, source: &impl ChunkSource) -> Result<Cost> {
    let mut cost = Cost::default();
    let size = source.size();
    let mut offset = 0u64;
    while offset < size {
        let length = CHUNK_SIZE.min(size - offset);
        let (bytes, stats): (ByteBuf, _) = query_ok(
            replica,
            video,
            Principal::anonymous(),
            "read_range",
            (RangeArgs {
                path: None,
                offset,
                length,
            },),
        )?;
        cost.add(stats);
        let want = source
            .read(offset..offset + length)
            .map_err(|e| Error::io("reading the file again", e))?;
        if bytes.as_slice() != want.as_slice() {
            let at = bytes
                .iter()
                .zip(&want)
                .position(|(a, b)| a != b)
                .unwrap_or(bytes.len().min(want.len()));
            return Err(Error::Verify(format!(
                "bytes read back differ from the file at offset {} ({} bytes asked, {} returned)",
                offset + at as u64,
                length,
                bytes.len()
            )));
        }
        offset += length;
    }
    Ok(cost)
}

fn list(replica: &Replica, index: Principal, method: &str, who: Principal) -> Result<Page> {
    let (page, _): (Page, _) = query(
        replica,
        index,
        Principal::anonymous(),
        method,
        (ListArgs {
            principal: who,
            cursor: None,
            limit: None,
        },),
    )?;
    Ok(page)
}

fn print_entries(page: &Page) {
    for e in &page.videos {
        println!(
            "      - {}  creator {}  owner {}  transfers {}",
            e.video,
            short(e.creator),
            short(e.owner),
            e.transfer_seq
        );
    }
}

fn short(p: Principal) -> String {
    let s = p.to_text();
    match s.split_once('-') {
        Some((head, _)) => format!("{head}-…"),
        None => s,
    }
}

fn join(ps: &[Principal]) -> String {
    ps.iter().map(|p| short(*p)).collect::<Vec<_>>().join(", ")
}
