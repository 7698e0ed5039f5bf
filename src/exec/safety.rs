//! The executor's safety nets for unattended runs: how long a stop waits, when a task that keeps
//! losing the connection is sent alone and then quarantined, how long dispatch waits for a
//! broken historical data farm, and catching a task that panics.

use super::governor::PacingGovernor;
use crate::ib::OutcomeClass;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How long in-flight requests may take to finish after a stop signal before they are
/// abandoned: below the 90 s systemd and Kubernetes wait before they kill.
pub const STOP_GRACE: Duration = Duration::from_secs(30);
/// A task whose request was in flight at this many disconnects is sent alone from then on
/// (no other request in flight), to tell whether it is the cause.
pub const SUSPECT_AFTER: u32 = 2;
/// A task sent alone that loses the connection this many times is quarantined: recorded
/// QUARANTINED and not sent again in this run (twice, so that one unrelated drop, such as a
/// nightly restart, while it is alone does not condemn it).
pub const QUARANTINE_AFTER: u32 = 2;
/// Disconnects one task may see in all (drops it did not cause, e.g. nightly restarts) before
/// it is recorded DISCONNECTED rather than tried again.
pub const MAX_DISCONNECTS: u32 = 50;
/// Longest dispatch pause for a broken historical data farm without an OK notice.
pub const FARM_WAIT: Duration = Duration::from_secs(120);
/// Timeouts a task may see while the farm is broken without them counting as attempts.
pub const MAX_FARM_TIMEOUTS: u32 = 10;

/// The disconnects one task has been in flight at.
#[derive(Debug, Default, Clone, Copy)]
pub struct DropTracker {
    /// Disconnects in all.
    pub disconnects: u32,
    /// Disconnects while the task was alone on the connection.
    pub solo_drops: u32,
}

impl DropTracker {
    /// True when the next attempt must go alone.
    pub fn solo(&self) -> bool {
        self.disconnects >= SUSPECT_AFTER
    }

    /// Count a drop seen by an attempt (`solo`: it was alone). Returns the final status and
    /// message when the task must not be tried again.
    pub fn dropped(&mut self, solo: bool, cause: &str) -> Option<(OutcomeClass, String)> {
        self.disconnects += 1;
        self.solo_drops += u32::from(solo);
        if self.solo_drops >= QUARANTINE_AFTER {
            Some((
                OutcomeClass::Quarantined,
                format!(
                    "the connection dropped each time this request was sent alone ({} times, {} drops in all): {cause}",
                    self.solo_drops, self.disconnects
                ),
            ))
        } else if self.disconnects > MAX_DISCONNECTS {
            Some((
                OutcomeClass::Disconnected,
                format!("{} disconnects: {cause}", self.disconnects),
            ))
        } else {
            None
        }
    }
}

/// Pause and resume dispatch as the gateway reports its historical data farm broken and back.
pub async fn follow_farm(mut down: watch::Receiver<bool>, governor: Arc<PacingGovernor>) {
    loop {
        if *down.borrow_and_update() {
            governor.farm_down(FARM_WAIT);
        } else {
            governor.farm_ok();
        }
        if down.changed().await.is_err() {
            return;
        }
    }
}

/// Aborts a spawned task when dropped (so a task spawned for isolation dies with its caller).
pub struct AbortOnDrop(pub tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What a failed task join says: the panic's message, or that it was cancelled.
pub fn panic_message(e: tokio::task::JoinError) -> String {
    if !e.is_panic() {
        return format!("task cancelled: {e}");
    }
    let p = e.into_panic();
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .map(|m| format!("panic: {m}"))
        .unwrap_or_else(|| "panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_task_is_described_not_propagated() {
        let e = tokio::spawn(async { panic!("boom {}", 7) })
            .await
            .unwrap_err();
        assert_eq!(panic_message(e), "panic: boom 7");
        let h = tokio::spawn(std::future::pending::<()>());
        h.abort();
        assert!(panic_message(h.await.unwrap_err()).starts_with("task cancelled"));
    }

    #[test]
    fn drops_make_a_suspect_then_a_quarantine() {
        let mut d = DropTracker::default();
        assert!(!d.solo());
        assert!(d.dropped(false, "x").is_none());
        assert!(d.dropped(false, "x").is_none());
        assert!(d.solo(), "sent alone after two drops");
        assert!(
            d.dropped(true, "x").is_none(),
            "one drop alone may be chance"
        );
        let (class, msg) = d.dropped(true, "reset").unwrap();
        assert_eq!(class, OutcomeClass::Quarantined);
        assert!(
            msg.contains("2 times, 4 drops") && msg.ends_with("reset"),
            "{msg}"
        );
    }

    #[test]
    fn drops_it_did_not_cause_end_in_disconnected_eventually() {
        let mut d = DropTracker::default();
        for _ in 0..MAX_DISCONNECTS {
            assert!(d.dropped(false, "x").is_none());
        }
        let (class, _) = d.dropped(false, "x").unwrap();
        assert_eq!(class, OutcomeClass::Disconnected);
    }
}
