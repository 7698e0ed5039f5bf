//! Fault injection: server-wide events broadcast to every connection (drop, notices), the
//! gateway-restart outage, HMDS farm flapping, and the scheduler that fires the faults a
//! scenario lists at their time offsets.
//!
//! Per-connection faults (drop after N requests, hanging requests) are applied by the
//! connection itself from the scenario.

use super::scenario::Scenario;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, watch};

/// An event every connection receives.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Close the connection; the cause is counted.
    Drop(&'static str),
    /// Send a notice (request id -1).
    Notice(i32, String),
}

/// 1100 text.
pub const LOST: &str = "Connectivity between IB and Trader Workstation has been lost.";
/// 1102 text.
pub const RESTORED: &str =
    "Connectivity between IB and Trader Workstation has been restored - data maintained.";
/// 2105 text.
pub const FARM_BROKEN: &str = "HMDS data farm connection is broken:ushmds";
/// 2106 text.
pub const FARM_OK: &str = "HMDS data farm connection is OK:ushmds";

/// Shared fault state.
#[derive(Debug)]
pub struct Faults {
    /// Event fan-out.
    pub events: broadcast::Sender<Event>,
    outage_until: Mutex<Option<Instant>>,
    restored_notice_until: Mutex<Option<Instant>>,
    farm_down: watch::Sender<bool>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            events: broadcast::channel(64).0,
            outage_until: Mutex::new(None),
            restored_notice_until: Mutex::new(None),
            farm_down: watch::channel(false).0,
        }
    }
}

impl Faults {
    /// Drop every connection.
    pub fn drop_all(&self, cause: &'static str) {
        let _ = self.events.send(Event::Drop(cause));
    }

    /// Start a gateway-restart outage: 1100 to every connection, close them all, refuse new
    /// connections for `len`; connections made within `notice` after it get 1102 (two
    /// simulated minutes).
    pub fn outage(&self, len: Duration, notice: Duration) {
        let now = Instant::now();
        let until = now
            .checked_add(len)
            .unwrap_or(now + Duration::from_secs(86400 * 365));
        if let Ok(mut g) = self.outage_until.lock() {
            *g = Some(until);
        }
        if let Ok(mut g) = self.restored_notice_until.lock() {
            *g = until.checked_add(notice);
        }
        let _ = self.events.send(Event::Notice(1100, LOST.into()));
        let _ = self.events.send(Event::Drop("outage"));
    }

    /// True while connections must be refused.
    pub fn in_outage(&self) -> bool {
        self.outage_until
            .lock()
            .ok()
            .and_then(|g| *g)
            .is_some_and(|t| Instant::now() < t)
    }

    /// True when a new connection should be told connectivity was restored (1102).
    pub fn restored_notice_due(&self) -> bool {
        self.restored_notice_until
            .lock()
            .ok()
            .and_then(|g| *g)
            .is_some_and(|t| Instant::now() < t)
    }

    /// Mark the HMDS farm broken (2105) or back (2106).
    pub fn set_farm(&self, down: bool) {
        self.farm_down.send_replace(down);
        let _ = self.events.send(if down {
            Event::Notice(2105, FARM_BROKEN.into())
        } else {
            Event::Notice(2106, FARM_OK.into())
        });
    }

    /// Wait until the HMDS farm is up.
    pub async fn farm_up(&self) {
        let mut rx = self.farm_down.subscribe();
        let _ = rx.wait_for(|down| !*down).await;
    }

    /// Spawn the timed faults of a scenario (drop-at, outage, farm flapping). The tasks end
    /// when `stop` changes.
    /// Offsets and lengths are simulated time ([`Scenario::wall`]).
    pub fn schedule(self: &std::sync::Arc<Self>, s: &Scenario, stop: watch::Receiver<bool>) {
        let f = &s.faults;
        // Copy: each timer task takes its own.
        let scale = s.time_scale.max(f64::MIN_POSITIVE);
        let secs = move |x: f64| super::hmds::secs_f64(x / scale);
        if let Some(at) = f.drop_at_secs {
            let me = self.clone();
            let at = secs(at);
            spawn_until(stop.clone(), async move {
                tokio::time::sleep(at).await;
                me.drop_all("fault-drop-at");
            });
        }
        if let Some(o) = f.outage.clone() {
            let me = self.clone();
            let notice = secs(120.0);
            spawn_until(stop.clone(), async move {
                tokio::time::sleep(secs(o.at_secs)).await;
                me.outage(secs(o.duration_secs), notice);
            });
        }
        if let Some(ff) = f.farm_flap.clone() {
            let me = self.clone();
            spawn_until(stop, async move {
                if ff.every_secs <= 0.0 {
                    return;
                }
                loop {
                    tokio::time::sleep(secs(ff.every_secs)).await;
                    me.set_farm(true);
                    tokio::time::sleep(secs(ff.down_secs)).await;
                    me.set_farm(false);
                }
            });
        }
    }
}

/// Resolve once `stop` turns true (or its sender is gone).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn spawn_until(
    mut stop: watch::Receiver<bool>,
    fut: impl std::future::Future<Output = ()> + Send + 'static,
) {
    tokio::spawn(async move {
        tokio::select! {
            _ = fut => {}
            _ = stopped(&mut stop) => {}
        }
    });
}
