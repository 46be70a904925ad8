//! What a printer is doing, as staff read it on the Printers page and the overview: its
//! state in words on a badge (offline and error in colour, border *and* words), what
//! its host said, the job it prints (linked to the job board), progress with time left,
//! and temperatures. Laid out from [`condition`]; live figures come from
//! [`LivePrinters`], which polls only while one of these is on the page.

use crate::live::LivePrinters;
use crate::model::printing::{condition, live_of, Condition};
use crate::FarmStore;
use app::api::contract::path_segment;
use app::Id;
use leptos::prelude::*;

/// The job board, searched for one job (the board's text filter takes `?search=`).
pub fn job_board_link(job_id: &Id) -> String {
    format!("/jobs?search={}", path_segment(job_id.as_str()))
}

/// The condition of printer `id`, following the board and the live figures.
#[component]
pub fn PrinterCondition(id: Id) -> AnyView {
    let store = expect_context::<FarmStore>();
    let live = expect_context::<LivePrinters>();
    live.watch();
    let current = Memo::new(move |_| {
        store.data.with(|d| {
            let printer = d.printers.iter().find(|p| p.id == id)?;
            live.reports
                .with(|reports| Some(condition(printer, live_of(reports, &id), &d.jobs)))
        })
    });
    view! {
        <div class="printer-condition" data-testid="printer-condition" aria-live="polite">
            {move || current.get().map(condition_view)}
        </div>
    }
    // Erased: the page's view type would otherwise be too deep for the node's
    // compiler to prove it `Send`.
    .into_any()
}

fn condition_view(c: Condition) -> impl IntoView {
    let job = c.job.map(|job| {
        view! {
            " "
            <a href=job_board_link(&job.id) data-testid="printer-job" title=format!("job {}", job.id)>
                {job.name}
            </a>
        }
    });
    let progress_text = c.progress_text.clone().map(|text| {
        view! { " " <span class="num" data-testid="printer-progress">{text}</span> }
    });
    let bar = c.progress.map(|percent| {
        let label = c
            .progress_text
            .clone()
            .unwrap_or_else(|| format!("{percent:.0} %"));
        view! { <progress class="print-progress" max="100" value=percent aria-label=label></progress> }
    });
    view! {
        <p class="condition-line">
            <span class=format!("badge {}", c.tone.class()) data-testid="printer-state">
                {c.headline}
            </span>
            {job}
            {progress_text}
        </p>
        {bar}
        {c.detail.map(|detail| view! { <p class="hint condition-detail">{detail}</p> })}
        {c.temperatures.map(|t| view! { <p class="temperatures" data-testid="printer-temperatures">{t}</p> })}
    }
}
