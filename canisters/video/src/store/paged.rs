//! Layout version 4: virtual memories that cost what they hold.
//!
//! Layouts 1–3 give stable memory to an `ic_stable_structures` `MemoryManager` with 16 MiB
//! buckets (the smallest bucket that still addresses 400 GiB within its 32,768 buckets), so
//! every virtual memory in use occupies at least 16 MiB: a 5 MB clip held ~84 MiB of stable
//! memory and paid for it every second. Layout 4 replaces the manager by a page allocator whose
//! unit is one Wasm page (64 KiB) and whose allocations are *extents* — runs of contiguous pages —
//! so a memory that grows while nothing else does (the arena during an upload) stays one run,
//! and a memory costs its size rounded up to 64 KiB. The footprint of a video is its bytes plus
//! this header (256 KiB) plus less than 64 KiB per memory in use.
//!
//! Pages are never moved or freed (stable memory cannot shrink, and an upgrade never moves
//! data); a memory's pages are found through the extent table below.
//!
//! # Raw stable memory, byte by byte
//!
//! ```text
//! offset   size        field
//! 0        4           magic "CVID"   (layouts 1–3 start with the MemoryManager's "MGR")
//! 4        4           canvid layout version (u32 LE) = 4
//! 8        4           next free page: the first page no extent holds (u32 LE)
//! 12       4           extent count E (u32 LE), at most MAX_EXTENTS
//! 16       48          reserved, zero
//! 64       16 * E      extent table, in allocation order; extent i:
//!                        +0   1  memory id (0..=MAX_MEMORIES-1)
//!                        +1   3  reserved, zero
//!                        +4   4  first virtual page of the run, in that memory (u32 LE)
//!                        +8   4  page count (u32 LE), >= 1
//!                        +12  4  first physical page (u32 LE)
//! 262144   ...         pages (page p at byte p * 65536; p >= HEADER_PAGES)
//! ```
//!
//! A memory's extents, in table order, have increasing and gap-free virtual pages: extent k of a
//! memory starts where extent k-1 ended. When a memory grows and its last extent ends at the
//! next free page, that extent's count grows instead of a new extent being added. Stable memory
//! is grown (by the IC's `stable64_grow`) exactly to the next free page.
//!
//! `MAX_EXTENTS` bounds the table to the header: 16,000 extents. An upload interleaves arena
//! growth with chunk-table growth about once per 600 chunks, so a 400 GiB video uses a few
//! hundred extents; a memory that cannot get an extent fails to grow (`grow` returns -1), which
//! the structures above report as out of memory.

use std::cell::RefCell;
use std::rc::Rc;

use ic_stable_structures::Memory;

pub const MAGIC: &[u8; 4] = b"CVID";
/// The first layout version that uses this allocator.
pub const PAGED_LAYOUT_VERSION: u32 = 4;
const PAGE: u64 = 65_536;
/// Pages the header and extent table occupy: 256 KiB.
pub const HEADER_PAGES: u32 = 4;
const TABLE_OFFSET: u64 = 64;
const EXTENT_LEN: u64 = 16;
/// Extents the table holds (16,000 * 16 bytes + 64 <= 256 KiB).
pub const MAX_EXTENTS: u32 = 16_000;
/// Virtual memories the allocator serves (ids 0..MAX_MEMORIES).
pub const MAX_MEMORIES: u8 = 16;

const _: () = assert!(TABLE_OFFSET + EXTENT_LEN * MAX_EXTENTS as u64 <= HEADER_PAGES as u64 * PAGE);

