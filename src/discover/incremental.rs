//! Incremental discovery: which candidates of today's chain need a contract-details request.
//!
//! A contract's conId does not change during its life, and from one week to the next a chain
//! changes only at its edges (new expiries listed, a few strikes added, expired ones gone). So
//! a candidate found in the newest earlier cache keeps its contract without a request; a
//! candidate the negative cache says answered 200 is not asked again until that check is older
//! than the re-check age, or at once when its expiry is new (not in the earlier cache: a new
//! listing brings new combinations); everything else is qualified. A seeded random sample of
//! the reused contracts is re-qualified to catch an earlier cache that is wrong.

use super::negative::{combo_key, ComboKey, NegativeCache};
use crate::cache::{ContractsCache, OptionContract};
use crate::ib::OptionSpec;
use chrono::NaiveDate;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// At least this many reused contracts per symbol are re-qualified (all when fewer), however
/// small the verification fraction.
pub const VERIFY_MIN_PER_SYMBOL: usize = 5;

/// How the candidates of one symbol split.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Split {
    /// Candidates kept from the earlier cache, with their contract.
    pub reused: Vec<OptionContract>,
    /// Candidates to qualify now.
    pub to_qualify: Vec<OptionSpec>,
    /// Known-missing candidates not asked again.
    pub known_missing_skipped: usize,
}

/// The [`ComboKey`] of a candidate.
pub fn spec_key(s: &OptionSpec) -> ComboKey {
    combo_key(&s.trading_class, s.expiry, s.right, s.strike)
}

/// The [`ComboKey`] of a cached contract.
pub fn contract_key(c: &OptionContract) -> ComboKey {
    combo_key(&c.trading_class, c.expiry, c.right, c.strike)
}

/// The newest cache of `symbol` in `dir` dated strictly before `date`, if any.
pub fn newest_earlier_cache(
    dir: &Path,
    symbol: &str,
    date: NaiveDate,
) -> Option<(NaiveDate, PathBuf)> {
    let entries = std::fs::read_dir(dir).ok()?;
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let (sym, d) = crate::compile::universe::parse_cache_name(&name)?;
            (sym == symbol && d < date).then(|| (d, e.path()))
        })
        .max_by_key(|(d, _)| *d)
}

/// Split today's candidates (already filtered) given the earlier cache and the negative cache.
pub fn split(
    cands: Vec<OptionSpec>,
    earlier: &ContractsCache,
    negative: &NegativeCache,
    date: NaiveDate,
    recheck_missing_after_days: u32,
) -> Split {
    let known: BTreeMap<ComboKey, &OptionContract> = earlier
        .contracts
        .iter()
        .map(|c| (contract_key(c), c))
        .collect();
    let known_expiries: BTreeSet<(&str, NaiveDate)> = earlier
        .contracts
        .iter()
        .map(|c| (c.trading_class.as_str(), c.expiry))
        .collect();
    let missing = negative.by_key();
    let mut out = Split::default();
    for spec in cands {
        let key = spec_key(&spec);
        if let Some(c) = known.get(&key) {
            out.reused.push((*c).clone());
            continue;
        }
        let skip = missing.get(&key).is_some_and(|m| {
            known_expiries.contains(&(spec.trading_class.as_str(), spec.expiry))
                && (date - m.checked).num_days() <= i64::from(recheck_missing_after_days)
        });
        if skip {
            out.known_missing_skipped += 1;
        } else {
            out.to_qualify.push(spec);
        }
    }
    out
}

/// A stable 64-bit mix (splitmix64), so the sample is the same on every build and platform.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn hash_str(seed: u64, s: &str) -> u64 {
    s.bytes().fold(mix(seed), |h, b| mix(h ^ u64::from(b)))
}

/// Number of reused contracts to re-qualify: `fraction` of them rounded up, at least
/// [`VERIFY_MIN_PER_SYMBOL`], at most all.
pub fn sample_size(reused: usize, fraction: f64) -> usize {
    let by_fraction = (reused as f64 * fraction.clamp(0.0, 1.0)).ceil() as usize;
    by_fraction.max(VERIFY_MIN_PER_SYMBOL).min(reused)
}

