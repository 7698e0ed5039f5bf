//! Real `ib_insync` (text protocol) against the simulator, checked against the real `ibapi`
//! client (protobuf) on the same server: the team's Python code and the Rust tool see one market.
//!
//! The interpreter is `$OPT_BACKFILL_PYTHON`, else `.venv-ci/bin/python` at the repository root
//! (`.ci/run` creates it and installs `ib_insync==0.9.86`). Without either, or without
//! `ib_insync` in the fallback venv, the test prints why and passes without running; a
//! `$OPT_BACKFILL_PYTHON` that cannot import `ib_insync` is a failure (it was asked for).
//! `IB_PROBE_MODULE=ib_async` runs the same probe with `ib_async` instead (version 178).

use super::support::*;
use ibapi::prelude::*;
use opt_backfill::cache::Right;
use opt_backfill::calendar;
use opt_backfill::sim::{Market, Scenario};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The Python client module the probe drives (`ib_insync` unless `IB_PROBE_MODULE` says).
fn module() -> String {
    std::env::var("IB_PROBE_MODULE").unwrap_or_else(|_| "ib_insync".into())
}

/// The interpreter to use, or `None` (with the reason printed) to skip.
fn python() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (py, explicit) = match std::env::var_os("OPT_BACKFILL_PYTHON") {
        Some(p) => (PathBuf::from(p), true),
        None => (root.join(".venv-ci/bin/python"), false),
    };
    if !explicit && !py.exists() {
        println!(
            "SKIPPED sim::python: no Python with ib_insync (set OPT_BACKFILL_PYTHON, or run .ci/run \
             which creates .venv-ci with ib_insync==0.9.86)"
        );
        return None;
    }
    let ok = std::process::Command::new(&py)
        .args(["-c", &format!("import {}", module())])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        assert!(
            !explicit,
            "OPT_BACKFILL_PYTHON={} cannot import {}",
            py.display(),
            module()
        );
        println!(
            "SKIPPED sim::python: {} cannot import {} (pip install ib_insync==0.9.86)",
            py.display(),
            module()
        );
        return None;
    }
    Some(py)
}

/// Epoch, OHLC and volume of an `ibapi` bar, in the probe's row shape.
fn row(b: &ibapi::market_data::historical::Bar) -> Vec<f64> {
    vec![epoch(b) as f64, b.open, b.high, b.low, b.close, b.volume]
}

fn rows(v: &Value) -> Vec<Vec<f64>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect()
}

fn codes(v: &Value) -> Vec<i64> {
    v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e[1].as_i64().unwrap())
        .collect()
}

