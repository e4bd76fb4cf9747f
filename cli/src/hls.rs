//! Producing an HLS ladder from a source video with ffmpeg/ffprobe (`canvid hls prepare`,
//! `canvid upload --hls`), and reading a prepared tree back as the set of named files a video
//! canister stores.
//!
//! ## Layout (a contract with the SDK and the browser player; docs/streaming.md)
//! ```text
//! hls/master.m3u8
//! hls/<rung>/index.m3u8   hls/<rung>/init.mp4   hls/<rung>/seg-00000.m4s ...
//! hls/subs/<lang>.m3u8    subs/<lang>.vtt
//! ```
//! Each path in the tree is the file's HTTP path in the canister (`/hls/master.m3u8`, ...), so
//! the playlists' relative URLs resolve to the stored files with no rewriting.
//!
//! ## Why every file is at most [`MAX_FILE_BYTES`]
//! A browser fetches a segment with a plain GET; the canister answers an `http_request` query in
//! one piece of at most ~2 MB (a query answer's limit), so a larger segment could not be served
//! to a player. The ladder caps each rung's peak bitrate (`-maxrate`/`-bufsize`, the VBV) and
//! picks a segment duration for which the VBV bound `(maxrate + audio) * duration + bufsize`
//! fits with a margin; after transcoding every file is measured, and a ladder that still has an
//! oversized file is cut again with shorter segments, or refused ([`HlsError::FileTooLarge`]).
//!
//! ## Why keyframes are forced on a time grid
//! A player switching rungs mid-stream continues with the next segment of another rung; that
//! only plays cleanly when segment `n` of every rung starts at the same instant with a keyframe.
//! Every rung is encoded with keyframes forced at multiples of the segment duration, a GOP of
//! exactly that length and no scene-cut keyframes (`-sc_threshold 0`), so the segmenter cuts
//! every rung at the same times.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use canvid_types::files::Rendition;

/// Largest file (segment, playlist, subtitle, image) in a prepared tree: one HTTP answer.
pub const MAX_FILE_BYTES: u64 = 2_000_000;
/// Longest segment: Apple's recommended 6 s; longer segments only slow down rung switches.
pub const MAX_SEGMENT_SECONDS: u32 = 6;
/// Fraction of [`MAX_FILE_BYTES`] the VBV bound may use: room for fMP4 boxes (moof/mdat) and
/// x264's VBV being a model, not a hard guarantee.
const SIZE_MARGIN: f64 = 0.85;

/// One rung of the ladder this module can produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RungSpec {
    /// Output height in pixels (the rung is named `<height>p`).
    pub height: u32,
    /// Video peak bitrate (x264 `-maxrate`), bits per second.
    pub max_video_bps: u64,
    /// VBV buffer (x264 `-bufsize`), bits: half a second at the peak rate, so the bursts a
    /// segment can hold beyond `maxrate * duration` stay small.
    pub bufsize_bits: u64,
    /// AAC bitrate, bits per second.
    pub audio_bps: u64,
}

/// The standard ladder, highest first (docs/streaming.md, "Producing renditions").
pub const LADDER: [RungSpec; 5] = [
    RungSpec {
        height: 1080,
        max_video_bps: 4_000_000,
        bufsize_bits: 2_000_000,
        audio_bps: 128_000,
    },
    RungSpec {
        height: 720,
        max_video_bps: 2_500_000,
        bufsize_bits: 1_250_000,
        audio_bps: 128_000,
    },
    RungSpec {
        height: 480,
        max_video_bps: 1_200_000,
        bufsize_bits: 600_000,
        audio_bps: 96_000,
    },
    RungSpec {
        height: 360,
        max_video_bps: 700_000,
        bufsize_bits: 350_000,
        audio_bps: 96_000,
    },
    RungSpec {
        height: 240,
        max_video_bps: 400_000,
        bufsize_bits: 200_000,
        audio_bps: 64_000,
    },
];

/// A rung chosen for a particular source: its spec and output size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rung {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub spec: RungSpec,
}

/// What ffprobe says about the source.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceInfo {
    pub width: u32,
    pub height: u32,
    /// Frames per second (the average frame rate).
    pub fps: f64,
    pub duration_s: f64,
    pub has_audio: bool,
    pub subtitles: Vec<SubtitleStream>,
}

/// A subtitle stream of the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubtitleStream {
    /// Index among the source's subtitle streams (ffmpeg's `0:s:N`).
    pub index: usize,
    pub codec: String,
    /// The stream's language tag (`und` when it has none).
    pub language: String,
}

impl SubtitleStream {
    /// Text subtitles convert to WebVTT; bitmap ones (DVD, PGS, DVB) cannot.
    pub fn is_text(&self) -> bool {
        matches!(
            self.codec.as_str(),
            "mov_text" | "subrip" | "srt" | "ass" | "ssa" | "webvtt" | "text"
        )
    }
}

