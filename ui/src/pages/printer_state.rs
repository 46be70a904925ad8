//! What a printer is doing, as staff read it on the Printers page and the overview: its
//! state in words on a badge (offline and error in colour, border *and* words), what
//! its host said, the job it prints (linked to the job board), progress with time left,
//! temperatures, and, after a job it was sent ended, that it waits for someone to clear
//! its bed, with the button that says so. Laid out from [`condition`] and
//! [`bed_wait_notice`]; live figures come from [`LivePrinters`], which polls only while
//! one of these is on the page.

use crate::components::{submit, FormErrors};
use crate::live::LivePrinters;
use crate::model::printing::{condition, live_of, Condition};
use crate::model::queue::bed_wait_notice;
use crate::store::Write;
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
    let key = id.clone();
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
            <BedWait id=key/>
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

/// "Waiting for the bed to be cleared (after job …)" and "Bed is clear" while printer
/// `id` waits for someone to take its last print off: the farm queue sends it nothing
/// until then (`POST /api/v1/printers/{id}/clear`). A printer whose connection says it
/// clears its own bed never waits.
#[component]
fn BedWait(id: Id) -> AnyView {
    let store = expect_context::<FarmStore>();
    let errors = RwSignal::new(FormErrors::default());
    let busy = RwSignal::new(false);
    let notice = {
        let id = id.clone();
        Memo::new(move |_| {
            store.data.with(|d| {
                d.printers
                    .iter()
                    .find(|p| p.id == id)
                    .and_then(|p| bed_wait_notice(p, &d.jobs))
            })
        })
    };
    let printer_id = id.to_string();
    let on_click = move |_| {
        let write = Write::ClearBed {
            printer_id: printer_id.clone(),
        };
        leptos::task::spawn_local(async move {
            submit(store, write, busy, errors).await;
        });
    };
    view! {
        <Show when=move || notice.with(Option::is_some)>
            <div class="banner bed-wait" role="status" data-testid="bed-wait">
                <span>{move || notice.get()}</span>
                <button
                    type="button"
                    disabled=move || busy.get()
                    on:click=on_click.clone()
                >
                    "Bed is clear"
                </button>
                <p class="form-error" aria-live="polite">{move || errors.with(|e| e.message.clone())}</p>
            </div>
        </Show>
    }
    // Erased: the page's view type would otherwise be too deep for the node's
    // compiler to prove it `Send`.
    .into_any()
}