/// A far out-of-the-money call, listed before today: no trades in one session (162 no data).
fn far_otm(m: &Market, symbol: &str) -> i64 {
    let spot = m.close(symbol, m.today()).unwrap();
    m.existing_contracts(symbol)
        .into_iter()
        .filter(|x| x.right == Right::C && x.listing < m.today())
        .max_by(|a, b| {
            (a.strike / spot)
                .total_cmp(&(b.strike / spot))
                .then(b.expiry.cmp(&a.expiry))
        })
        .unwrap()
        .con_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ib_insync_gets_what_ibapi_gets() {
    let Some(py) = python() else { return };
    let h = server("realistic").await;
    let m = h.market();
    let c = near_atm(&m, "AAPL");
    let under = m.underlying("AAPL").unwrap().con_id;
    let mut earlier = Scenario::preset("realistic").unwrap();
    earlier.today = chrono::NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
    let expired = Market::from_scenario(&earlier)
        .existing_contracts("AAPL")
        .into_iter()
        .find(|x| x.expiry < m.today())
        .unwrap();
    // The 30 mins window ends at the close of the session before `today`.
    let prev = calendar::sessions_between(m.today() - chrono::Duration::days(7), m.today())
        .unwrap()
        .into_iter()
        .rev()
        .find(|s| s.close < m.now())
        .unwrap()
        .close;
    let end_text = format!("{} UTC", prev.format("%Y%m%d %H:%M:%S"));
    let expiry = c.expiry.format("%Y%m%d").to_string();
    let spec = json!({
        "client_id": 21,
        "symbol": "AAPL",
        "under_con_id": under,
        "option": {"expiry": expiry, "strike": c.strike, "right": c.right.as_str()},
        "missing": {"expiry": expiry, "strike": c.strike + 0.37, "right": c.right.as_str()},
        "no_data_con_id": far_otm(&m, "AAPL"),
        "expired_con_id": expired.con_id,
        "end": end_text,
    });
    let probe = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/ib_insync_probe.py");
    let run = tokio::process::Command::new(&py)
        .arg(&probe)
        .arg(h.addr().ip().to_string())
        .arg(h.addr().port().to_string())
        .arg(spec.to_string())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("probe timed out")
        .expect("probe did not start");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "probe failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let r: Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap();
    println!(
        "{} probe: connect {:.1} ms, {} 8-hour and {} 30-min bars",
        module(),
        r["connect_secs"].as_f64().unwrap() * 1e3,
        r["bars_8h"].as_array().unwrap().len(),
        r["bars_30m"].as_array().unwrap().len()
    );

    // Connect: milliseconds (every list IB.connect waits for is answered at once).
    assert!(r["connect_secs"].as_f64().unwrap() < 1.0, "{r}");
    let version = if module() == "ib_async" { 178 } else { 176 };
    assert_eq!(r["server_version"], version);
    assert_eq!(r["accounts"], json!(["DU1234567"]));
    assert_eq!(r["log_errors"], json!([]));

    // Option chain: one message per exchange x trading class, as the market defines it.
    let chain = m.chain("AAPL").unwrap();
    let got = r["chain"].as_array().unwrap();
    assert_eq!(got.len(), chain.exchanges.len() * chain.classes.len());
    let smart = got.iter().find(|x| x["exchange"] == "SMART").unwrap();
    let class = &chain.classes[0];
    assert_eq!(smart["underlyingConId"], under);
    assert_eq!(smart["tradingClass"], class.trading_class.as_str());
    let exps: Vec<String> = class
        .expirations
        .iter()
        .map(|d| d.format("%Y%m%d").to_string())
        .collect();
    assert_eq!(smart["expirations"], json!(exps));
    assert_eq!(smart["strikes"], json!(class.strikes));

    // qualifyContracts: the existing option resolves to its conId, the missing one is dropped.
    let q = r["qualified"].as_array().unwrap();
    assert_eq!(q.len(), 1, "{r}");
    assert_eq!(q[0]["conId"], c.con_id);
    assert_eq!(q[0]["localSymbol"], c.local_symbol.as_str());
    assert_eq!(q[0]["expiry"], expiry.as_str());
    assert_eq!(q[0]["multiplier"], "100");
    assert!(r["all_errors"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e[1] == 200));
    let d = &r["details"][0];
    assert_eq!(d["underConId"], under);
    assert_eq!(d["timeZoneId"], "US/Eastern");
    assert_eq!(
        r["head_timestamp"].as_i64().unwrap(),
        m.head_timestamp(c.con_id).unwrap().timestamp()
    );

    // Bars: the same request through the real ibapi client on the same server.
    let cl = client(&h, 22).await;
    let h8 = cl
        .historical_data(&by_id(c.con_id), HistoricalBarSize::Hour8)
        .duration(1.months())
        .what_to_show(HistoricalWhatToShow::MidPoint)
        .trading_hours(TradingHours::Regular)
        .fetch()
        .await
        .unwrap();
    let want: Vec<Vec<f64>> = h8.bars.iter().map(row).collect();
    assert!(!want.is_empty());
    assert_eq!(rows(&r["bars_8h"]), want, "8 hours bars (formatDate 2)");
    let m30 = cl
        .historical_data(&by_id(c.con_id), HistoricalBarSize::Min30)
        .duration(5.days())
        .ending(at(prev))
        .what_to_show(HistoricalWhatToShow::Trades)
        .trading_hours(TradingHours::Regular)
        .fetch()
        .await
        .unwrap();
    let want: Vec<Vec<f64>> = m30.bars.iter().map(row).collect();
    assert!(!want.is_empty());
    assert_eq!(
        rows(&r["bars_30m"]),
        want,
        "30 mins bars (formatDate 1, US/Eastern)"
    );
    assert_eq!(r["bars_30m_tz"], "US/Eastern");

    // Errors: no data (162, an empty result), expired (200), cancel (162 query cancelled).
    assert_eq!(r["no_data"]["bars"], 0);
    assert_eq!(codes(&r["no_data"]), [162]);
    assert!(r["no_data"]["errors"][0][2]
        .as_str()
        .unwrap()
        .contains("HMDS query returned no data"));
    assert_eq!(r["expired"]["bars"], 0);
    assert_eq!(codes(&r["expired"]), [200]);
    assert_eq!(r["cancel"]["bars"], 0);
    assert_eq!(codes(&r["cancel"]), [162]);
    let id = r["cancel"]["req_id"].as_i64().unwrap();
    assert_eq!(
        r["cancel"]["errors"][0][2].as_str().unwrap(),
        format!("Historical Market Data Service error message:API historical data query cancelled: {id}")
    );
    let log = h.historical_log();
    assert!(log.iter().any(|x| x.outcome == "cancelled"), "{log:?}");
    assert_eq!(
        h.counters().malformed_frames,
        0,
        "every text message decoded"
    );
}

/// Text frames as `ib_insync` writes them: NUL-terminated fields behind a `u32 BE` length.
fn text_frame(fields: &[&str]) -> Vec<u8> {
    let mut body = Vec::new();
    for f in fields {
        body.extend_from_slice(f.as_bytes());
        body.push(0);
    }
    let mut v = (body.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(&body);
    v
}

/// The fields of the next text frame.
async fn read_text(s: &mut tokio::net::TcpStream) -> Vec<String> {
    use tokio::io::AsyncReadExt;
    let mut len = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut len))
        .await
        .expect("no frame within 5 s")
        .unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).await.unwrap();
    let mut f: Vec<String> = String::from_utf8(body)
        .unwrap()
        .split('\0')
        .map(str::to_string)
        .collect();
    f.pop();
    f
}