#[derive(Debug)]
pub enum HlsError {
    /// ffmpeg or ffprobe cannot be run.
    ToolMissing(&'static str),
    /// ffmpeg/ffprobe ran and failed.
    Tool {
        tool: &'static str,
        what: String,
        stderr: String,
    },
    /// The source is not a video ffprobe can read, or has no video stream.
    NotAVideo {
        path: PathBuf,
        reason: String,
    },
    /// A bad `--subtitles` argument or subtitle file.
    Subtitles(String),
    /// A file of the ladder is larger than one HTTP answer (`why`: after what).
    FileTooLarge {
        path: String,
        size: u64,
        limit: u64,
        why: &'static str,
    },
    /// A prepared directory that is not a ladder this module can upload.
    BadTree {
        dir: PathBuf,
        reason: String,
    },
    Io {
        what: String,
        error: std::io::Error,
    },
}

impl fmt::Display for HlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HlsError::ToolMissing(tool) => write!(
                f,
                "{tool} is not installed, so no HLS ladder can be produced: run scripts/setup.sh \
                 (or apt-get install ffmpeg)"
            ),
            HlsError::Tool { tool, what, stderr } => {
                write!(
                    f,
                    "{tool} failed {what}: {}",
                    crate::error::one_line(stderr)
                )
            }
            HlsError::NotAVideo { path, reason } => write!(
                f,
                "{} is not a video ffprobe can read ({reason}): an HLS ladder needs one",
                path.display()
            ),
            HlsError::Subtitles(reason) => write!(f, "subtitles: {reason}"),
            HlsError::FileTooLarge {
                path,
                size,
                limit,
                why,
            } => write!(
                f,
                "{path} is {size} bytes, more than the {limit} bytes one HTTP answer of the \
                 canister can hold ({why})"
            ),
            HlsError::BadTree { dir, reason } => write!(
                f,
                "{} is not a prepared HLS tree ({reason}): run `canvid hls prepare SOURCE DIR`",
                dir.display()
            ),
            HlsError::Io { what, error } => write!(f, "{what}: {error}"),
        }
    }
}

impl std::error::Error for HlsError {}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> HlsError {
    let what = what.into();
    move |error| HlsError::Io { what, error }
}

pub type Result<T> = std::result::Result<T, HlsError>;

// ------------------------------------------------------------------ ladder arithmetic

/// The rungs for a source of `width` x `height`: every rung of [`LADDER`] not taller than the
/// source (never upscale), each keeping the source's aspect ratio with even dimensions (H.264 in
/// 4:2:0 needs them). A source shorter than the smallest rung gets one rung at its own size.
pub fn select_rungs(width: u32, height: u32) -> Vec<Rung> {
    // Nearest even number (H.264 in 4:2:0 needs even sizes): 853.3 -> 854, the usual 480p.
    let even = |v: f64| (((v / 2.0).round() as u32) * 2).max(2);
    let mut rungs: Vec<Rung> = LADDER
        .iter()
        .filter(|r| r.height <= height)
        .map(|spec| {
            let w = f64::from(width) * f64::from(spec.height) / f64::from(height);
            Rung {
                name: format!("{}p", spec.height),
                width: even(w),
                height: spec.height,
                spec: *spec,
            }
        })
        .collect();
    if rungs.is_empty() {
        // Even sizes at most the source's: round down, not to nearest, so nothing upscales.
        let down = |v: u32| (v & !1).max(2);
        let h = down(height);
        rungs.push(Rung {
            name: format!("{h}p"),
            width: down(width),
            height: h,
            spec: LADDER[LADDER.len() - 1],
        });
    }
    rungs
}

/// Whole seconds per segment such that a segment of `spec` fits [`MAX_FILE_BYTES`] with the
/// margin: the VBV allows at most `maxrate * d + bufsize` video bits in `d` seconds, plus the
/// audio. Between 1 and [`MAX_SEGMENT_SECONDS`].
pub fn segment_seconds(spec: &RungSpec) -> u32 {
    let budget = MAX_FILE_BYTES as f64 * 8.0 * SIZE_MARGIN - spec.bufsize_bits as f64;
    let d = budget / (spec.max_video_bps + spec.audio_bps) as f64;
    (d.floor() as u32).clamp(1, MAX_SEGMENT_SECONDS)
}

/// One segment duration for the whole ladder (so segment `n` starts at the same time in every
/// rung): the shortest any rung needs.
pub fn ladder_segment_seconds(rungs: &[Rung]) -> u32 {
    rungs
        .iter()
        .map(|r| segment_seconds(&r.spec))
        .min()
        .unwrap_or(MAX_SEGMENT_SECONDS)
}

// ------------------------------------------------------------------ playlists

/// What the master playlist says about one rung, from the files produced.
#[derive(Clone, Debug, PartialEq)]
pub struct VariantInfo {
    pub name: String,
    pub width: u32,
    pub height: u32,
    /// Peak segment bitrate (bits/s): the HLS `BANDWIDTH`.
    pub peak_bps: u64,
    /// Mean bitrate over the whole rung: `AVERAGE-BANDWIDTH`.
    pub average_bps: u64,
    /// RFC 6381, e.g. `avc1.640028,mp4a.40.2`.
    pub codecs: String,
    pub fps: f64,
}

/// A subtitle track of the ladder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubtitleTrack {
    /// Path segment and `LANGUAGE` (`en`, `fr-CA`, `und`).
    pub lang: String,
    /// Display `NAME`.
    pub name: String,
}

