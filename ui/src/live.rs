//! What the connected printers report right now (progress, time left, temperatures),
//! from `GET /api/v1/telemetry`: the one thing the dashboard polls.
//!
//! These figures change every second and never go through the log, so the change stream
//! does not carry them; a printer's state does (it comes with the board). They are read
//! every [`POLL_MS`] while at least one component that shows them is on the page
//! ([`LivePrinters::watch`]) and the tab is visible, and not at all otherwise: a page of
//! the job board costs the cluster nothing for them. Any failure (no such endpoint on an
//! older node, no leader driving printers, a node gone) reads as "no live figures"; the
//! cards then show the committed state alone.

use crate::FarmStore;
use app::domain::PrinterLive;
use leptos::prelude::*;

/// How often live figures are read while shown. Drivers observe hosts about once a
/// second; followers relay the leader's a second or two behind.
pub const POLL_MS: u32 = 2_000;

/// Context: the latest live figures, and who is looking at them. Cheap to copy.
#[derive(Debug, Clone, Copy)]
pub struct LivePrinters {
    /// The last answer, one entry per printer whose host answered lately.
    pub reports: RwSignal<Vec<PrinterLive>>,
    /// How many mounted components show live figures, and whether the poll loop runs.
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    watchers: StoredValue<(usize, bool)>,
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    store: FarmStore,
}

impl LivePrinters {
    pub fn new(store: FarmStore) -> Self {
        Self {
            reports: RwSignal::new(Vec::new()),
            watchers: StoredValue::new((0, false)),
            store,
        }
    }

    /// Called by a component that shows live figures: they are polled from now until
    /// the last such component is gone. Does nothing during server-side rendering (the
    /// node's page has no live figures, so hydration sees the same page).
    pub fn watch(self) {
        #[cfg(feature = "hydrate")]
        {
            let start = self
                .watchers
                .try_update_value(|(count, running)| {
                    *count += 1;
                    !std::mem::replace(running, true)
                })
                .unwrap_or(false);
            if start {
                leptos::task::spawn_local(self.poll());
            }
            on_cleanup(move || {
                self.watchers
                    .try_update_value(|(count, _)| *count = count.saturating_sub(1));
            });
        }
    }

    /// Reads the figures every [`POLL_MS`] while anyone watches. The loop ends (and
    /// forgets the figures, which would be stale when shown again) once nobody does;
    /// a watcher that comes back during the last sleep keeps it going.
    #[cfg(feature = "hydrate")]
    async fn poll(self) {
        use super::client::{page_visible, sleep};
        loop {
            let watched = self
                .watchers
                .try_update_value(|(count, running)| {
                    *running = *count > 0;
                    *running
                })
                .unwrap_or(false);
            if !watched {
                self.reports.try_set(Vec::new());
                return;
            }
            // Without a token the node would only answer 401.
            let locked_out = self
                .store
                .session
                .with_untracked(|s| s.login_needed && s.token.is_none());
            if page_visible() && !locked_out {
                let reports = self.store.telemetry().await.unwrap_or_default();
                if self.reports.try_with_untracked(|r| r != &reports) == Some(true) {
                    self.reports.try_set(reports);
                }
            }
            sleep(POLL_MS).await;
        }
    }
}