/// Without Python: a raw text client gets the connect-time answers, and garbage, truncated and
/// unknown messages are counted and ignored while the connection goes on being served.
#[tokio::test]
async fn a_raw_text_client_survives_garbage_and_unknown_messages() {
    use tokio::io::AsyncWriteExt;
    let h = server("fast").await;
    let mut s = tokio::net::TcpStream::connect(h.addr()).await.unwrap();
    s.write_all(b"API\0").await.unwrap();
    let hs = b"v157..176";
    s.write_all(&(hs.len() as u32).to_be_bytes()).await.unwrap();
    s.write_all(hs).await.unwrap();
    let ack = read_text(&mut s).await;
    assert_eq!(ack.len(), 2, "{ack:?}");
    assert_eq!(ack[0], "176");
    s.write_all(&text_frame(&["71", "2", "5", ""]))
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..5 {
        got.push(read_text(&mut s).await);
    }
    assert_eq!(got[0], ["9", "1", "1"]);
    assert_eq!(got[1], ["15", "1", "DU1234567"]);
    assert_eq!(
        got[2],
        [
            "4",
            "2",
            "-1",
            "2104",
            "Market data farm connection is OK:usfarm",
            ""
        ]
    );
    // Garbage: not UTF-8, no message id, an unknown id, a served id cut short.
    for f in [
        vec![0xffu8, 0xfe, 0x00],
        text_frame(&["abc"]),
        text_frame(&["999", "1"]),
        text_frame(&["59", "1", "3"]),
        text_frame(&["20", "1"]),
        text_frame(&["9", "8"]),
        Vec::new(),
    ] {
        let mut framed = (f.len() as u32).to_be_bytes().to_vec();
        framed.extend_from_slice(&f);
        s.write_all(&framed).await.unwrap();
    }
    // Still served: the lists IB.connect waits for, then the current time.
    for req in [
        vec!["61", "1"],
        vec!["5", "1"],
        vec!["99", "0"],
        vec!["6", "2", "1", "DU1234567"],
        vec!["76", "1", "7", "DU1234567", "", "1"],
        vec!["7", "3", "8", "0", "", "", "", "", "", ""],
        vec!["49", "1"],
    ] {
        s.write_all(&text_frame(&req)).await.unwrap();
    }
    let ends: Vec<Vec<String>> = {
        let mut v = Vec::new();
        for _ in 0..7 {
            v.push(read_text(&mut s).await);
        }
        v
    };
    assert_eq!(ends[0], ["62", "1"]);
    assert_eq!(ends[1], ["53", "1"]);
    assert_eq!(ends[2], ["102"]);
    assert_eq!(ends[3], ["54", "1", "DU1234567"]);
    assert_eq!(ends[4], ["74", "1", "7"]);
    assert_eq!(ends[5], ["55", "1", "8"]);
    assert_eq!(ends[6][..2], ["49", "1"]);
    let c = h.counters();
    assert!(c.malformed_frames >= 4, "{c:?}");
    assert_eq!(c.active_connections, 1);
}
