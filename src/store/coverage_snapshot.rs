//! The coverage index's compact form: one binary snapshot per shard, written when the shard's
//! JSONL log is compacted, holding every file's entry with its session runs already resolved to
//! calendar ordinals.
//!
//! Why: resume reads the whole index before the first request. Parsing half a million JSON lines
//! and then each record's JSON again (to turn session dates into ordinals) cost seconds; the
//! snapshot is read with one sequential pass and no parsing beyond lengths. The ordinals are only
//! valid under the session table they were computed with, so the snapshot carries the table's
//! fingerprint; under another table the runs are recomputed from the records (kept as text).
//!
//! Layout (little-endian): magic `OBCOVSN2`, table fingerprint `u64`, entry count `u64`, then per
//! entry: path (`u32` length + UTF-8), fingerprint flag `u8` (+ size `u64`, mtime ns `u128`),
//! recorded-at ms `i64`, record (`u32` length + UTF-8), runs flag `u8` (1: a record; + `u32`
//! count + count x (`u32`, `u32`)), and at the end a word-wise FNV-1a of everything before it. A snapshot
//! that fails any check is ignored as a whole: a lost snapshot only costs file reads and requests.

use crate::store::coverage::FinalRuns;
use crate::store::coverage_index::Fingerprint;

const MAGIC: &[u8; 8] = b"OBCOVSN2";

/// One file's entry as the snapshot stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotEntry {
    /// File path relative to the scope's bar directory.
    pub path: String,
    /// The file's fingerprint when recorded (None: no file).
    pub fp: Option<Fingerprint>,
    /// When recorded, ms since the epoch.
    pub at: i64,
    /// The encoded coverage record.
    pub cov: String,
    /// The record's final session runs (None: the record does not decode).
    pub runs: Option<FinalRuns>,
}

/// Why a snapshot was not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// Not a snapshot of this version.
    #[error("not a coverage snapshot (bad magic or version)")]
    Magic,
    /// Shorter than its contents say, or the checksum disagrees.
    #[error("truncated or corrupt at byte {0}")]
    Corrupt(usize),
}

/// FNV-1a's step over 8-byte words (the tail zero-padded, the length mixed in last): a checksum
/// for torn or damaged files, not a defence against tampering. Word-wise because resume reads
/// ~90 MB of snapshot for half a million files and a byte-wise loop cost a tenth of a second.
/// Each step is a bijection of the state, so any one changed word changes the result.
fn fnv(bytes: &[u8]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut chunks = bytes.chunks_exact(8);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        h = (h ^ w).wrapping_mul(PRIME).rotate_left(29);
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = (h ^ u64::from_le_bytes(tail)).wrapping_mul(PRIME);
    (h ^ bytes.len() as u64).wrapping_mul(PRIME)
}

/// Encode `entries` under the session table `table`.
pub fn encode(entries: &[SnapshotEntry], table: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + entries.len() * 128);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&table.to_le_bytes());
    out.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    let put_str = |out: &mut Vec<u8>, s: &str| {
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    };
    for e in entries {
        put_str(&mut out, &e.path);
        match e.fp {
            Some(fp) => {
                out.push(1);
                out.extend_from_slice(&fp.len.to_le_bytes());
                out.extend_from_slice(&fp.mtime_ns.to_le_bytes());
            }
            None => out.push(0),
        }
        out.extend_from_slice(&e.at.to_le_bytes());
        put_str(&mut out, &e.cov);
        match &e.runs {
            Some(runs) => {
                out.push(1);
                out.extend_from_slice(&(runs.runs().len() as u32).to_le_bytes());
                for (a, b) in runs.runs() {
                    out.extend_from_slice(&a.to_le_bytes());
                    out.extend_from_slice(&b.to_le_bytes());
                }
            }
            None => out.push(0),
        }
    }
    let sum = fnv(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SnapshotError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or(SnapshotError::Corrupt(self.at))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let at = self.at;
        self.take(N)?
            .try_into()
            .map_err(|_| SnapshotError::Corrupt(at))
    }
    fn u8(&mut self) -> Result<u8, SnapshotError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, SnapshotError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, SnapshotError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn string(&mut self) -> Result<String, SnapshotError> {
        let at = self.at;
        let n = self.u32()? as usize;
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| SnapshotError::Corrupt(at))
    }
}