/// Indices into `reused` of the verification sample: a random choice seeded by symbol and date,
/// so the same run picks the same contracts (reproducible) and each week picks others.
pub fn verification_sample(
    reused: &[OptionContract],
    symbol: &str,
    date: NaiveDate,
    fraction: f64,
) -> Vec<usize> {
    let seed = hash_str(hash_str(0x0D15_C0DE, symbol), &date.to_string());
    let mut ranked: Vec<(u64, usize)> = reused
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let (tc, exp, right, strike) = contract_key(c);
            let h = hash_str(seed, &format!("{tc}|{exp}|{right}|{strike}"));
            (h, i)
        })
        .collect();
    ranked.sort_unstable();
    let mut idx: Vec<usize> = ranked
        .into_iter()
        .take(sample_size(reused.len(), fraction))
        .map(|(_, i)| i)
        .collect();
    idx.sort_unstable();
    idx
}

/// The request re-qualifying a cached contract by its description (not its conId, which is what
/// is checked).
pub fn spec_of(symbol: &str, c: &OptionContract) -> OptionSpec {
    OptionSpec {
        con_id: 0,
        local_symbol: String::new(),
        ..OptionSpec::of(symbol, c)
    }
}

/// A qualified contract as the cache stores it.
pub fn contract_of(s: OptionSpec) -> OptionContract {
    s.into_contract()
}

