//! Pieces shared by the subcommands that talk to a gateway.

use crate::ib::GatewayConfig;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

/// Parse `HOST:PORT`.
pub fn parse_gateway(s: &str) -> Result<(String, u16), String> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("--gateway `{s}`: expected HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("--gateway `{s}`: port `{port}` is not a number"))?;
    if host.is_empty() {
        return Err(format!("--gateway `{s}`: empty host"));
    }
    Ok((host.to_string(), port))
}

/// Parse a duration flag (`--reconnect-for`, `--request-timeout`): the rules of
/// [`crate::inputs::duration`], the flag named in the error.
pub fn duration_flag(flag: &str, s: &str) -> Result<Duration, String> {
    crate::inputs::duration::parse(s)
        .map_err(|e| format!("{flag}: {e} (expected {})", crate::inputs::duration::HINT))
}

/// A gateway configuration with the defaults of a local IB Gateway (paper port 4002).
pub fn default_gateway(host: String, port: u16, client_id: i32) -> GatewayConfig {
    GatewayConfig {
        host,
        port,
        client_id,
        connect_timeout: Duration::from_secs(20),
        request_timeout: Duration::from_secs(60),
        messages_per_second: 45,
        message_window: Duration::from_secs(1),
    }
}

/// The signal that stopped the run (0 while none has).
static STOPPED_BY: AtomicI32 = AtomicI32::new(0);

/// Exit code of a run stopped by a signal: 128 + the signal number (130 for Ctrl-C/SIGINT,
/// 143 for SIGTERM, 129 for SIGHUP), as shells and orchestrators expect.
pub fn interrupted_exit_code() -> i32 {
    match STOPPED_BY.load(Ordering::SeqCst) {
        0 => crate::exit::INTERRUPTED,
        n => 128 + n,
    }
}

/// A watch channel that turns true on the first Ctrl-C (SIGINT), SIGTERM or SIGHUP: the run
/// stops dispatching, lets in-flight requests finish (bounded), flushes and writes its totals.
/// systemd, Kubernetes, Airflow and Dagster stop a job with SIGTERM, so it takes the same
/// graceful path. A second signal exits at once.
pub fn ctrl_c_signal() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let mut signals = match Signals::new() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("cannot listen for signals: {e}");
                // Keep the sender alive so `stop` never reads as fired.
                std::future::pending::<()>().await;
                return;
            }
        };
        let (signo, name) = signals.next().await;
        STOPPED_BY.store(signo, Ordering::SeqCst);
        crate::progress::suspend(|| {
            eprintln!("\n{name}: finishing in-flight requests (send it again to exit at once)")
        });
        tracing::warn!(
            "{name} received: stop dispatching, finish in-flight requests, write totals"
        );
        let _ = tx.send(true);
        let (signo, name) = signals.next().await;
        tracing::warn!("{name} received again: exiting at once");
        std::process::exit(128 + signo);
    });
    rx
}

/// The stop signals this process listens for.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals {
                term: signal(SignalKind::terminate())?,
                hup: signal(SignalKind::hangup())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    /// The next signal: its number and name.
    async fn next(&mut self) -> (i32, &'static str) {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => (2, "interrupted (SIGINT)"),
                _ = self.term.recv() => (15, "terminated (SIGTERM)"),
                _ = self.hup.recv() => (1, "hangup (SIGHUP)"),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            (2, "interrupted (Ctrl-C)")
        }
    }
}

/// The pinned clock: `flag` (RFC 3339), else the `OPT_BACKFILL_NOW` environment variable.
pub fn pinned_now(flag: Option<&str>) -> Result<Option<chrono::DateTime<chrono::Utc>>, String> {
    match flag
        .map(str::to_string)
        .or_else(|| std::env::var(super::plan::NOW_ENV).ok())
    {
        Some(s) => chrono::DateTime::parse_from_rfc3339(&s)
            .map(|t| Some(t.with_timezone(&chrono::Utc)))
            .map_err(|e| format!("--now `{s}`: {e}")),
        None => Ok(None),
    }
}

/// Read a manifest (`.json`) or load and compile a plan (sharded with `batching` = (count,
/// index)); errors are printed, the exit code returned.
pub fn load_manifest(
    input: &std::path::Path,
    now: Option<chrono::DateTime<chrono::Utc>>,
    batching: Option<(u32, u32)>,
) -> Result<crate::compile::manifest::Manifest, i32> {
    let bad = |msg: String| {
        eprintln!("error: {msg}");
        crate::exit::BAD_INPUT
    };
    if input.extension().is_some_and(|e| e == "json") {
        if batching.is_some() {
            return Err(bad(
                "--batch-count/--batch-index apply to plans; a manifest is already sharded".into(),
            ));
        }
        return crate::compile::manifest::Manifest::read(input).map_err(|e| bad(e.to_string()));
    }
    let plan = crate::plan::load(input).map_err(|e| {
        eprintln!("{e}");
        crate::exit::BAD_INPUT
    })?;
    let opts = crate::compile::CompileOptions {
        now,
        batching: batching.map(|(count, index)| crate::plan::Batching { count, index }),
        work_dir: None,
    };
    let compiled = crate::compile::compile(&plan, &opts).map_err(|e| bad(e.to_string()))?;
    for note in &compiled.notes {
        eprintln!("{note}");
    }
    Ok(compiled.manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_gateways() {
        let parse_duration = |s| duration_flag("--reconnect-for", s);
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("12h").unwrap(), Duration::from_secs(43200));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5 weeks").is_err());
        assert_eq!(
            parse_gateway("127.0.0.1:4002").unwrap(),
            ("127.0.0.1".into(), 4002)
        );
        assert!(parse_gateway("localhost").is_err());
        assert!(parse_gateway("h:99999").is_err());
    }

    #[test]
    fn symbols_csv() {
        let read_symbols_csv =
            |p: &std::path::Path| crate::inputs::symbols::read(p).map_err(|e| e.to_string());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("u.csv");
        std::fs::write(&p, "symbol,name\nAAPL,Apple\nSPY,ETF\n").unwrap();
        assert_eq!(read_symbols_csv(&p).unwrap(), vec!["AAPL", "SPY"]);
        std::fs::write(&p, "AAPL\n../x\n").unwrap();
        let e = read_symbols_csv(&p).unwrap_err();
        assert!(e.contains("u.csv:2"), "{e}");
    }
}