/// Does this raw stable memory hold a layout-4 header?
pub fn is_paged<M: Memory>(raw: &M) -> bool {
    if raw.size() == 0 {
        return false;
    }
    let mut magic = [0u8; 4];
    raw.read(0, &mut magic);
    &magic == MAGIC
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Extent {
    virt: u32,
    count: u32,
    phys: u32,
    /// Index in the table (to grow it in place).
    slot: u32,
}

/// The raw memory and its header, shared by every [`PagedMemory`].
pub struct PageAllocator<M: Memory> {
    raw: M,
}

impl<M: Memory> PageAllocator<M> {
    /// Writes a fresh header into an empty raw memory.
    pub fn init(raw: M, layout_version: u32) -> Result<Rc<Self>, String> {
        if raw.size() != 0 {
            return Err("stable memory is not empty".into());
        }
        if raw.grow(HEADER_PAGES as u64) < 0 {
            return Err("cannot grow stable memory for the header".into());
        }
        let mut header = [0u8; 16];
        header[0..4].copy_from_slice(MAGIC);
        header[4..8].copy_from_slice(&layout_version.to_le_bytes());
        header[8..12].copy_from_slice(&HEADER_PAGES.to_le_bytes());
        raw.write(0, &header);
        Ok(Rc::new(PageAllocator { raw }))
    }

    /// Opens a raw memory that holds a layout-4 header (checked by the caller: [`is_paged`]).
    pub fn open(raw: M) -> Result<Rc<Self>, String> {
        let a = PageAllocator { raw };
        if !is_paged(&a.raw) {
            return Err("stable memory has no layout-4 header".into());
        }
        // Every page past the header belongs to exactly one extent and stable memory ends at
        // the next free page: a header or table that says otherwise is corrupt, and is refused
        // rather than trusted to hand out pages that are in use.
        let (next, count) = (a.next_free(), a.extent_count());
        let corrupt = |why: &str| {
            Err(format!(
                "corrupt page allocator header ({why}): next free page {next}, {count} extents, \
                 {} pages of stable memory",
                a.raw.size()
            ))
        };
        if count > MAX_EXTENTS || u64::from(next) != a.raw.size() {
            return corrupt("size");
        }
        let mut pages = u64::from(HEADER_PAGES);
        for slot in 0..count {
            let (id, e) = a.extent(slot);
            if id >= MAX_MEMORIES || e.count == 0 || e.phys < HEADER_PAGES {
                return corrupt("extent");
            }
            pages += u64::from(e.count);
        }
        if pages != u64::from(next) {
            return corrupt("extents do not cover the pages");
        }
        Ok(Rc::new(a))
    }

    pub fn layout_version(&self) -> u32 {
        self.read_u32(4)
    }

    pub fn set_layout_version(&self, v: u32) {
        self.raw.write(4, &v.to_le_bytes());
    }

    /// Stable memory in use, in bytes (what the IC charges for).
    pub fn stable_bytes(&self) -> u64 {
        self.raw.size() * PAGE
    }

    pub fn extent_count(&self) -> u32 {
        self.read_u32(12)
    }

    fn next_free(&self) -> u32 {
        self.read_u32(8)
    }

    fn read_u32(&self, offset: u64) -> u32 {
        let mut b = [0u8; 4];
        self.raw.read(offset, &mut b);
        u32::from_le_bytes(b)
    }

    fn extent(&self, slot: u32) -> (u8, Extent) {
        let mut b = [0u8; EXTENT_LEN as usize];
        self.raw
            .read(TABLE_OFFSET + u64::from(slot) * EXTENT_LEN, &mut b);
        let u = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        (
            b[0],
            Extent {
                virt: u(4),
                count: u(8),
                phys: u(12),
                slot,
            },
        )
    }

    fn write_extent(&self, id: u8, e: &Extent) {
        let mut b = [0u8; EXTENT_LEN as usize];
        b[0] = id;
        b[4..8].copy_from_slice(&e.virt.to_le_bytes());
        b[8..12].copy_from_slice(&e.count.to_le_bytes());
        b[12..16].copy_from_slice(&e.phys.to_le_bytes());
        self.raw
            .write(TABLE_OFFSET + u64::from(e.slot) * EXTENT_LEN, &b);
    }

    /// The extents of memory `id`, in virtual order (one scan of the table: at open time).
    fn extents_of(&self, id: u8) -> Vec<Extent> {
        (0..self.extent_count())
            .map(|slot| self.extent(slot))
            .filter(|(owner, _)| *owner == id)
            .map(|(_, e)| e)
            .collect()
    }

    /// Allocates `pages` pages for memory `id` after `last` (its last extent, if any): extends
    /// `last` when it ends at the next free page, else adds an extent. Grows the raw memory
    /// first, so a failure changes nothing.
    fn allocate(&self, id: u8, virt: u32, pages: u32, last: Option<Extent>) -> Option<Extent> {
        let next = self.next_free();
        let new_next = next.checked_add(pages)?;
        let extends = matches!(last, Some(e) if e.phys + e.count == next);
        if !extends && self.extent_count() >= MAX_EXTENTS {
            return None;
        }
        let have = self.raw.size();
        if u64::from(new_next) > have && self.raw.grow(u64::from(new_next) - have) < 0 {
            return None;
        }
        let extent = match last {
            Some(mut e) if e.phys + e.count == next => {
                e.count += pages;
                e
            }
            _ => {
                let slot = self.extent_count();
                self.raw.write(12, &(slot + 1).to_le_bytes());
                Extent {
                    virt,
                    count: pages,
                    phys: next,
                    slot,
                }
            }
        };
        self.write_extent(id, &extent);
        self.raw.write(8, &new_next.to_le_bytes());
        Some(extent)
    }
}

/// One virtual memory of layout 4: a `Memory` whose pages live in the extents the allocator
/// gave it. Cheap to clone (shares the allocator and the extent list).
#[derive(Clone)]
pub struct PagedMemory<M: Memory> {
    alloc: Rc<PageAllocator<M>>,
    id: u8,
    /// This memory's extents in virtual order (a heap copy of its table rows: only this
    /// memory changes them, and only through `grow`).
    extents: Rc<RefCell<Vec<Extent>>>,
}

impl<M: Memory> PagedMemory<M> {
    pub fn open(alloc: &Rc<PageAllocator<M>>, id: u8) -> Self {
        assert!(id < MAX_MEMORIES, "paged memory id {id} out of range");
        PagedMemory {
            alloc: Rc::clone(alloc),
            id,
            extents: Rc::new(RefCell::new(alloc.extents_of(id))),
        }
    }

    /// Calls `f(physical byte offset, range in the caller's buffer)` for each contiguous piece
    /// of virtual bytes `[offset, offset + len)`. Panics past the end, as `Memory` requires.
    fn for_each_piece(
        &self,
        offset: u64,
        len: usize,
        mut f: impl FnMut(u64, std::ops::Range<usize>),
    ) {
        let extents = self.extents.borrow();
        let end = offset
            .checked_add(len as u64)
            .expect("paged memory: address overflow");
        let size = self.size() * PAGE;
        assert!(
            end <= size,
            "paged memory {}: access {offset}..{end} past its {size} bytes",
            self.id
        );
        let mut at = offset;
        while at < end {
            let page = (at / PAGE) as u32;
            // The extent holding `page`: the last one starting at or before it.
            let i = extents.partition_point(|e| e.virt <= page) - 1;
            let e = extents[i];
            let extent_end = (u64::from(e.virt) + u64::from(e.count)) * PAGE;
            let piece_end = end.min(extent_end);
            let phys = u64::from(e.phys) * PAGE + (at - u64::from(e.virt) * PAGE);
            f(phys, (at - offset) as usize..(piece_end - offset) as usize);
            at = piece_end;
        }
    }
}

impl<M: Memory> Memory for PagedMemory<M> {
    fn size(&self) -> u64 {
        self.extents
            .borrow()
            .last()
            .map_or(0, |e| u64::from(e.virt) + u64::from(e.count))
    }

    fn grow(&self, pages: u64) -> i64 {
        let old = self.size();
        if pages == 0 {
            return old as i64;
        }
        let Ok(pages32) = u32::try_from(pages) else {
            return -1;
        };
        if old + pages > u64::from(u32::MAX) {
            return -1;
        }
        let last = self.extents.borrow().last().copied();
        match self.alloc.allocate(self.id, old as u32, pages32, last) {
            None => -1,
            Some(e) => {
                let mut extents = self.extents.borrow_mut();
                match extents.last_mut() {
                    Some(l) if l.slot == e.slot => *l = e,
                    _ => extents.push(e),
                }
                old as i64
            }
        }
    }

    fn read(&self, offset: u64, dst: &mut [u8]) {
        self.for_each_piece(offset, dst.len(), |phys, r| {
            self.alloc.raw.read(phys, &mut dst[r]);
        });
    }

    fn write(&self, offset: u64, src: &[u8]) {
        self.for_each_piece(offset, src.len(), |phys, r| {
            self.alloc.raw.write(phys, &src[r]);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ic_stable_structures::{StableBTreeMap, VectorMemory};
    use proptest::prelude::*;

    fn fresh() -> (VectorMemory, Rc<PageAllocator<VectorMemory>>) {
        let raw = VectorMemory::default();
        let alloc = PageAllocator::init(raw.clone(), 4).unwrap();
        (raw, alloc)
    }

    #[test]
    fn header_is_documented_bytes() {
        let (raw, alloc) = fresh();
        let m = PagedMemory::open(&alloc, 3);
        assert_eq!(m.grow(2), 0);
        let mut h = [0u8; 80];
        raw.read(0, &mut h);
        assert_eq!(&h[0..4], b"CVID");
        assert_eq!(&h[4..8], &4u32.to_le_bytes());
        assert_eq!(&h[8..12], &(HEADER_PAGES + 2).to_le_bytes()); // next free page
        assert_eq!(&h[12..16], &1u32.to_le_bytes()); // one extent
        assert_eq!(
            &h[64..80],
            &[3, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0]
        );
        assert_eq!(raw.size(), u64::from(HEADER_PAGES) + 2);
    }

    #[test]
    fn contiguous_growth_extends_one_extent_and_interleaving_adds_extents() {
        let (_, alloc) = fresh();
        let a = PagedMemory::open(&alloc, 4);
        let b = PagedMemory::open(&alloc, 2);
        a.grow(1);
        a.grow(3);
        assert_eq!(alloc.extent_count(), 1);
        b.grow(1);
        a.grow(1);
        assert_eq!(alloc.extent_count(), 3);
        assert_eq!(a.size(), 5);
        // A write across the extent boundary lands in both extents and reads back whole.
        let data: Vec<u8> = (0..3 * PAGE as usize / 2)
            .map(|i| (i % 251) as u8)
            .collect();
        a.write(3 * PAGE + 100, &data[..PAGE as usize + 1000]);
        let mut back = vec![0u8; PAGE as usize + 1000];
        a.read(3 * PAGE + 100, &mut back);
        assert_eq!(back, &data[..PAGE as usize + 1000]);
        // b's page is untouched by a's writes.
        let mut bb = vec![1u8; PAGE as usize];
        b.read(0, &mut bb);
        assert!(bb.iter().all(|x| *x == 0));
        // Reopening sees the same extents.
        let a2 = PagedMemory::open(&alloc, 4);
        assert_eq!(a2.size(), 5);
        a2.read(3 * PAGE + 100, &mut back);
        assert_eq!(back, &data[..PAGE as usize + 1000]);
    }

    #[test]
    #[should_panic(expected = "past its")]
    fn reads_past_the_end_panic_like_any_memory() {
        let (_, alloc) = fresh();
        let a = PagedMemory::open(&alloc, 1);
        a.grow(1);
        let mut b = [0u8; 2];
        a.read(PAGE - 1, &mut b);
    }

    #[test]
    fn a_full_extent_table_fails_growth_without_changing_anything() {
        let (raw, alloc) = fresh();
        let a = PagedMemory::open(&alloc, 1);
        let b = PagedMemory::open(&alloc, 2);
        // Alternate so every growth needs a new extent.
        for i in 0..MAX_EXTENTS {
            let m = if i % 2 == 0 { &a } else { &b };
            assert!(m.grow(1) >= 0);
        }
        assert_eq!(alloc.extent_count(), MAX_EXTENTS);
        let pages = raw.size();
        assert_eq!(a.grow(1), -1);
        assert_eq!(raw.size(), pages);
        // b's last extent ends at the next free page: it can still grow in place.
        assert!(b.grow(1) >= 0);
    }

    #[test]
    fn btree_maps_in_interleaved_memories() {
        let (_, alloc) = fresh();
        let mut m1: StableBTreeMap<u64, Vec<u8>, _> =
            StableBTreeMap::init(PagedMemory::open(&alloc, 1));
        let mut m2: StableBTreeMap<u64, u64, _> =
            StableBTreeMap::init(PagedMemory::open(&alloc, 2));
        for i in 0..3_000u64 {
            m1.insert(i, vec![(i % 256) as u8; (i % 300) as usize]);
            m2.insert(i * 7, i);
        }
        drop((m1, m2));
        let m1: StableBTreeMap<u64, Vec<u8>, _> =
            StableBTreeMap::init(PagedMemory::open(&alloc, 1));
        let m2: StableBTreeMap<u64, u64, _> = StableBTreeMap::init(PagedMemory::open(&alloc, 2));
        for i in 0..3_000u64 {
            assert_eq!(
                m1.get(&i).unwrap(),
                vec![(i % 256) as u8; (i % 300) as usize]
            );
            assert_eq!(m2.get(&(i * 7)), Some(i));
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Grow(u8, u8),
        Write(u8, u32, Vec<u8>),
        Read(u8, u32, u16),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..3, 0u8..3).prop_map(|(m, p)| Op::Grow(m, p)),
            (
                0u8..3,
                any::<u32>(),
                proptest::collection::vec(any::<u8>(), 0..70_000)
            )
                .prop_map(|(m, o, d)| Op::Write(m, o, d)),
            (0u8..3, any::<u32>(), any::<u16>()).prop_map(|(m, o, l)| Op::Read(m, o, l)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Three paged memories behave exactly like three independent vector memories, and a
        /// reopened allocator sees the same contents.
        #[test]
        fn behaves_like_independent_memories(ops in proptest::collection::vec(op(), 1..60)) {
            let (raw, alloc) = fresh();
            let mems: Vec<_> = (0..3).map(|i| PagedMemory::open(&alloc, i + 1)).collect();
            let models: Vec<VectorMemory> = (0..3).map(|_| VectorMemory::default()).collect();
            for op in ops {
                match op {
                    Op::Grow(m, p) => {
                        let (m, p) = (m as usize, p as u64);
                        prop_assert_eq!(mems[m].grow(p), models[m].grow(p));
                    }
                    Op::Write(m, o, d) => {
                        let m = m as usize;
                        let size = models[m].size() * PAGE;
                        if size == 0 { continue; }
                        let len = (d.len() as u64).min(size);
                        let o = u64::from(o) % (size - len + 1);
                        mems[m].write(o, &d[..len as usize]);
                        models[m].write(o, &d[..len as usize]);
                    }
                    Op::Read(m, o, l) => {
                        let m = m as usize;
                        let size = models[m].size() * PAGE;
                        let len = u64::from(l).min(size);
                        let o = if size == 0 { 0 } else { u64::from(o) % (size - len + 1) };
                        let (mut x, mut y) = (vec![0u8; len as usize], vec![0u8; len as usize]);
                        mems[m].read(o, &mut x);
                        models[m].read(o, &mut y);
                        prop_assert_eq!(x, y);
                    }
                }
            }
            let alloc2 = PageAllocator::open(raw.clone()).unwrap();
            let total: u64 = models.iter().map(|m| m.size()).sum();
            prop_assert_eq!(raw.size(), u64::from(HEADER_PAGES) + total);
            for (i, model) in models.iter().enumerate() {
                let m = PagedMemory::open(&alloc2, i as u8 + 1);
                prop_assert_eq!(m.size(), model.size());
                let mut x = vec![0u8; (model.size() * PAGE) as usize];
                let mut y = x.clone();
                m.read(0, &mut x);
                model.read(0, &mut y);
                prop_assert!(x == y);
            }
        }
    }
}
