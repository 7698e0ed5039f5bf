//! Work split over the machine's cores with scoped threads, order kept.
//!
//! Why not a thread pool crate: the callers (resume checks, coverage log parsing, the lake
//! index) each run one batch at start-up or at the end of a run; a scope per batch is enough.

/// `f` applied to `items` in chunks of at least `min_chunk`, one thread per chunk up to the
/// number of cores; the results in the items' order. A chunk whose thread panicked gives
/// `on_panic(chunk)` instead, so one bad item never takes the batch down.
pub fn map_chunks<T, R, F, P>(items: &[T], min_chunk: usize, f: F, on_panic: P) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&[T]) -> Vec<R> + Sync,
    P: Fn(&[T]) -> Vec<R>,
{
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = items.len().div_ceil(threads).max(min_chunk).max(1);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(per_thread)
            .map(|chunk| (chunk, scope.spawn(move || f(chunk))))
            .collect();
        handles
            .into_iter()
            .flat_map(|(chunk, h)| h.join().unwrap_or_else(|_| on_panic(chunk)))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::map_chunks;

    #[test]
    fn keeps_order_and_survives_a_panicking_chunk() {
        let items: Vec<u32> = (0..10_000).collect();
        let doubled = map_chunks(
            &items,
            100,
            |c| c.iter().map(|x| x * 2).collect(),
            |_| vec![],
        );
        assert_eq!(doubled, items.iter().map(|x| x * 2).collect::<Vec<_>>());
        let marked = map_chunks(
            &items,
            5_000,
            |c| {
                assert!(c[0] != 5_000, "boom");
                c.to_vec()
            },
            |c| vec![u32::MAX; c.len()],
        );
        assert_eq!(marked.len(), items.len());
        if std::thread::available_parallelism().map_or(1, |n| n.get()) > 1 {
            assert_eq!(marked[4_999], 4_999);
            assert_eq!(marked[5_000], u32::MAX);
        }
    }
}
