//! Stable memory: lazily allocated 64 KiB pages plus an undo journal.
//!
//! Rolling back a trapped message must not copy the whole stable memory (a canister may hold
//! hundreds of GiB). Instead, the first write of a message to a page saves that page's previous
//! content in a journal; a trap restores the saved pages, a successful message drops the journal.
//! Pages never written read as zeros and take no host memory.

use std::collections::{HashMap, HashSet};

/// Wasm page size (64 KiB): the unit of `stable64_grow` and of the journal.
pub const PAGE: u64 = 65536;
/// 500 GiB addressable, as on the IC.
pub const MAX_PAGES: u64 = 500 * 1024 * 1024 * 1024 / PAGE;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StableError {
    #[error("stable memory access out of bounds")]
    OutOfBounds,
    #[error("stable memory pages touched by this message exceed the limit of {0} bytes")]
    TouchLimit(u64),
}

#[derive(Default)]
struct Journal {
    size_pages: u64,
    /// Previous content of every page this message wrote (`None`: the page was all zeros).
    originals: HashMap<u64, Option<Box<[u8]>>>,
    /// Bytes of distinct pages this message may touch (write) before it traps.
    touch_limit: u64,
    /// The 4 KiB (OS) pages this message wrote: the IC charges each the first time.
    dirty_os_pages: HashSet<u64>,
}

/// The IC's page size for its dirty-page charge (`ic_sys::PAGE_SIZE`).
pub const OS_PAGE: u64 = 4096;

/// Paged stable memory with an optional per-message undo journal.
#[derive(Default)]
pub struct StableMemory {
    pages: HashMap<u64, Box<[u8]>>,
    size_pages: u64,
    journal: Option<Journal>,
    /// Pages written since the last snapshot capture (see `crate::snapshot`). A write that is
    /// rolled back leaves its page listed: the snapshot then saves the restored content again,
    /// which is redundant but never wrong.
    dirty: HashSet<u64>,
    /// The snapshot (store id, sequence number) whose stable file plus `dirty` equals this
    /// memory. `None` for a memory never saved (a new canister, a reinstall): its next snapshot
    /// writes every allocated page.
    synced_with: Option<(u128, u64)>,
    /// Pages written since the write-ahead log last recorded this memory (`persist::wal`).
    wal_dirty: HashSet<u64>,
    /// The log (or the checkpoint it follows) holds this memory's content: only `wal_dirty`
    /// pages need logging. `false` for a new memory (a new canister, a reinstall).
    wal_synced: bool,
}

impl StableMemory {
    pub fn new() -> Self {
        Self::default()
    }

    /// Size in 64 KiB pages.
    pub fn size_pages(&self) -> u64 {
        self.size_pages
    }

    pub fn size_bytes(&self) -> u64 {
        self.size_pages * PAGE
    }

    /// The pages holding a non-zero byte, by index: the whole content without the zeros (a
    /// sparse 3 GiB memory in a few pages).
    pub fn nonzero_pages(&self) -> std::collections::BTreeMap<u64, Vec<u8>> {
        self.pages
            .iter()
            .filter(|(_, p)| p.iter().any(|&b| b != 0))
            .map(|(&i, p)| (i, p.to_vec()))
            .collect()
    }

    /// Grows by `n` pages; returns the old size, or `None` when over [`MAX_PAGES`].
    pub fn grow(&mut self, n: u64) -> Option<u64> {
        let old = self.size_pages;
        let new = old.checked_add(n)?;
        if new > MAX_PAGES {
            return None;
        }
        self.size_pages = new;
        Some(old)
    }