/// `hls/master.m3u8`: one `EXT-X-STREAM-INF` per rung (highest first), and the subtitle group.
pub fn master_playlist(variants: &[VariantInfo], subtitles: &[SubtitleTrack]) -> String {
    let mut m = String::from("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for (i, s) in subtitles.iter().enumerate() {
        // The first track is the default one a player may pick; none is forced.
        let default = if i == 0 { "YES" } else { "NO" };
        m.push_str(&format!(
            "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"{}\",LANGUAGE=\"{}\",\
             DEFAULT={default},AUTOSELECT=YES,FORCED=NO,URI=\"subs/{}.m3u8\"\n",
            s.name.replace('"', "'"),
            s.lang,
            s.lang
        ));
    }
    for v in variants {
        m.push_str(&format!(
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},RESOLUTION={}x{},\
             CODECS=\"{}\",FRAME-RATE={:.3}",
            v.peak_bps, v.average_bps, v.width, v.height, v.codecs, v.fps
        ));
        if !subtitles.is_empty() {
            m.push_str(",SUBTITLES=\"subs\"");
        }
        m.push_str(&format!("\n{}/index.m3u8\n", v.name));
    }
    m
}

/// `hls/subs/<lang>.m3u8`: one segment, the whole WebVTT file (`/subs/<lang>.vtt`).
pub fn subtitle_playlist(lang: &str, duration_s: f64) -> String {
    let target = duration_s.ceil().max(1.0) as u64;
    format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:0\n\
         #EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:{duration_s:.3},\n../../subs/{lang}.vtt\n#EXT-X-ENDLIST\n"
    )
}

/// The segments of a media playlist: (duration in seconds, URI), in order.
pub fn media_segments(playlist: &str) -> Vec<(f64, String)> {
    let mut out = Vec::new();
    let mut pending = None;
    for line in playlist.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("#EXTINF:") {
            pending = rest.split(',').next().and_then(|d| d.trim().parse().ok());
        } else if !line.is_empty() && !line.starts_with('#') {
            if let Some(d) = pending.take() {
                out.push((d, line.to_string()));
            }
        }
    }
    out
}

/// Peak and average bitrate of a rung from its segments' (duration, bytes), as RFC 8216
/// defines `BANDWIDTH` (the peak segment bit rate, over every segment: a short last segment
/// that starts with a keyframe raises it, which only makes players choose more cautiously) and
/// `AVERAGE-BANDWIDTH`.
pub fn bitrates(segments: &[(f64, u64)]) -> (u64, u64) {
    let total_s: f64 = segments.iter().map(|s| s.0).sum();
    let total_b: u64 = segments.iter().map(|s| s.1).sum();
    let average = if total_s > 0.0 {
        (total_b as f64 * 8.0 / total_s).ceil() as u64
    } else {
        0
    };
    let peak = segments
        .iter()
        .map(|(d, b)| (*b as f64 * 8.0 / d.max(0.001)).ceil() as u64)
        .max()
        .unwrap_or(average)
        .max(average);
    (peak.max(1), average.max(1))
}

/// RFC 6381 codec of an H.264 stream from ffprobe's profile name and level (e.g. "High", 40).
pub fn avc_codec(profile: &str, level: i64) -> String {
    let (profile_idc, constraints) = match profile {
        "Baseline" => (0x42, 0x00),
        "Constrained Baseline" => (0x42, 0xe0),
        "Main" => (0x4d, 0x40),
        "High 10" => (0x6e, 0x00),
        "High 4:2:2" => (0x7a, 0x00),
        _ => (0x64, 0x00),
    };
    let level = if (1..=0xff).contains(&level) {
        level
    } else {
        40
    };
    format!("avc1.{profile_idc:02x}{constraints:02x}{level:02x}")
}

/// A language tag usable as a path segment: ASCII letters, digits and `-`, at most 35 bytes;
/// `und` when nothing is left.
pub fn sanitize_lang(lang: &str) -> String {
    let s: String = lang
        .trim()
        .chars()
        .map(|c| if c == '_' { '-' } else { c })
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(35)
        .collect();
    let s = s.trim_matches('-').to_string();
    if s.is_empty() {
        "und".into()
    } else {
        s
    }
}

/// Parses a `--subtitles LANG=PATH` argument.
pub fn parse_subtitle_arg(arg: &str) -> Result<(String, PathBuf)> {
    let (lang, path) = arg.split_once('=').ok_or_else(|| {
        HlsError::Subtitles(format!(
            "'{arg}' is not LANG=PATH (e.g. en=subs.vtt or fr=subs.srt)"
        ))
    })?;
    let clean = sanitize_lang(lang);
    if lang.is_empty() || clean != lang {
        return Err(HlsError::Subtitles(format!(
            "language '{lang}' in '{arg}': use letters, digits and - only (e.g. en, pt-BR)"
        )));
    }
    let ext = Path::new(path)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    if !matches!(ext.as_deref(), Some("vtt" | "srt")) {
        return Err(HlsError::Subtitles(format!(
            "{path}: expected a .vtt or .srt file"
        )));
    }
    Ok((clean, PathBuf::from(path)))
}

// ------------------------------------------------------------------ running the tools

fn run_tool(tool: &'static str, what: &str, cmd: &mut Command) -> Result<Vec<u8>> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => HlsError::ToolMissing(tool),
            _ => HlsError::Tool {
                tool,
                what: what.into(),
                stderr: e.to_string(),
            },
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        // ffmpeg's last line says why; the first ones are often warnings.
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no output")
            .to_string();
        return Err(HlsError::Tool {
            tool,
            what: what.into(),
            stderr: last,
        });
    }
    Ok(out.stdout)
}

fn ffmpeg() -> Command {
    let mut c = Command::new("ffmpeg");
    c.args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"]);
    c
}

