//! Deterministic sharding of the universe by symbol, so that `--batch-count N` runs can split a
//! universe across machines or nights and every symbol's tasks live in exactly one shard.
//!
//! The rule is pinned (changing it would move symbols between shards and break resumed runs):
//! shard = (first 8 bytes of SHA-256(symbol's UTF-8 bytes) as a big-endian u64) mod batch-count.

use crate::plan::Batching;
use sha2::{Digest, Sha256};

/// The shard of `symbol` among `count` shards (`count` 0 is treated as 1).
pub fn shard_of(symbol: &str, count: u32) -> u32 {
    let digest = Sha256::digest(symbol.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let h = u64::from_be_bytes(first);
    (h % u64::from(count.max(1))) as u32
}

/// True when `symbol` belongs to the shard `batching` selects.
pub fn in_shard(symbol: &str, batching: Batching) -> bool {
    shard_of(symbol, batching.count) == batching.index
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pinned_values() {
        // These must never change: resumed runs rely on them.
        assert_eq!(shard_of("AAPL", 1), 0);
        let pinned: Vec<u32> = ["AAPL", "SPY", "TSLA", "BRK B"]
            .iter()
            .map(|s| shard_of(s, 7))
            .collect();
        let again: Vec<u32> = ["AAPL", "SPY", "TSLA", "BRK B"]
            .iter()
            .map(|s| {
                let d = Sha256::digest(s.as_bytes());
                (u64::from_be_bytes(d[..8].try_into().unwrap()) % 7) as u32
            })
            .collect();
        assert_eq!(pinned, again);
    }

    proptest! {
        #[test]
        fn shards_are_disjoint_and_cover(
            symbols in proptest::collection::btree_set("[A-Z]{1,5}", 1..60),
            count in 1u32..9,
        ) {
            let mut seen = std::collections::BTreeMap::new();
            for index in 0..count {
                let b = Batching { count, index };
                for s in symbols.iter().filter(|s| in_shard(s, b)) {
                    prop_assert!(seen.insert(s.clone(), index).is_none(), "{} in two shards", s);
                }
            }
            prop_assert_eq!(seen.len(), symbols.len());
        }
    }
}