    fn check(&self, offset: u64, len: u64) -> Result<(), StableError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.size_bytes() => Ok(()),
            _ => Err(StableError::OutOfBounds),
        }
    }

    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), StableError> {
        self.check(offset, buf.len() as u64)?;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let page = pos / PAGE;
            let in_page = (pos % PAGE) as usize;
            let n = (PAGE as usize - in_page).min(buf.len() - done);
            match self.pages.get(&page) {
                Some(p) => buf[done..done + n].copy_from_slice(&p[in_page..in_page + n]),
                None => buf[done..done + n].fill(0),
            }
            done += n;
        }
        Ok(())
    }

    /// Writes `data` at `offset`; returns the number of 4 KiB pages this write dirtied first in
    /// the open journal's message (0 without a journal), which the IC charges per page.
    pub fn write(&mut self, offset: u64, data: &[u8]) -> Result<u64, StableError> {
        self.check(offset, data.len() as u64)?;
        let mut fresh = 0u64;
        if let (Some(j), false) = (self.journal.as_mut(), data.is_empty()) {
            let last = (offset + data.len() as u64 - 1) / OS_PAGE;
            for p in offset / OS_PAGE..=last {
                fresh += j.dirty_os_pages.insert(p) as u64;
            }
        }
        let mut done = 0usize;
        while done < data.len() {
            let pos = offset + done as u64;
            let page = pos / PAGE;
            let in_page = (pos % PAGE) as usize;
            let n = (PAGE as usize - in_page).min(data.len() - done);
            if let Some(j) = self.journal.as_mut() {
                if !j.originals.contains_key(&page) {
                    if (j.originals.len() as u64 + 1) * PAGE > j.touch_limit {
                        return Err(StableError::TouchLimit(j.touch_limit));
                    }
                    j.originals.insert(page, self.pages.get(&page).cloned());
                }
            }
            self.dirty.insert(page);
            self.wal_dirty.insert(page);
            let p = self
                .pages
                .entry(page)
                .or_insert_with(|| vec![0u8; PAGE as usize].into_boxed_slice());
            p[in_page..in_page + n].copy_from_slice(&data[done..done + n]);
            done += n;
        }
        Ok(fresh)
    }

    /// Starts journaling a message that may write at most `touch_limit` bytes of distinct pages.
    pub fn begin(&mut self, touch_limit: u64) {
        self.journal = Some(Journal {
            size_pages: self.size_pages,
            originals: HashMap::new(),
            touch_limit,
            dirty_os_pages: HashSet::new(),
        });
    }

    /// Whether a journal is open.
    pub fn journaling(&self) -> bool {
        self.journal.is_some()
    }

    /// Keeps the message's writes.
    pub fn commit(&mut self) {
        self.journal = None;
    }

    /// Undoes every write and growth since [`StableMemory::begin`].
    pub fn rollback(&mut self) {
        if let Some(j) = self.journal.take() {
            self.size_pages = j.size_pages;
            for (page, original) in j.originals {
                match original {
                    Some(p) => {
                        self.pages.insert(page, p);
                    }
                    None => {
                        self.pages.remove(&page);
                    }
                }
            }
            // Pages beyond the restored size can only have been created by this message.
            let limit = self.size_pages;
            self.pages.retain(|p, _| *p < limit);
        }
    }

    /// Number of pages the running message has written so far.
    #[cfg(test)]
    pub fn journal_pages(&self) -> usize {
        self.journal.as_ref().map_or(0, |j| j.originals.len())
    }

    /// The whole stable memory as bytes (for inspection in tests).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0u8; self.size_bytes() as usize];
        for (page, p) in &self.pages {
            let start = (*page * PAGE) as usize;
            if start < v.len() {
                v[start..start + PAGE as usize].copy_from_slice(p);
            }
        }
        v
    }

    /// Host memory actually allocated for pages (not the addressable size).
    #[cfg(test)]
    pub fn allocated_bytes(&self) -> u64 {
        self.pages.len() as u64 * PAGE
    }

    // --- persistence support (`crate::persist`) ---

    /// Content of page `n` if it was ever written (`None` reads as zeros).
    pub fn page(&self, n: u64) -> Option<&[u8]> {
        self.pages.get(&n).map(|p| &p[..])
    }

    /// Indices of the allocated pages, ascending.
    pub fn allocated_pages(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self.pages.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// The snapshot this memory is in sync with (plus its dirty pages).
    pub fn synced_with(&self) -> Option<(u128, u64)> {
        self.synced_with
    }

    /// Returns the pages written since the last call (ascending) and records that the memory
    /// is now in sync with snapshot `sync`.
    pub fn take_dirty(&mut self, sync: (u128, u64)) -> Vec<u64> {
        let mut v: Vec<u64> = self.dirty.drain().collect();
        v.sort_unstable();
        self.synced_with = Some(sync);
        v
    }

    /// A memory loaded from snapshot `sync`: `size_pages` pages of which `pages` are allocated.
    pub fn restored(size_pages: u64, pages: HashMap<u64, Box<[u8]>>, sync: (u128, u64)) -> Self {
        StableMemory {
            pages,
            size_pages,
            journal: None,
            dirty: HashSet::new(),
            synced_with: Some(sync),
            wal_dirty: HashSet::new(),
            wal_synced: true,
        }
    }

    /// For the write-ahead log: `(full, pages)`: the pages to log (ascending) — every allocated
    /// page when the log does not hold this memory yet (`full`), else those written since the
    /// last call. The memory counts as logged afterwards.
    pub fn take_wal_dirty(&mut self) -> (bool, Vec<u64>) {
        let full = !self.wal_synced;
        let mut v: Vec<u64> = if full {
            self.wal_dirty.clear();
            self.pages.keys().copied().collect()
        } else {
            self.wal_dirty.drain().collect()
        };
        v.sort_unstable();
        self.wal_synced = true;
        (full, v)
    }

    /// Whether pages were written since the log last recorded this memory (or it never did).
    pub fn wal_pending(&self) -> bool {
        !self.wal_synced || !self.wal_dirty.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_write_across_pages() {
        let mut m = StableMemory::new();
        assert_eq!(m.grow(3), Some(0));
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        m.write(PAGE - 10, &data).unwrap();
        let mut back = vec![0u8; data.len()];
        m.read(PAGE - 10, &mut back).unwrap();
        assert_eq!(back, data);
        let mut zeros = [1u8; 10];
        m.read(0, &mut zeros).unwrap();
        assert_eq!(zeros, [0u8; 10]);
        assert_eq!(
            m.write(3 * PAGE - 1, &[1, 2]),
            Err(StableError::OutOfBounds)
        );
        assert_eq!(
            m.read(u64::MAX, &mut [0u8; 2]),
            Err(StableError::OutOfBounds)
        );
    }

    #[test]
    fn rollback_restores_pages_and_size() {
        let mut m = StableMemory::new();
        m.grow(1);
        m.write(0, b"committed").unwrap();
        m.begin(u64::MAX);
        m.write(0, b"scratched").unwrap();
        m.grow(2);
        m.write(2 * PAGE, b"new page").unwrap();
        assert_eq!(m.journal_pages(), 2);
        m.rollback();
        assert_eq!(m.size_pages(), 1);
        let mut buf = [0u8; 9];
        m.read(0, &mut buf).unwrap();
        assert_eq!(&buf, b"committed");
        assert_eq!(m.allocated_bytes(), PAGE);
    }

    #[test]
    fn commit_keeps_writes_and_drops_journal() {
        let mut m = StableMemory::new();
        m.grow(1);
        m.begin(u64::MAX);
        m.write(5, b"kept").unwrap();
        m.commit();
        m.rollback(); // no journal: no effect
        let mut buf = [0u8; 4];
        m.read(5, &mut buf).unwrap();
        assert_eq!(&buf, b"kept");
    }

    #[test]
    fn writes_report_the_4_kib_pages_they_dirty_first() {
        let mut m = StableMemory::new();
        m.grow(2);
        assert_eq!(
            m.write(0, &[1; 10]).unwrap(),
            0,
            "no journal, no message to charge"
        );
        m.begin(u64::MAX);
        assert_eq!(m.write(0, &[1; 10]).unwrap(), 1);
        assert_eq!(
            m.write(100, &[1; 10]).unwrap(),
            0,
            "same page in the same message"
        );
        assert_eq!(
            m.write(4095, &[1; 2]).unwrap(),
            1,
            "straddles pages 0 and 1"
        );
        assert_eq!(m.write(8192, &[1; 2 * 4096]).unwrap(), 2);
        assert_eq!(m.write(0, &[]).unwrap(), 0);
        m.commit();
        m.begin(u64::MAX);
        assert_eq!(m.write(0, &[1; 10]).unwrap(), 1, "a new message pays again");
    }

    #[test]
    fn touch_limit_is_enforced() {
        let mut m = StableMemory::new();
        m.grow(4);
        m.begin(2 * PAGE);
        m.write(0, &[1]).unwrap();
        m.write(PAGE, &[1]).unwrap();
        m.write(PAGE + 5, &[1]).unwrap(); // same page again: fine
        assert!(matches!(
            m.write(2 * PAGE, &[1]),
            Err(StableError::TouchLimit(_))
        ));
    }

    #[test]
    fn grow_is_bounded() {
        let mut m = StableMemory::new();
        assert_eq!(m.grow(MAX_PAGES + 1), None);
        assert_eq!(m.grow(MAX_PAGES), Some(0));
        assert_eq!(m.allocated_bytes(), 0);
    }
}
