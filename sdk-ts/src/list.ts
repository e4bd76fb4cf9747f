// Paginated listing (index canister `videos_by_creator` / `videos_by_owner`) as async iterators.
import type { Principal } from '@icp-sdk/core/principal';
import type { VideoEntry } from './bindings/index.did.js';
import { UnexpectedError } from './errors.js';
import { throwIfAborted } from './retry.js';

export interface Page<T> {
  items: T[];
  /** Pass as `cursor` for the next page; `undefined` at the end. */
  nextCursor?: string;
}

export interface ListOptions {
  /** Entries per page asked of the index (1..=1000; default 100). */
  pageSize?: number;
  /** Start after this video id (a `nextCursor` from an earlier page). */
  cursor?: string;
  signal?: AbortSignal;
}

/** A video as the index knows it (principals as text, times as `Date`). */
export interface VideoListing {
  videoId: string;
  creator: string;
  owner: string;
  /** Completed ownership transfers. */
  transferSeq: bigint;
  registeredAt: Date;
}

export function toListing(e: VideoEntry): VideoListing {
  return {
    videoId: e.video.toText(),
    creator: e.creator.toText(),
    owner: e.owner.toText(),
    transferSeq: e.transfer_seq,
    registeredAt: new Date(Number(e.registered_at / 1_000_000n)),
  };
}

export function principalText(p: Principal | string): string {
  return typeof p === 'string' ? p : p.toText();
}

/**
 * Iterates every item of a cursor-paginated listing, fetching a page only when the previous one
 * is consumed. Stops with an error if the cursor does not advance (a looping server).
 */
export async function* paginate<T>(
  fetchPage: (cursor: string | undefined) => Promise<Page<T>>,
  options: { cursor?: string; signal?: AbortSignal } = {},
): AsyncGenerator<T, void, undefined> {
  let cursor = options.cursor;
  const seen = new Set<string>();
  for (;;) {
    throwIfAborted(options.signal);
    const page = await fetchPage(cursor);
    for (const item of page.items) yield item;
    if (page.nextCursor === undefined) return;
    if (seen.has(page.nextCursor)) throw new UnexpectedError(`pagination loops at cursor ${page.nextCursor}`);
    seen.add(page.nextCursor);
    cursor = page.nextCursor;
  }
}
