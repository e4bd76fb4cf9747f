/**
 * `@canvid/sdk/node`: helpers that need Node's file system (kept out of the main entry so browser
 * bundles never pull in `node:fs`).
 *
 * ```ts
 * import { filesFromDirectory } from '@canvid/sdk/node';
 * const files = await filesFromDirectory('out/'); // made by `canvid hls prepare clip.mp4 out/`
 * await canvid.uploadFiles(files, { title: 'Clip' });
 * ```
 * @packageDocumentation
 */
import { readdir, readFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { type FolderEntry, type NamedFile, namedFilesFrom } from './files.js';

/**
 * Named files from a folder, walked recursively: path = `/` + the path relative to `dir` (so
 * `out/hls/master.m3u8` becomes `/hls/master.m3u8`), MIME type by extension (`.m3u8`
 * application/vnd.apple.mpegurl, `.m4s`/`.mp4` video/mp4, `.ts` video/mp2t, `.vtt` text/vtt,
 * `.jpg` image/jpeg, `.png` image/png, ...), and for each media playlist a master playlist lists,
 * its rendition (`RESOLUTION`, `BANDWIDTH`, `CODECS` of `EXT-X-STREAM-INF`). Hidden files
 * (`.name`) are skipped. The files are read into memory (segments are at most a few MB each).
 */
export async function filesFromDirectory(dir: string): Promise<NamedFile[]> {
  const entries: FolderEntry[] = [];
  const walk = async (d: string): Promise<void> => {
    const items = await readdir(d, { withFileTypes: true });
    for (const it of items) {
      if (it.name.startsWith('.')) continue;
      const full = join(d, it.name);
      if (it.isDirectory()) await walk(full);
      else if (it.isFile()) {
        const buf = await readFile(full);
        entries.push({ relativePath: relative(dir, full).split(sep).join('/'), data: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) });
      }
    }
  };
  await walk(dir);
  return namedFilesFrom(entries);
}

export type { NamedFile, RenditionInfo } from './files.js';