fn ffprobe_json(path: &Path, extra: &[&str]) -> Result<serde_json::Value> {
    let out = run_tool(
        "ffprobe",
        &format!("reading {}", path.display()),
        Command::new("ffprobe")
            .args(["-v", "error", "-print_format", "json"])
            .args(extra)
            .arg(path),
    )?;
    serde_json::from_slice(&out).map_err(|e| HlsError::Tool {
        tool: "ffprobe",
        what: format!("reading {}", path.display()),
        stderr: format!("unexpected output: {e}"),
    })
}

fn parse_rate(r: &str) -> Option<f64> {
    let (n, d) = r.split_once('/').unwrap_or((r, "1"));
    let (n, d): (f64, f64) = (n.parse().ok()?, d.parse().ok()?);
    (n > 0.0 && d > 0.0).then(|| n / d)
}

/// Probes the source: video size and rate, duration, audio, subtitle streams.
pub fn probe(source: &Path) -> Result<SourceInfo> {
    let not_a_video = |reason: String| HlsError::NotAVideo {
        path: source.into(),
        reason,
    };
    let v = ffprobe_json(source, &["-show_streams", "-show_format"]).map_err(|e| match e {
        HlsError::Tool { stderr, .. } => not_a_video(crate::error::one_line(&stderr)),
        other => other,
    })?;
    let streams = v["streams"].as_array().cloned().unwrap_or_default();
    let video = streams
        .iter()
        .find(|s| {
            s["codec_type"] == "video"
                // A cover picture (MP3 art, MP4 thumbnail) is a "video" stream of one frame.
                && s["disposition"]["attached_pic"].as_i64() != Some(1)
        })
        .ok_or_else(|| not_a_video("no video stream".into()))?;
    let width = video["width"].as_u64().unwrap_or(0) as u32;
    let height = video["height"].as_u64().unwrap_or(0) as u32;
    if width == 0 || height == 0 {
        return Err(not_a_video("the video stream has no size".into()));
    }
    let fps = video["avg_frame_rate"]
        .as_str()
        .and_then(parse_rate)
        .or_else(|| video["r_frame_rate"].as_str().and_then(parse_rate))
        .unwrap_or(30.0);
    let duration_s = v["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .or_else(|| video["duration"].as_str().and_then(|d| d.parse().ok()))
        .unwrap_or(0.0);
    let has_audio = streams.iter().any(|s| s["codec_type"] == "audio");
    let subtitles = streams
        .iter()
        .filter(|s| s["codec_type"] == "subtitle")
        .enumerate()
        .map(|(index, s)| SubtitleStream {
            index,
            codec: s["codec_name"].as_str().unwrap_or("").to_string(),
            language: s["tags"]["language"].as_str().unwrap_or("und").to_string(),
        })
        .collect();
    Ok(SourceInfo {
        width,
        height,
        fps,
        duration_s,
        has_audio,
        subtitles,
    })
}

/// Options of [`prepare`].
#[derive(Clone, Debug, Default)]
pub struct PrepareOptions {
    /// External subtitle files: (language, .vtt or .srt path).
    pub subtitles: Vec<(String, PathBuf)>,
    /// x264 preset (default `veryfast`).
    pub preset: Option<String>,
    /// Force this segment duration (seconds) instead of the computed one (tests, experiments);
    /// the size check still applies.
    pub segment_seconds: Option<u32>,
    /// Also write `/thumbs/sprite.jpg` + `/thumbs/thumbs.vtt`.
    pub thumbnails: bool,
    /// A lower size limit than [`MAX_FILE_BYTES`] for every file (a gateway with smaller
    /// answers; the tests, to make the re-cut happen on a tiny video).
    pub max_file_bytes: Option<u64>,
}

/// A file of a prepared tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeFile {
    /// HTTP path in the canister (`/hls/720p/seg-00000.m4s`).
    pub path: String,
    pub local: PathBuf,
    pub size: u64,
    pub mime_type: &'static str,
    /// Set on each rung's `index.m3u8`.
    pub rendition: Option<Rendition>,
}

/// What [`prepare`] made.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub source: SourceInfo,
    pub segment_seconds: u32,
    pub variants: Vec<VariantInfo>,
    pub subtitles: Vec<SubtitleTrack>,
    pub files: Vec<TreeFile>,
}

