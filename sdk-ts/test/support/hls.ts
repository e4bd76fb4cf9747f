// A short HLS ladder made with ffmpeg in the layout `canvid hls prepare` produces
// (docs: HLS layout contract): /hls/master.m3u8, /hls/<rung>/index.m3u8, /hls/<rung>/init.mp4,
// /hls/<rung>/seg-00000.m4s..., /hls/subs/<lang>.m3u8, /subs/<lang>.vtt. fMP4 (H.264) segments of
// `segmentSeconds`; every file well under 2,000,000 bytes.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Rung {
  name: string;
  width: number;
  height: number;
  /** Target video bit rate, kb/s. */
  kbps: number;
  /** H.264 level in the CODECS string (profile High). */
  codecs: string;
}

export const RUNGS_1080_360: Rung[] = [
  { name: '1080p', width: 1920, height: 1080, kbps: 2500, codecs: 'avc1.640028' },
  { name: '360p', width: 640, height: 360, kbps: 400, codecs: 'avc1.64001e' },
];

/** The subtitle cues written to /subs/en.vtt: one long cue per two seconds. */
export function subtitleText(seconds: number): string {
  const ts = (s: number) => `00:${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}.000`;
  let vtt = 'WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n\n';
  for (let s = 0; s < seconds; s += 2) vtt += `${ts(s)} --> ${ts(Math.min(s + 2, seconds))}\nSubtitle at ${s} s\n\n`;
  return vtt;
}

/**
 * Writes the ladder into `dir` (which becomes the upload root: `dir/hls/master.m3u8` is served at
 * `/hls/master.m3u8`). testsrc2 draws a running clock, so frames differ over time.
 */
export function makeHlsLadder(dir: string, opts: { seconds?: number; segmentSeconds?: number; rungs?: Rung[] } = {}): { files: number } {
  const seconds = opts.seconds ?? 6;
  const seg = opts.segmentSeconds ?? 2;
  const rungs = opts.rungs ?? RUNGS_1080_360;
  const fps = 30;
  for (const r of rungs) {
    const out = join(dir, 'hls', r.name);
    mkdirSync(out, { recursive: true });
    execFileSync('ffmpeg', [
      '-hide_banner', '-loglevel', 'error', '-y',
      '-f', 'lavfi', '-i', `testsrc2=size=${r.width}x${r.height}:rate=${fps}:duration=${seconds}`,
      '-c:v', 'libx264', '-preset', 'ultrafast', '-profile:v', 'high', '-pix_fmt', 'yuv420p',
      '-g', String(seg * fps), '-keyint_min', String(seg * fps), '-sc_threshold', '0',
      '-b:v', `${r.kbps}k`, '-maxrate', `${r.kbps}k`, '-bufsize', `${r.kbps * 2}k`,
      '-f', 'hls', '-hls_time', String(seg), '-hls_playlist_type', 'vod', '-hls_segment_type', 'fmp4',
      '-hls_fmp4_init_filename', 'init.mp4', '-hls_segment_filename', join(out, 'seg-%05d.m4s'),
      join(out, 'index.m3u8'),
    ], { cwd: out });
  }
  mkdirSync(join(dir, 'hls', 'subs'), { recursive: true });
  mkdirSync(join(dir, 'subs'), { recursive: true });
  writeFileSync(join(dir, 'subs', 'en.vtt'), subtitleText(seconds));
  writeFileSync(
    join(dir, 'hls', 'subs', 'en.m3u8'),
    `#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:${seconds}\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:${seconds}.0,\n../../subs/en.vtt\n#EXT-X-ENDLIST\n`,
  );
  let master = '#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n';
  master += '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",LANGUAGE="en",DEFAULT=NO,AUTOSELECT=YES,URI="subs/en.m3u8"\n';
  for (const r of rungs) {
    master += `#EXT-X-STREAM-INF:BANDWIDTH=${Math.round(r.kbps * 1000 * 1.2)},AVERAGE-BANDWIDTH=${r.kbps * 1000},RESOLUTION=${r.width}x${r.height},CODECS="${r.codecs}",FRAME-RATE=${fps},SUBTITLES="subs"\n${r.name}/index.m3u8\n`;
  }
  writeFileSync(join(dir, 'hls', 'master.m3u8'), master);
  let files = 0;
  const count = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) e.isDirectory() ? count(join(d, e.name)) : files++;
  };
  count(dir);
  return { files };
}

/**
 * The ladder for the tests: `canvid hls prepare` (the real packager: every rung the 1080p source
 * allows, 1080p down to 240p) when `$CANVID_BIN` has it, else `makeHlsLadder` (1080p + 360p) —
 * the same layout either way. English subtitles from `subtitleText`. Says which it used.
 */
export function prepareLadder(dir: string, seconds: number): { tool: string } {
  const bin = process.env.CANVID_BIN;
  let hasPrepare = false;
  if (bin) {
    try {
      execFileSync(bin, ['hls', 'prepare', '--help'], { stdio: 'ignore' });
      hasPrepare = true;
    } catch {
      hasPrepare = false;
    }
  }
  if (!hasPrepare) {
    makeHlsLadder(dir, { seconds, segmentSeconds: 2 });
    return { tool: 'ffmpeg (makeHlsLadder)' };
  }
  const src = `${dir}-source`;
  mkdirSync(src, { recursive: true });
  const clip = join(src, 'clip.mp4');
  execFileSync('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', `testsrc2=size=1920x1080:rate=30:duration=${seconds}`,
    '-f', 'lavfi', '-i', `sine=frequency=440:duration=${seconds}`,
    '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest', clip,
  ]);
  writeFileSync(join(src, 'en.vtt'), subtitleText(seconds));
  execFileSync(bin!, ['hls', 'prepare', clip, dir, '--subtitles', `en=${join(src, 'en.vtt')}`, '--preset', 'ultrafast', '--segment-seconds', '2'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  rmSync(src, { recursive: true, force: true });
  return { tool: 'canvid hls prepare' };
}