/// How a cached contract differs from the gateway's answer (`None`: no such contract now);
/// `None` when they agree in every field.
pub fn difference(cached: &OptionContract, now: Option<&OptionContract>) -> Option<String> {
    let Some(now) = now else {
        return Some(format!(
            "{} {} {} {} (conId {}): the gateway answers 200 (no such contract)",
            cached.trading_class, cached.expiry, cached.strike, cached.right, cached.con_id
        ));
    };
    if cached == now {
        return None;
    }
    let mut fields = Vec::new();
    let mut cmp = |name: &str, a: String, b: String| {
        if a != b {
            fields.push(format!("{name} {a} (cache) vs {b} (gateway)"));
        }
    };
    cmp("conId", cached.con_id.to_string(), now.con_id.to_string());
    cmp(
        "local symbol",
        cached.local_symbol.clone(),
        now.local_symbol.clone(),
    );
    cmp(
        "trading class",
        cached.trading_class.clone(),
        now.trading_class.clone(),
    );
    cmp("expiry", cached.expiry.to_string(), now.expiry.to_string());
    cmp("strike", cached.strike.to_string(), now.strike.to_string());
    cmp("right", cached.right.to_string(), now.right.to_string());
    cmp(
        "multiplier",
        cached.multiplier.to_string(),
        now.multiplier.to_string(),
    );
    cmp("exchange", cached.exchange.clone(), now.exchange.clone());
    cmp("currency", cached.currency.clone(), now.currency.clone());
    Some(format!(
        "{} {} {} {}: {}",
        cached.trading_class,
        cached.expiry,
        cached.strike,
        cached.right,
        fields.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::super::negative::{MissingEntry, NEGATIVE_FORMAT_VERSION};
    use super::*;
    use crate::cache::{Right, Underlying, CACHE_FORMAT_VERSION};

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn spec(exp: &str, strike: f64, right: Right) -> OptionSpec {
        OptionSpec {
            symbol: "AAPL".into(),
            con_id: 0,
            local_symbol: String::new(),
            trading_class: "AAPL".into(),
            expiry: d(exp),
            strike,
            right,
            multiplier: 100.0,
            exchange: "SMART".into(),
            currency: "USD".into(),
        }
    }

    fn contract(exp: &str, strike: f64, right: Right, con_id: i64) -> OptionContract {
        let mut c = contract_of(spec(exp, strike, right));
        c.con_id = con_id;
        c.local_symbol = format!("L{con_id}");
        c
    }

    fn cache(contracts: Vec<OptionContract>) -> ContractsCache {
        ContractsCache {
            format_version: CACHE_FORMAT_VERSION,
            as_of: d("2026-11-20"),
            underlying: Underlying {
                symbol: "AAPL".into(),
                con_id: 1,
                sec_type: Default::default(),
                currency: "USD".into(),
                primary_exchange: None,
                reference_close: None,
                reference_close_date: None,
                reference_close_source: None,
            },
            contracts,
            class_hours: Vec::new(),
        }
    }

    fn missing(exp: &str, strike: f64, right: Right, checked: &str) -> MissingEntry {
        MissingEntry {
            trading_class: "AAPL".into(),
            expiry: d(exp),
            strike,
            right,
            checked: d(checked),
        }
    }

    #[test]
    fn reuses_known_skips_fresh_misses_and_asks_the_rest() {
        let earlier = cache(vec![
            contract("2026-12-18", 100.0, Right::C, 11),
            contract("2026-11-27", 100.0, Right::C, 10),
        ]);
        let neg = NegativeCache {
            format_version: NEGATIVE_FORMAT_VERSION,
            symbol: "AAPL".into(),
            missing: vec![
                // Checked 7 days ago: not older than 7 days, skipped.
                missing("2026-12-18", 101.0, Right::C, "2026-11-20"),
                // Checked 8 days ago: re-checked.
                missing("2026-12-18", 102.0, Right::C, "2026-11-19"),
                // Its expiry is new in the chain (not in the earlier cache): asked.
                missing("2027-01-15", 100.0, Right::C, "2026-11-26"),
            ],
        };
        let cands = vec![
            spec("2026-12-18", 100.0, Right::C),
            spec("2026-12-18", 101.0, Right::C),
            spec("2026-12-18", 102.0, Right::C),
            spec("2026-12-18", 100.0, Right::P),
            spec("2027-01-15", 100.0, Right::C),
        ];
        let s = split(cands, &earlier, &neg, d("2026-11-27"), 7);
        assert_eq!(s.reused, vec![contract("2026-12-18", 100.0, Right::C, 11)]);
        assert_eq!(s.known_missing_skipped, 1);
        let asked: Vec<_> = s.to_qualify.iter().map(spec_key).collect();
        assert_eq!(
            asked,
            vec![
                spec_key(&spec("2026-12-18", 102.0, Right::C)),
                spec_key(&spec("2026-12-18", 100.0, Right::P)),
                spec_key(&spec("2027-01-15", 100.0, Right::C)),
            ]
        );
    }

    #[test]
    fn sample_is_deterministic_sized_and_varies_with_the_date() {
        let reused: Vec<_> = (0..1000)
            .map(|i| contract("2026-12-18", f64::from(i), Right::C, i64::from(i)))
            .collect();
        let a = verification_sample(&reused, "AAPL", d("2026-11-27"), 0.01);
        assert_eq!(a.len(), 10);
        assert_eq!(
            a,
            verification_sample(&reused, "AAPL", d("2026-11-27"), 0.01)
        );
        assert_ne!(
            a,
            verification_sample(&reused, "AAPL", d("2026-12-04"), 0.01)
        );
        assert_ne!(
            a,
            verification_sample(&reused, "MSFT", d("2026-11-27"), 0.01)
        );
        assert_eq!(sample_size(3, 0.01), 3);
        assert_eq!(sample_size(100, 0.01), VERIFY_MIN_PER_SYMBOL);
        assert_eq!(sample_size(100, 1.0), 100);
        assert_eq!(
            verification_sample(&reused, "AAPL", d("2026-11-27"), 1.0).len(),
            1000
        );
    }

    #[test]
    fn differences_name_the_fields() {
        let a = contract("2026-12-18", 100.0, Right::C, 11);
        assert_eq!(difference(&a, Some(&a)), None);
        let mut b = a.clone();
        b.con_id = 12;
        let msg = difference(&a, Some(&b)).unwrap();
        assert!(msg.contains("conId 11 (cache) vs 12 (gateway)"), "{msg}");
        assert!(difference(&a, None).unwrap().contains("200"));
    }

    #[test]
    fn newest_earlier_cache_is_strictly_before_the_date() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "AAPL_2026-11-13.json",
            "AAPL_2026-11-20.json",
            "AAPL_2026-11-27.json",
            "AAPL.missing.json",
            "AAPLX_2026-11-26.json",
        ] {
            std::fs::write(dir.path().join(name), "{}").unwrap();
        }
        let (date, path) = newest_earlier_cache(dir.path(), "AAPL", d("2026-11-27")).unwrap();
        assert_eq!(date, d("2026-11-20"));
        assert!(path.ends_with("AAPL_2026-11-20.json"));
        assert_eq!(
            newest_earlier_cache(dir.path(), "AAPL", d("2026-11-13")),
            None
        );
    }
}