/// Transcodes `source` into the ladder under `out` (which is created; files of an earlier
/// ladder in it are replaced). Reports each step on `log`.
pub fn prepare(
    source: &Path,
    out: &Path,
    opts: &PrepareOptions,
    log: &dyn Fn(&str),
) -> Result<Prepared> {
    let info = probe(source)?;
    let limit = opts
        .max_file_bytes
        .unwrap_or(MAX_FILE_BYTES)
        .min(MAX_FILE_BYTES);
    let rungs = select_rungs(info.width, info.height);
    let mut seconds = opts
        .segment_seconds
        .unwrap_or_else(|| ladder_segment_seconds(&rungs))
        .clamp(1, MAX_SEGMENT_SECONDS);
    log(&format!(
        "source {}x{} {:.3} fps {:.1} s{}, {} subtitle stream(s); rungs {}; {seconds} s segments",
        info.width,
        info.height,
        info.fps,
        info.duration_s,
        if info.has_audio { " with audio" } else { "" },
        info.subtitles.len(),
        rungs
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    ));
    let hls = out.join("hls");
    // A thumbnail track of an earlier run must not outlive it (hls/ and subs/ are rewritten).
    let thumbs = out.join("thumbs");
    if thumbs.exists() {
        std::fs::remove_dir_all(&thumbs)
            .map_err(io_err(format!("clearing {}", thumbs.display())))?;
    }
    let variants = loop {
        if hls.exists() {
            std::fs::remove_dir_all(&hls).map_err(io_err(format!("clearing {}", hls.display())))?;
        }
        let mut variants = Vec::new();
        for rung in &rungs {
            log(&format!(
                "encoding {} ({}x{}, ≤{} kbit/s video)",
                rung.name,
                rung.width,
                rung.height,
                rung.spec.max_video_bps / 1000
            ));
            variants.push(encode_rung(source, &info, rung, seconds, &hls, opts)?);
        }
        match oversized(out, limit)? {
            None => break variants,
            Some((path, size)) if seconds > 1 => {
                let shorter = seconds - 1;
                log(&format!(
                    "{path} is {size} bytes (> {limit}): cutting again with {shorter} s segments"
                ));
                seconds = shorter;
            }
            Some((path, size)) => {
                return Err(HlsError::FileTooLarge {
                    path,
                    size,
                    limit,
                    why: "even with 1-second segments; lower the rung caps",
                })
            }
        }
    };

    let subtitles = write_subtitles(source, &info, out, opts)?;
    let master = master_playlist(&variants, &subtitles);
    std::fs::write(hls.join("master.m3u8"), master).map_err(io_err(format!(
        "writing {}",
        hls.join("master.m3u8").display()
    )))?;
    if opts.thumbnails {
        write_thumbnails(source, &info, out)?;
    }
    if let Some((path, size)) = oversized(out, limit)? {
        return Err(HlsError::FileTooLarge {
            path,
            size,
            limit,
            why: "a subtitle or thumbnail file: split it or leave it out",
        });
    }
    let files = scan(out)?;
    Ok(Prepared {
        source: info,
        segment_seconds: seconds,
        variants,
        subtitles,
        files,
    })
}

/// The first file in the tree larger than `limit`, if any.
fn oversized(out: &Path, limit: u64) -> Result<Option<(String, u64)>> {
    Ok(tree_entries(out)?
        .into_iter()
        .find(|(_, _, size)| *size > limit)
        .map(|(path, _, size)| (path, size)))
}

fn encode_rung(
    source: &Path,
    info: &SourceInfo,
    rung: &Rung,
    seconds: u32,
    hls: &Path,
    opts: &PrepareOptions,
) -> Result<VariantInfo> {
    let dir = hls.join(&rung.name);
    std::fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
    let gop = ((info.fps * f64::from(seconds)).round() as u64).max(1);
    let spec = rung.spec;
    let mut cmd = ffmpeg();
    cmd.arg("-i").arg(source);
    cmd.args(["-map", "0:v:0"]);
    if info.has_audio {
        cmd.args(["-map", "0:a:0"]);
    }
    cmd.args([
        "-vf",
        &format!("scale={}:{}", rung.width, rung.height),
        "-c:v",
        "libx264",
        "-preset",
        opts.preset.as_deref().unwrap_or("veryfast"),
        "-profile:v",
        "high",
        "-pix_fmt",
        "yuv420p",
        // Quality-targeted (CRF) under a peak cap: simple scenes take less than the cap.
        "-crf",
        "21",
        "-maxrate",
        &spec.max_video_bps.to_string(),
        "-bufsize",
        &spec.bufsize_bits.to_string(),
        "-g",
        &gop.to_string(),
        "-keyint_min",
        &gop.to_string(),
        "-sc_threshold",
        "0",
        "-force_key_frames",
        &format!("expr:gte(t,n_forced*{seconds})"),
    ]);
    if info.has_audio {
        cmd.args([
            "-c:a",
            "aac",
            "-b:a",
            &spec.audio_bps.to_string(),
            "-ac",
            "2",
        ]);
    }
    cmd.args([
        "-sn",
        "-f",
        "hls",
        "-hls_time",
        &seconds.to_string(),
        "-hls_playlist_type",
        "vod",
        "-hls_segment_type",
        "fmp4",
        "-hls_flags",
        "independent_segments",
        "-hls_fmp4_init_filename",
        "init.mp4",
        "-hls_segment_filename",
    ]);
    cmd.arg(dir.join("seg-%05d.m4s"))
        .arg(dir.join("index.m3u8"));
    run_tool(
        "ffmpeg",
        &format!("encoding the {} rung", rung.name),
        &mut cmd,
    )?;

    let playlist = std::fs::read_to_string(dir.join("index.m3u8")).map_err(io_err(format!(
        "reading {}",
        dir.join("index.m3u8").display()
    )))?;
    let mut measured = Vec::new();
    for (d, uri) in media_segments(&playlist) {
        let size = std::fs::metadata(dir.join(&uri))
            .map_err(io_err(format!("reading {}", dir.join(&uri).display())))?
            .len();
        measured.push((d, size));
    }
    if measured.is_empty() {
        return Err(HlsError::Tool {
            tool: "ffmpeg",
            what: format!("encoding the {} rung", rung.name),
            stderr: "the playlist lists no segment".into(),
        });
    }
    let (peak_bps, average_bps) = bitrates(&measured);
    let video_codec = h264_codec_of(&dir)?;
    let codecs = if info.has_audio {
        format!("{video_codec},mp4a.40.2")
    } else {
        video_codec
    };
    Ok(VariantInfo {
        name: rung.name.clone(),
        width: rung.width,
        height: rung.height,
        peak_bps,
        average_bps,
        codecs,
        fps: info.fps,
    })
}

