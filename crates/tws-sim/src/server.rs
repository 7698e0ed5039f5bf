//! The TCP server: accepts connections, hands each to [`super::conn`], and exposes the handle
//! tests, benchmarks and the CLI use to read counters, inject faults and stop it.

use crate::counters::{Counters, CountersSnapshot};
use crate::faults::Faults;
use crate::hmds::Hmds;
use crate::market::Market;
use crate::scenario::Scenario;
pub use crate::shared::HistRequestRecord;
use crate::shared::Shared;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A running simulated gateway.
#[derive(Debug)]
pub struct SimHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

/// Start a simulated gateway on `listen` (`127.0.0.1:0` picks a free port: read it back with
/// [`SimHandle::addr`]). Returns once the socket is bound.
pub async fn start(scenario: Scenario, listen: &str) -> std::io::Result<SimHandle> {
    // A scenario built in code skips the TOML loader's checks: apply them here, so a bad
    // setting is an error rather than a panic in a connection task.
    scenario.validate().map_err(|(key, why)| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("scenario key `{key}`: {why}"),
        )
    })?;
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let market = Arc::new(Market::from_scenario(&scenario));
    let (stop, stop_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        hmds: Hmds::new(&scenario),
        market,
        counters: Counters::default(),
        faults: Arc::new(Faults::default()),
        client_ids: Mutex::new(HashSet::new()),
        log: Mutex::new(Vec::new()),
        started: Instant::now(),
        stop,
        scenario,
    });
    shared.faults.schedule(&shared.scenario, stop_rx.clone());
    tracing::info!(%addr, scenario = %shared.scenario.name, "simulated gateway listening");
    let sh = shared.clone();
    let accept = tokio::spawn(async move {
        let mut stop_rx = stop_rx;
        loop {
            let (sock, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = crate::faults::stopped(&mut stop_rx) => break,
            };
            if sh.faults.in_outage() {
                sh.counters.refused();
                drop(sock);
                continue;
            }
            let _ = sock.set_nodelay(true);
            tokio::spawn(crate::conn::serve(sh.clone(), sock, peer));
        }
    });
    Ok(SimHandle {
        addr,
        shared,
        accept: Some(accept),
    })
}

impl Drop for SimHandle {
    /// A handle dropped without [`SimHandle::stop`] still stops the server: a test that fails
    /// half-way must not leave a listener and its connections behind.
    fn drop(&mut self) {
        if self.accept.is_some() {
            self.shared.stop.send_replace(true);
            self.shared.faults.drop_all("server-stop");
        }
    }
}

impl SimHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Current counters.
    pub fn counters(&self) -> CountersSnapshot {
        self.shared.counters.snapshot()
    }

    /// The market being served.
    pub fn market(&self) -> Arc<Market> {
        self.shared.market.clone()
    }

    /// The scenario being served.
    pub fn scenario(&self) -> &Scenario {
        &self.shared.scenario
    }

    /// Every historical request received so far, in arrival order, with its outcome.
    pub fn historical_log(&self) -> Vec<HistRequestRecord> {
        self.shared
            .log
            .lock()
            .map(|g| g.clone())
            .unwrap_or_default()
    }

    /// Close every client connection now (the clients see a reset and may reconnect).
    pub fn drop_connections(&self) {
        self.shared.faults.drop_all("manual-drop");
    }

    /// Simulate a gateway restart: 1100 and a close to every connection, new connections
    /// refused for `len` (wall-clock time), then accepted again with a 1102 notice.
    pub fn set_outage(&self, len: std::time::Duration) {
        self.shared
            .faults
            .outage(len, self.shared.scenario.wall(120.0));
    }

    /// Mark the HMDS farm broken (2105; historical answers wait) or restored (2106).
    pub fn set_farm_down(&self, down: bool) {
        self.shared.faults.set_farm(down);
    }

    /// Stop accepting, close every connection and return the final counters.
    pub async fn stop(mut self) -> CountersSnapshot {
        self.shared.stop.send_replace(true);
        self.shared.faults.drop_all("server-stop");
        if let Some(accept) = self.accept.take() {
            let _ = accept.await;
        }
        // Let connection tasks observe the drop and count their disconnects.
        for _ in 0..50 {
            if self.shared.counters.snapshot().active_connections <= 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        self.shared.counters.snapshot()
    }
}
