#!/usr/bin/env bash
# Generates a small, real H.264/AAC MP4 test fixture with ffmpeg (test pattern + sine tone).
#
#   scripts/gen-video.sh OUT.mp4 [SECONDS] [WIDTHxHEIGHT] [BITRATE]
#
# Defaults: 5 seconds, 640x360, 30 fps, quality-based rate. A BITRATE such as 6M encodes at a
# constant bit rate so the size is predictable (about SECONDS x BITRATE / 8: 6 s at 6M is ~4.8 MB,
# three 2,000,000-byte upload chunks). The file is "fast start" (moov atom first) so a browser
# can begin playback from the first HTTP range. `canvid demo` runs the same ffmpeg command when no
# file is given. ffmpeg is installed by scripts/setup.sh.
set -euo pipefail

if [ $# -lt 1 ] || [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
  [ $# -ge 1 ] && exit 0 || exit 2
fi
out=$1
seconds=${2:-5}
size=${3:-640x360}
bitrate=${4:-}

case $seconds in ''|*[!0-9]*) echo "error: SECONDS must be a whole number, got '$seconds'" >&2; exit 2;; esac
case $size in *x*) ;; *) echo "error: size must look like 640x360, got '$size'" >&2; exit 2;; esac

if ! command -v ffmpeg >/dev/null 2>&1; then
  echo "error: ffmpeg is not installed; run scripts/setup.sh (or apt-get install ffmpeg)" >&2
  exit 1
fi

rate=()
if [ -n "$bitrate" ]; then
  case $bitrate in *[!0-9kKmM]*) echo "error: BITRATE must look like 6M or 800k, got '$bitrate'" >&2; exit 2;; esac
  rate=(-b:v "$bitrate" -minrate "$bitrate" -maxrate "$bitrate" -bufsize "$bitrate" -x264-params nal-hrd=cbr)
fi

mkdir -p "$(dirname "$out")"
ffmpeg -hide_banner -loglevel error -y \
  -f lavfi -i "testsrc2=size=${size}:rate=30:duration=${seconds}" \
  -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=${seconds}" \
  -c:v libx264 -preset veryfast -pix_fmt yuv420p -profile:v main "${rate[@]}" \
  -c:a aac -b:a 96k \
  -movflags +faststart -shortest \
  "$out"
echo "$out ($(stat -c %s "$out") bytes, ${seconds}s ${size} H.264/AAC)"