/// The `avc1.PPCCLL` of a rung, from ffprobe of its init segment followed by its first media
/// segment (the init segment alone has no frames, and ffprobe reports no level for it).
fn h264_codec_of(dir: &Path) -> Result<String> {
    let mut bytes = std::fs::read(dir.join("init.mp4")).map_err(io_err(format!(
        "reading {}",
        dir.join("init.mp4").display()
    )))?;
    bytes.extend(
        std::fs::read(dir.join("seg-00000.m4s")).map_err(io_err(format!(
            "reading {}",
            dir.join("seg-00000.m4s").display()
        )))?,
    );
    let tmp = dir.join(".probe.mp4");
    std::fs::write(&tmp, bytes).map_err(io_err(format!("writing {}", tmp.display())))?;
    let probed = ffprobe_json(&tmp, &["-show_streams", "-select_streams", "v:0"]);
    let _ = std::fs::remove_file(&tmp);
    let v = probed?;
    let s = &v["streams"][0];
    Ok(avc_codec(
        s["profile"].as_str().unwrap_or("High"),
        s["level"].as_i64().unwrap_or(40),
    ))
}

/// Converts the source's text subtitle streams and the external files to WebVTT under `subs/`,
/// with their playlists under `hls/subs/`. Bitmap subtitle streams are skipped (they have no
/// text to convert), with a note on stderr.
fn write_subtitles(
    source: &Path,
    info: &SourceInfo,
    out: &Path,
    opts: &PrepareOptions,
) -> Result<Vec<SubtitleTrack>> {
    let subs = out.join("subs");
    let lists = out.join("hls").join("subs");
    if subs.exists() {
        std::fs::remove_dir_all(&subs).map_err(io_err(format!("clearing {}", subs.display())))?;
    }
    let mut tracks: Vec<SubtitleTrack> = Vec::new();
    // Two tracks in one language (e.g. full and SDH) need distinct paths.
    let unique = |tracks: &[SubtitleTrack], lang: &str| {
        let mut name = lang.to_string();
        let mut n = 2;
        while tracks.iter().any(|t| t.lang == name) {
            name = format!("{lang}-{n}");
            n += 1;
        }
        name
    };
    // Where each track comes from: a stream of the source, or an external file.
    enum From<'a> {
        Stream(usize),
        File(&'a Path),
    }
    let mut jobs: Vec<(String, From)> = Vec::new();
    for s in &info.subtitles {
        if !s.is_text() {
            eprintln!(
                "note: subtitle stream {} ({}) is a bitmap format and cannot become WebVTT; skipped",
                s.index, s.codec
            );
            continue;
        }
        jobs.push((sanitize_lang(&s.language), From::Stream(s.index)));
    }
    for (lang, path) in &opts.subtitles {
        jobs.push((lang.clone(), From::File(path)));
    }
    for (lang, job) in jobs {
        let lang = unique(&tracks, &lang);
        std::fs::create_dir_all(&subs).map_err(io_err(format!("creating {}", subs.display())))?;
        std::fs::create_dir_all(&lists).map_err(io_err(format!("creating {}", lists.display())))?;
        let vtt = subs.join(format!("{lang}.vtt"));
        match job {
            From::Stream(index) => run_tool(
                "ffmpeg",
                &format!("converting subtitle stream {index} to WebVTT"),
                ffmpeg()
                    .arg("-i")
                    .arg(source)
                    .args(["-map", &format!("0:s:{index}")])
                    .args(["-c:s", "webvtt", "-f", "webvtt"])
                    .arg(&vtt),
            )
            .map(drop)?,
            From::File(path) => external_subtitle(path, &vtt)?,
        }
        std::fs::write(
            lists.join(format!("{lang}.m3u8")),
            subtitle_playlist(&lang, info.duration_s),
        )
        .map_err(io_err(format!("writing {}", lists.display())))?;
        tracks.push(SubtitleTrack {
            name: lang.clone(),
            lang,
        });
    }
    Ok(tracks)
}

/// An external subtitle file as WebVTT: a `.vtt` is checked and copied, an `.srt` converted.
fn external_subtitle(path: &Path, vtt: &Path) -> Result<()> {
    let bytes = std::fs::read(path)
        .map_err(|e| HlsError::Subtitles(format!("cannot read {}: {e}", path.display())))?;
    let is_vtt = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("vtt"));
    if is_vtt {
        let text = String::from_utf8(bytes)
            .map_err(|_| HlsError::Subtitles(format!("{} is not UTF-8 text", path.display())))?;
        if !text.trim_start_matches('\u{feff}').starts_with("WEBVTT") {
            return Err(HlsError::Subtitles(format!(
                "{} does not start with WEBVTT: not a WebVTT file",
                path.display()
            )));
        }
        std::fs::write(vtt, text).map_err(io_err(format!("writing {}", vtt.display())))
    } else {
        run_tool(
            "ffmpeg",
            &format!("converting {} to WebVTT", path.display()),
            ffmpeg()
                .arg("-i")
                .arg(path)
                .args(["-c:s", "webvtt", "-f", "webvtt"])
                .arg(vtt),
        )
        .map(drop)
    }
}