/// Decode a snapshot. Runs stored under a table other than `table` are dropped (`runs: None`
/// for every entry; the caller recomputes them from the records).
pub fn decode(bytes: &[u8], table: u64) -> Result<Vec<SnapshotEntry>, SnapshotError> {
    if bytes.len() < 32 || &bytes[..8] != MAGIC {
        return Err(SnapshotError::Magic);
    }
    let (body, sum) = bytes.split_at(bytes.len() - 8);
    if fnv(body) != u64::from_le_bytes(sum.try_into().map_err(|_| SnapshotError::Corrupt(0))?) {
        return Err(SnapshotError::Corrupt(body.len()));
    }
    let mut r = Reader { bytes: body, at: 8 };
    let same_table = r.u64()? == table;
    let count = r.u64()?;
    // Every entry takes at least 22 bytes: a count beyond that is corruption, not a reason to
    // reserve memory.
    if count > (body.len() / 22) as u64 {
        return Err(SnapshotError::Corrupt(16));
    }
    let mut out = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let path = r.string()?;
        let fp = match r.u8()? {
            0 => None,
            _ => Some(Fingerprint {
                len: r.u64()?,
                mtime_ns: u128::from_le_bytes(r.array()?),
            }),
        };
        let at = i64::from_le_bytes(r.array()?);
        let cov = r.string()?;
        let runs = match r.u8()? {
            0 => None,
            _ => {
                let n = r.u32()? as usize;
                let pairs = r.take(n.checked_mul(8).ok_or(SnapshotError::Corrupt(r.at))?)?;
                let runs: Vec<(u32, u32)> = pairs
                    .chunks_exact(8)
                    .map(|c| {
                        let a = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                        let b = u32::from_le_bytes([c[4], c[5], c[6], c[7]]);
                        (a, b)
                    })
                    .collect();
                Some(FinalRuns::from_sorted(runs))
            }
        };
        out.push(SnapshotEntry {
            path,
            fp,
            at,
            cov,
            runs: if same_table { runs } else { None },
        });
    }
    if r.at != body.len() {
        return Err(SnapshotError::Corrupt(r.at));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> Vec<SnapshotEntry> {
        vec![
            SnapshotEntry {
                path: "SPY/1/TRADES/8_hours.parquet".into(),
                fp: Some(Fingerprint {
                    len: 1234,
                    mtime_ns: 1_764_000_000_123_456_789,
                }),
                at: 1_764_000_000_000,
                cov: r#"{"v":1,"s":[]}"#.into(),
                runs: Some(FinalRuns::from_sorted(vec![(3, 9), (12, 12)])),
            },
            SnapshotEntry {
                path: "AAPL/2/TRADES/1_min.parquet".into(),
                fp: None,
                at: -1,
                cov: "garbage".into(),
                runs: None,
            },
        ]
    }

    #[test]
    fn round_trips_and_drops_runs_of_another_table() {
        let bytes = encode(&entries(), 42);
        assert_eq!(decode(&bytes, 42).unwrap(), entries());
        let other = decode(&bytes, 43).unwrap();
        assert!(other.iter().all(|e| e.runs.is_none()));
        assert_eq!(other[0].cov, entries()[0].cov);
    }

    #[test]
    fn every_truncation_and_flipped_byte_is_refused() {
        let bytes = encode(&entries(), 7);
        for n in 0..bytes.len() {
            assert!(decode(&bytes[..n], 7).is_err(), "truncated to {n}");
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x20;
            assert!(decode(&b, 7).is_err(), "byte {i} flipped");
        }
        assert_eq!(
            decode(b"OBCOVSN0........................", 7),
            Err(SnapshotError::Magic)
        );
    }
}
