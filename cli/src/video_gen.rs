//! Generating a real H.264/AAC MP4 with ffmpeg (the same command as `scripts/gen-video.sh`).

use std::path::Path;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// Whether `ffmpeg` can be run.
pub fn ffmpeg_available() -> bool {
    Command::new("ffmpeg")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Writes `seconds` of `testsrc2` video (1280x720, 30 fps, H.264 at a constant `bitrate`, e.g.
/// "6M") with a 440 Hz sine tone (AAC) to `out`, "fast start" so playback can begin from the
/// first range. 6 s at 6M is about 4.8 MB: three 2,000,000-byte chunks.
pub fn generate(out: &Path, seconds: u32, bitrate: &str) -> Result<()> {
    if !ffmpeg_available() {
        return Err(Error::FfmpegMissing);
    }
    let output = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg(format!("testsrc2=size=1280x720:rate=30:duration={seconds}"))
        .args(["-f", "lavfi", "-i"])
        .arg(format!(
            "sine=frequency=440:sample_rate=48000:duration={seconds}"
        ))
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-profile:v",
            "main",
        ])
        .args([
            "-b:v", bitrate, "-minrate", bitrate, "-maxrate", bitrate, "-bufsize", bitrate,
        ])
        .args([
            "-x264-params",
            "nal-hrd=cbr",
            "-c:a",
            "aac",
            "-b:a",
            "96k",
            "-movflags",
            "+faststart",
            "-shortest",
        ])
        .arg(out)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Ffmpeg(e.to_string()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(Error::Ffmpeg(crate::error::one_line(&stderr)));
    }
    match std::fs::metadata(out) {
        Ok(m) if m.len() > 0 => Ok(()),
        _ => Err(Error::Ffmpeg(format!("{} was not written", out.display()))),
    }
}

/// The MIME type served for a file, from its extension.
pub fn mime_type(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("mp4" | "m4v") => "video/mp4",
        Some("webm") => "video/webm",
        Some("mov") => "video/quicktime",
        Some("mkv") => "video/x-matroska",
        Some("ogv") => "video/ogg",
        Some("ts") => "video/mp2t",
        _ => "application/octet-stream",
    }
}