/// Thumbnail width and sprite grid: one 160-px-wide frame every [`THUMB_EVERY_S`] seconds, in a
/// grid of [`THUMB_COLUMNS`] columns (a 2-hour film is 720 frames, a ~1.4 MB JPEG at q 5).
const THUMB_WIDTH: u32 = 160;
const THUMB_EVERY_S: u32 = 10;
const THUMB_COLUMNS: u32 = 10;
/// Most tiles in one sprite (keeps the JPEG under the size limit and within JPEG's 65535 px).
const THUMB_MAX_TILES: u32 = 800;

/// `/thumbs/sprite.jpg` and `/thumbs/thumbs.vtt`: a WebVTT thumbnail track whose cues point
/// into the sprite with media fragments (`sprite.jpg#xywh=x,y,w,h`).
fn write_thumbnails(source: &Path, info: &SourceInfo, out: &Path) -> Result<()> {
    let dir = out.join("thumbs");
    std::fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
    // Every 10 s (every half of a very short video); a video longer than THUMB_MAX_TILES
    // tiles of 10 s gets sparser tiles, so the one sprite still covers all of it.
    let every = f64::from(THUMB_EVERY_S)
        .min(info.duration_s.max(1.0) / 2.0)
        .max(1.0)
        .max(info.duration_s / f64::from(THUMB_MAX_TILES));
    let tiles = ((info.duration_s / every).ceil() as u32).clamp(1, THUMB_MAX_TILES);
    let columns = tiles.min(THUMB_COLUMNS);
    let rows = tiles.div_ceil(columns);
    let th = ((f64::from(THUMB_WIDTH) * f64::from(info.height) / f64::from(info.width)).round()
        as u32)
        & !1;
    let th = th.max(2);
    run_tool(
        "ffmpeg",
        "making the thumbnail sprite",
        ffmpeg()
            .arg("-i")
            .arg(source)
            .args([
                "-vf",
                // A rational of integers: the fps filter parses "1/12.5" as a rate, not a period.
                &format!(
                    "fps=1000/{},scale={THUMB_WIDTH}:{th},tile={columns}x{rows}",
                    (every * 1000.0).round() as u64
                ),
                "-frames:v",
                "1",
                "-q:v",
                "5",
            ])
            .arg(dir.join("sprite.jpg")),
    )?;
    let mut vtt = String::from("WEBVTT\n\n");
    let stamp = |s: f64| {
        let ms = (s * 1000.0).round() as u64;
        format!(
            "{:02}:{:02}:{:02}.{:03}",
            ms / 3_600_000,
            ms / 60_000 % 60,
            ms / 1000 % 60,
            ms % 1000
        )
    };
    for i in 0..tiles {
        let start = f64::from(i) * every;
        let end = (start + every).min(info.duration_s.max(start + 0.001));
        let (x, y) = ((i % columns) * THUMB_WIDTH, (i / columns) * th);
        vtt.push_str(&format!(
            "{} --> {}\nsprite.jpg#xywh={x},{y},{THUMB_WIDTH},{th}\n\n",
            stamp(start),
            stamp(end)
        ));
    }
    std::fs::write(dir.join("thumbs.vtt"), vtt).map_err(io_err(format!(
        "writing {}",
        dir.join("thumbs.vtt").display()
    )))
}

// ------------------------------------------------------------------ reading a tree

/// MIME type of a tree file by extension; `None` for files a ladder does not contain.
pub fn mime_for(path: &str) -> Option<&'static str> {
    let ext = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase())?;
    Some(match ext.as_str() {
        "m3u8" => "application/vnd.apple.mpegurl",
        "mp4" | "m4s" => "video/mp4",
        "vtt" => "text/vtt",
        "jpg" | "jpeg" => "image/jpeg",
        _ => return None,
    })
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf, u64)>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(io_err(format!("reading {}", dir.display())))?;
    for e in entries {
        let e = e.map_err(io_err(format!("reading {}", dir.display())))?;
        let p = e.path();
        let meta = e
            .metadata()
            .map_err(io_err(format!("reading {}", p.display())))?;
        if meta.is_dir() {
            walk(root, &p, out)?;
        } else if meta.is_file() {
            let rel = p.strip_prefix(root).unwrap_or(&p);
            let path = format!(
                "/{}",
                rel.components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/")
            );
            out.push((path, p, meta.len()));
        }
    }
    Ok(())
}

/// The subdirectories a tree consists of: anything else in the directory (the source video,
/// notes) is not part of the ladder and is neither checked nor uploaded.
pub const TREE_DIRS: [&str; 3] = ["hls", "subs", "thumbs"];

/// (HTTP path, local path, size) of every file under the [`TREE_DIRS`] of `root`.
fn tree_entries(root: &Path) -> Result<Vec<(String, PathBuf, u64)>> {
    let mut all = Vec::new();
    for d in TREE_DIRS {
        let dir = root.join(d);
        if dir.is_dir() {
            walk(root, &dir, &mut all)?;
        }
    }
    Ok(all)
}

