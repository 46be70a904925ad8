//! A printer's or a spool's history: its jobs, newest first, with their times and grams,
//! a page at a time from the node (the page holds only the board), opened on demand.

use crate::model::{grams, job_timing};
use crate::FarmStore;
use app::{PrintJob, Timestamp};
use leptos::prelude::*;

/// "History" under a printer (`filter` = `printer_id`) or a spool (`filament_id`).
#[component]
pub fn History(filter: &'static str, id: String) -> AnyView {
    let store = expect_context::<FarmStore>();
    let open = RwSignal::new(false);
    let jobs = RwSignal::new(Vec::<PrintJob>::new());
    let more = RwSignal::new(false);
    let trouble = RwSignal::new(None::<String>);
    let key = StoredValue::new(id.clone());
    // Copy (signals and a stored value only), so every button can hold it.
    let load = move || {
        let id = key.get_value();
        let after = jobs.with_untracked(|j| j.last().map(|job| job.id.to_string()));
        leptos::task::spawn_local(async move {
            match store.job_history(filter, id, after).await {
                Ok((page, next)) => {
                    jobs.update(|j| j.extend(page));
                    more.set(next);
                    trouble.set(None);
                }
                Err(failure) => trouble.set(Some(failure.to_string())),
            }
        });
    };
    let toggle = move |_| {
        let opening = !open.get_untracked();
        open.set(opening);
        if opening && jobs.with_untracked(Vec::is_empty) {
            load();
        }
    };
    let now = move || {
        store
            .link
            .with(|l| l.refreshed_ms.map(Timestamp::from_unix_ms))
    };
    view! {
        <div class="history" data-testid=format!("history-{id}")>
            <button type="button" class="more" on:click=toggle>
                {move || if open.get() { "Hide history" } else { "History" }}
            </button>
            <Show when=move || open.get()>
                <ol class="history-list">
                    <For each=move || jobs.get() key=|job| job.id.clone() let:job>
                        {view! {
                            <li data-testid="history-job">
                                <span class="file">{job.filepath.as_str().to_owned()}</span>
                                {history_line(job, now)}
                            </li>
                        }
                            .into_any()}
                    </For>
                </ol>
                <Show when=move || jobs.with(Vec::is_empty) && trouble.with(Option::is_none)>
                    <p class="hint">"No jobs yet."</p>
                </Show>
                <p class="form-error">{move || trouble.get()}</p>
                <Show when=move || more.get()>
                    <button type="button" class="more" on:click=move |_| load()>"Older jobs"</button>
                </Show>
            </Show>
        </div>
    }
    // Erased: the page's view type would otherwise be too deep to name.
    .into_any()
}

/// " · Done · 120 g · ran 45 min (ended 10:45 UTC)": follows the refresh tick, so a
/// running job's time goes on counting.
fn history_line(
    job: PrintJob,
    now: impl Fn() -> Option<Timestamp> + Copy + 'static,
) -> impl Fn() -> String {
    move || {
        let timing = job_timing(&job, now())
            .map(|t| format!(" · {t}"))
            .unwrap_or_default();
        format!(
            " · {} · {}{timing}",
            job.status.as_str(),
            grams(job.print_weight_in_grams)
        )
    }
}
