//! Where a node's memory goes: the live heap of each part of the replica's `State` (measured
//! with the counting allocator by cloning the part: a `BTreeMap` clone copies its nodes as they
//! are, so the clone costs what the part holds), SQLite's own heap, glibc's free-but-kept
//! bytes, and the kernel's split of RSS into anonymous and file-backed pages.

use super::alloc::live_bytes;
use crate::domain::State;

/// Live heap bytes of `f`'s result while it lives (0 without the counting allocator).
fn cost<T>(f: impl FnOnce() -> T) -> i64 {
    let before = live_bytes().unwrap_or(0);
    let held = f();
    let after = live_bytes().unwrap_or(0);
    drop(held);
    after - before
}

/// Heap bytes per part of `state`, biggest first; "other" is the rest of a whole clone.
pub fn by_part(state: &State) -> Vec<(&'static str, i64)> {
    let mut parts = vec![
        ("catalog", cost(|| state.catalog.clone())),
        ("price_log", cost(|| state.price_log.clone())),
        ("stock", cost(|| state.stock.clone())),
        ("orders", cost(|| state.orders.clone())),
        ("orders_by_line", cost(|| state.orders_by_line.clone())),
        ("sales", cost(|| state.sales.clone())),
        ("carts", cost(|| state.carts.clone())),
        ("customers", cost(|| state.customers.clone())),
    ];
    let named: i64 = parts.iter().map(|(_, b)| b).sum();
    let whole = cost(|| state.clone());
    parts.push(("other", whole - named));
    parts.sort_by_key(|(_, b)| std::cmp::Reverse(*b));
    parts
}

/// Bytes SQLite holds on its own heap (page caches, schemas, statements), process-wide.
pub fn sqlite_bytes() -> i64 {
    // SAFETY: `sqlite3_memory_used` only reads SQLite's memory statistics counter.
    unsafe { rusqlite::ffi::sqlite3_memory_used() }
}

/// Bytes glibc holds free in its arenas (`fordblks`) and its total arena size, when known.
pub fn malloc_free_and_arena_bytes() -> Option<(u64, u64)> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `mallinfo2` only reads glibc's allocator statistics.
        let info = unsafe { libc::mallinfo2() };
        Some((info.fordblks as u64, (info.arena + info.hblkhd) as u64))
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    None
}

/// Anonymous and file-backed resident bytes (`RssAnon`, `RssFile` in /proc/self/status).
pub fn rss_anon_and_file_bytes() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    };
    Some((field("RssAnon:")?, field("RssFile:")?))
}

/// Resident bytes of the main malloc arena (the `[heap]` mapping) and of the other anonymous
/// mappings (thread arenas, large allocations, stacks), from /proc/self/smaps.
pub fn rss_heap_and_other_anon_bytes() -> Option<(u64, u64)> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
    let (mut heap, mut other) = (0u64, 0u64);
    let mut current: Option<bool> = None; // Some(is_heap) for anonymous mappings
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or_default();
        if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            let path = line.split_whitespace().nth(5);
            current = match path {
                None => Some(false),
                Some("[heap]") => Some(true),
                Some(_) => None,
            };
        } else if first == "Rss:" {
            let kb: u64 = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
            match current {
                Some(true) => heap += kb * 1024,
                Some(false) => other += kb * 1024,
                None => {}
            }
        }
    }
    Some((heap, other))
}
