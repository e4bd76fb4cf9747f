//! Cursor paging over ordered stable maps (the spawn canister's videos, the index's lists).
//!
//! A page holds at most `limit` items; its cursor is the key of the last item, and the next
//! page starts strictly after it. Keys are unique and ordered, so items inserted or removed
//! between pages never make a page repeat or skip an item that existed throughout.

/// `limit` → page size: `default` when absent, clamped to `1..=max` (a caller cannot ask for
/// an unbounded reply, and 0 would never advance).
pub fn page_limit(limit: Option<u32>, default: u32, max: u32) -> usize {
    limit.unwrap_or(default).clamp(1, max) as usize
}

/// Takes up to `limit` items from `items` (already positioned after the cursor). The cursor of
/// the next page is `cursor_of(last item)` when more items follow, `None` at the end.
pub fn take_page<T, C>(
    items: impl IntoIterator<Item = T>,
    limit: usize,
    cursor_of: impl Fn(&T) -> C,
) -> (Vec<T>, Option<C>) {
    let mut page = Vec::new();
    let mut items = items.into_iter();
    for item in items.by_ref() {
        page.push(item);
        if page.len() == limit {
            break;
        }
    }
    let next = if page.len() == limit && items.next().is_some() {
        page.last().map(cursor_of)
    } else {
        None
    };
    (page, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_defaults_and_is_clamped() {
        assert_eq!(page_limit(None, 100, 1000), 100);
        assert_eq!(page_limit(Some(0), 100, 1000), 1);
        assert_eq!(page_limit(Some(5000), 100, 1000), 1000);
        assert_eq!(page_limit(Some(7), 100, 1000), 7);
    }

    /// Walking every page with every limit yields each item once, in order.
    #[test]
    fn pages_cover_every_item_once() {
        for n in 0..12u32 {
            let items: Vec<u32> = (0..n).map(|i| i * 3).collect();
            for limit in 1..=13 {
                let mut seen = Vec::new();
                let mut cursor: Option<u32> = None;
                let mut pages = 0;
                loop {
                    let rest = items
                        .iter()
                        .copied()
                        .filter(|x| cursor.is_none_or(|c| *x > c));
                    let (page, next) = take_page(rest, limit, |x| *x);
                    assert!(page.len() <= limit);
                    seen.extend(page);
                    pages += 1;
                    match next {
                        Some(c) => cursor = Some(c),
                        None => break,
                    }
                }
                assert_eq!(seen, items, "n {n} limit {limit}");
                // A full last page does not cost an extra empty round trip.
                assert_eq!(pages, (n as usize).div_ceil(limit).max(1));
            }
        }
    }
}