/// Reads a prepared tree: every file with its HTTP path and MIME type, each rung's
/// `index.m3u8` carrying its [`Rendition`] from the master playlist. Files are ordered as they
/// should be declared and uploaded: the master playlist, then each rung (playlist, init,
/// segments), then subtitles and thumbnails — a player can start as soon as the first ones are
/// there, and the canister's bound on declared-but-unwritten bytes is met by uploading in
/// declaration order.
pub fn scan(dir: &Path) -> Result<Vec<TreeFile>> {
    let bad = |reason: String| HlsError::BadTree {
        dir: dir.to_path_buf(),
        reason,
    };
    let master_path = dir.join("hls").join("master.m3u8");
    let master = std::fs::read_to_string(&master_path)
        .map_err(|e| bad(format!("cannot read hls/master.m3u8: {e}")))?;
    let renditions = master_renditions(&master);
    if renditions.is_empty() {
        return Err(bad("hls/master.m3u8 lists no variant".into()));
    }
    let mut files = Vec::new();
    for (path, local, size) in tree_entries(dir)? {
        // Leftovers of a crashed run (our probe file) and editor droppings are not the ladder.
        if path.rsplit('/').next().is_some_and(|n| n.starts_with('.')) {
            continue;
        }
        canvid_types::files::validate_path(&path).map_err(|e| bad(e.to_string()))?;
        let mime_type = mime_for(&path).ok_or_else(|| {
            bad(format!(
                "{path}: not a playlist, segment, subtitle or image"
            ))
        })?;
        if size == 0 {
            return Err(bad(format!("{path} is empty")));
        }
        if size > MAX_FILE_BYTES {
            return Err(HlsError::FileTooLarge {
                path,
                size,
                limit: MAX_FILE_BYTES,
                why: "cut the ladder with shorter segments or lower bitrates",
            });
        }
        let rendition = renditions
            .iter()
            .find(|(uri, _)| path == format!("/hls/{uri}"))
            .map(|(_, r)| r.clone());
        files.push(TreeFile {
            path,
            local,
            size,
            mime_type,
            rendition,
        });
    }
    for (uri, _) in &renditions {
        if !files.iter().any(|f| f.path == format!("/hls/{uri}")) {
            return Err(bad(format!(
                "the master playlist names hls/{uri}, which is missing"
            )));
        }
    }
    files.sort_by_key(|f| upload_order(f, &renditions));
    Ok(files)
}

fn upload_order(f: &TreeFile, renditions: &[(String, Rendition)]) -> (u32, usize, String) {
    if f.path == "/hls/master.m3u8" {
        return (0, 0, String::new());
    }
    // Rungs from the lowest (first in a player's start-up, smallest) to the highest.
    let rung = renditions.iter().rev().position(|(uri, _)| {
        uri.rsplit_once('/')
            .is_some_and(|(d, _)| f.path.starts_with(&format!("/hls/{d}/")))
    });
    match rung {
        Some(i) => {
            // Playlist, then init, then segments in order.
            let name = f.path.rsplit('/').next().unwrap_or("");
            let key = match name {
                "index.m3u8" => format!("0{name}"),
                "init.mp4" => format!("1{name}"),
                _ => format!("2{name}"),
            };
            (1, i, key)
        }
        None => (2, 0, f.path.clone()),
    }
}

/// The variants of a master playlist: (URI relative to `/hls/`, rendition).
pub fn master_renditions(master: &str) -> Vec<(String, Rendition)> {
    let mut out = Vec::new();
    let mut pending: Option<Rendition> = None;
    for line in master.lines().map(str::trim) {
        if let Some(attrs) = line.strip_prefix("#EXT-X-STREAM-INF:") {
            let a = attributes(attrs);
            let get = |k: &str| a.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            let (width, height) = get("RESOLUTION")
                .and_then(|r| {
                    let (w, h) = r.split_once('x')?;
                    Some((w.parse().ok()?, h.parse().ok()?))
                })
                .unwrap_or((0, 0));
            pending = Some(Rendition {
                name: String::new(),
                width,
                height,
                bandwidth: get("BANDWIDTH").and_then(|b| b.parse().ok()).unwrap_or(0),
                codecs: get("CODECS"),
            });
        } else if !line.is_empty() && !line.starts_with('#') {
            if let Some(mut r) = pending.take() {
                r.name = line
                    .split('/')
                    .next()
                    .filter(|d| *d != line)
                    .unwrap_or(line)
                    .to_string();
                out.push((line.to_string(), r));
            }
        }
    }
    out
}

/// Attribute list of an HLS tag: `NAME=value` pairs, values possibly quoted (with commas).
fn attributes(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let Some((name, after)) = rest.split_once('=') else {
            break;
        };
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"').unwrap_or(q.len());
            (&q[..end], q.get(end + 1..).unwrap_or(""))
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        out.push((name.trim().to_string(), value.to_string()));
        rest = next.trim_start_matches(',');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_lists_with_quoted_commas() {
        let a = attributes(r#"BANDWIDTH=10,CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=2x4"#);
        assert_eq!(
            a,
            vec![
                ("BANDWIDTH".into(), "10".into()),
                ("CODECS".into(), "avc1.64001f,mp4a.40.2".into()),
                ("RESOLUTION".into(), "2x4".into())
            ]
        );
    }

    #[test]
    fn codecs_strings() {
        assert_eq!(avc_codec("High", 40), "avc1.640028");
        assert_eq!(avc_codec("High", 31), "avc1.64001f");
        assert_eq!(avc_codec("Main", 30), "avc1.4d401e");
        assert_eq!(avc_codec("Constrained Baseline", 21), "avc1.42e015");
    }
}
