//! Deterministic randomness and option pricing for the synthetic market.
//!
//! Everything random in the market is a pure function of the seed and of what is being asked
//! (symbol, date, conId, minute), via a splitmix-style hash, so the same request gives the same
//! bars on every run and in every order.

/// Mix a seed with several keys into a well-distributed 64-bit value (splitmix64 rounds).
pub fn hash(seed: u64, keys: &[u64]) -> u64 {
    let mut x = seed ^ 0x9E37_79B9_7F4A_7C15;
    for k in keys {
        x = splitmix(x ^ k.wrapping_mul(0xD6E8_FEB8_6659_FD93));
    }
    splitmix(x)
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Uniform in [0, 1) from a hash.
pub fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Hash of a string, for keying by symbol.
pub fn str_key(s: &str) -> u64 {
    s.bytes().fold(0xCBF2_9CE4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3)
    })
}

/// Standard normal draw from two uniforms (Box-Muller).
pub fn normal(u1: f64, u2: f64) -> f64 {
    let u1 = u1.max(1e-300);
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Standard normal CDF (Abramowitz-Stegun 7.1.26 erf, error below 1.5e-7).
pub fn norm_cdf(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-z * z).exp();
    if x >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

/// Volatility with a simple smile: higher away from the money.
pub fn smile_vol(vol: f64, spot: f64, strike: f64) -> f64 {
    vol * (1.0 + 0.8 * (strike / spot).ln().abs())
}

/// Black-Scholes price of a European option; `t` in years (intrinsic value at or after expiry).
pub fn black_scholes(call: bool, spot: f64, strike: f64, t: f64, rate: f64, vol: f64) -> f64 {
    if t <= 0.0 || vol <= 0.0 || spot <= 0.0 || strike <= 0.0 {
        return if call {
            (spot - strike).max(0.0)
        } else {
            (strike - spot).max(0.0)
        };
    }
    let sq = vol * t.sqrt();
    let d1 = ((spot / strike).ln() + (rate + 0.5 * vol * vol) * t) / sq;
    let d2 = d1 - sq;
    let disc = (-rate * t).exp();
    if call {
        spot * norm_cdf(d1) - strike * disc * norm_cdf(d2)
    } else {
        strike * disc * norm_cdf(-d2) - spot * norm_cdf(-d1)
    }
}

/// Probability that an option trades in a given minute: `liquidity` near the money, falling as
/// a Gaussian of the distance from the money in standard deviations to expiry, and falling with
/// time to expiry.
pub fn trade_probability(liquidity: f64, vol: f64, spot: f64, strike: f64, t_years: f64) -> f64 {
    let t = t_years.max(2.0 / 365.0);
    let d = (strike / spot).ln().abs() / (vol * t.sqrt());
    liquidity * (-1.5 * d * d).exp() / (1.0 + 1.5 * t_years.max(0.0))
}

/// An upper bound of [`trade_probability`] for any spot and strike, computed with the same
/// floating-point operations (the moneyness factor `exp(-1.5 d^2)` is at most 1 and rounding is
/// monotonic), so `u >= bound` proves `u >= trade_probability(..)` without the logarithm and
/// exponential (a negative liquidity never trades: minus infinity).
pub fn trade_probability_bound(liquidity: f64, t_years: f64) -> f64 {
    if liquidity < 0.0 {
        return f64::NEG_INFINITY;
    }
    liquidity / (1.0 + 1.5 * t_years.max(0.0))
}

/// Round to a price increment.
pub fn round_to(x: f64, tick: f64) -> f64 {
    ((x / tick).round() * tick * 1e6).round() / 1e6
}

/// Bid-ask spread of an option quote: a cent plus 3% of the price, capped at 50 cents.
pub fn spread(mid: f64) -> f64 {
    (0.01 + 0.03 * mid).min(0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdf_and_parity() {
        assert!((norm_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((norm_cdf(1.96) - 0.975).abs() < 1e-3);
        let (s, k, t, r, v) = (100.0, 105.0, 0.5, 0.04, 0.3);
        let c = black_scholes(true, s, k, t, r, v);
        let p = black_scholes(false, s, k, t, r, v);
        assert!((c - p - (s - k * (-r * t).exp())).abs() < 1e-6);
        assert!(c > 0.0 && p > 0.0);
    }

    #[test]
    fn hashing_is_stable() {
        assert_eq!(hash(1, &[2, 3]), hash(1, &[2, 3]));
        assert_ne!(hash(1, &[2, 3]), hash(1, &[3, 2]));
        let u = unit(hash(7, &[1]));
        assert!((0.0..1.0).contains(&u));
    }

    #[test]
    fn trade_probability_bound_is_never_below_the_probability() {
        for liquidity in [0.0, 0.15, 0.8, 1.0] {
            for years in [-0.1, 0.0, 0.001, 0.05, 0.5, 2.0] {
                let bound = trade_probability_bound(liquidity, years);
                for spot in [1.0, 50.0, 99.999, 100.0, 100.001, 400.0] {
                    for vol in [0.05, 0.3, 1.5] {
                        let p = trade_probability(liquidity, vol, spot, 100.0, years);
                        assert!(
                            p <= bound,
                            "{liquidity} {years} {spot} {vol}: {p} > {bound}"
                        );
                    }
                }
                // At the money the factor is exactly 1: the bound is reached.
                let atm = trade_probability(liquidity, 0.3, 100.0, 100.0, years);
                assert_eq!(atm, bound);
            }
        }
    }

    #[test]
    fn far_otm_trades_less() {
        let near = trade_probability(0.8, 0.3, 100.0, 100.0, 0.1);
        let far = trade_probability(0.8, 0.3, 100.0, 160.0, 0.1);
        assert!(near > 0.5 && far < 0.001, "{near} {far}");
    }
}
