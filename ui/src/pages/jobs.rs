//! Job board: Queued / Running / Done / Canceled columns with buttons for the allowed
//! moves only (a job sent to its printer can only be canceled by hand), the Queued
//! column in the farm queue's order with Move up / Move down / To top on every job that
//! waits in it, a filter by printer, spool and text (`?search=` fills the text), and a
//! form to queue a job, or copies of it: on a printer or any printer that fits, with a
//! spool (the pickers show each one's available grams) or any spool of a material and
//! colour, of a stored or uploaded G-code file ([`super::gcode`]) or a file path.

use super::gcode::{follow_files, Download, GcodeChooser, GcodeSource, StoredFiles};
use crate::components::{send_form, submit, Field, FormError, FormErrors, InputField, StatusBadge};
use crate::model::queue::{
    colours_of, is_waiting, place_for, printer_label, spool_label, JobForm, JobRequest, QueueLine,
    QueueMove, ANY_SPOOL,
};
use crate::model::{board_column, dispatch_line, grams, job_timing, offered_moves, JobFilter};
use crate::store::Write;
use crate::FarmStore;
use app::api::NewPrintJob;
use app::{FilamentType, Id, JobStatus, PrintJob, Timestamp};
use leptos::prelude::*;

const FORM: &str = "job";
const FIELDS: &[&str] = &[
    "id",
    "printer_id",
    "filament_id",
    "material",
    "file_id",
    "filepath",
    "print_weight_in_grams",
    "copies",
];

#[component]
pub fn JobBoardPage() -> impl IntoView {
    let store = expect_context::<FarmStore>();
    let printer_filter = RwSignal::new(String::new());
    let spool_filter = RwSignal::new(String::new());
    // A printer's card links the job it prints here, searched for.
    let search = leptos_router::hooks::use_query_map()
        .with_untracked(|q| q.get("search"))
        .unwrap_or_default();
    let text_filter = RwSignal::new(search);
    let filter = Memo::new(move |_| JobFilter {
        printer_id: printer_filter.get(),
        filament_id: spool_filter.get(),
        text: text_filter.get(),
    });
    // Printer and spool filters are applied by the node (the page holds only the first
    // jobs of each column); the text filter searches what is on screen.
    Effect::new(move |_| store.filter_board(printer_filter.get(), spool_filter.get()));
    // The queue as the board holds it, once for every card's Move buttons.
    let line = Memo::new(move |_| {
        let head_known = store
            .board
            .with(|b| b.printer_id.is_empty() && b.filament_id.is_empty());
        store
            .data
            .with(|d| QueueLine::of(&d.jobs, head_known, d.job_count(JobStatus::Queued)))
    });
    let columns = JobStatus::ALL.map(|status| view! { <Column status filter line/> });
    view! {
        <h1>"Job board"</h1>
        <div class="filters" role="search">
            <label>
                "Printer "
                <select
                    data-testid="filter-printer"
                    prop:value=move || printer_filter.get()
                    on:change=move |ev| printer_filter.set(event_target_value(&ev))
                >
                    <option value="">"All printers"</option>
                    <PrinterOptions/>
                </select>
            </label>
            <label>
                "Spool "
                <select
                    data-testid="filter-spool"
                    prop:value=move || spool_filter.get()
                    on:change=move |ev| spool_filter.set(event_target_value(&ev))
                >
                    <option value="">"All spools"</option>
                    <SpoolOptions selected=spool_filter/>
                </select>
            </label>
            <label>
                "Search "
                <input type="search" data-testid="filter-text" placeholder="file, id…" bind:value=text_filter/>
            </label>
        </div>
        <div class="board-layout">
            <div class="board">{columns}</div>
            <AddJobForm/>
        </div>
        <p class="hint">
            {move || store.data.with(|d| {
                let total: usize = d.job_counts.values().sum();
                format!("{total} jobs in the farm")
            })}
        </p>
    }
}

/// `<option>`s for every printer ("Prusa MK4 · p1").
#[component]
fn PrinterOptions() -> impl IntoView {
    let store = expect_context::<FarmStore>();
    view! {
        <For
            each=move || store.data.with(|d| d.printers.clone())
            key=|p| p.id.clone()
            let:printer
        >
            <option value=printer.id.to_string()>
                {format!("{} {} · {}", printer.company.as_str(), printer.model.as_str(), printer.id)}
            </option>
        </For>
    }
}

/// `<option>`s for every spool with its available grams ("PLA red · 640 g available").
/// An option is made anew when its grams change (a job was queued from it), so each
/// selects itself when it is `selected`: the select's value alone would fall back to the
/// first option.
#[component]
fn SpoolOptions(selected: RwSignal<String>) -> impl IntoView {
    let store = expect_context::<FarmStore>();
    view! {
        <For
            each=move || store.data.with(|d| d.filaments.clone())
            key=|s| (s.filament.id.clone(), s.available_weight_in_grams)
            let:spool
        >
            <option
                value=spool.filament.id.to_string()
                prop:selected={
                    let id = spool.filament.id.to_string();
                    move || selected.with(|s| s == &id)
                }
            >
                {format!(
                    "{} {} · {} · {} available",
                    spool.filament.kind.as_str(),
                    spool.filament.color.as_str(),
                    spool.filament.id,
                    grams(spool.available_weight_in_grams),
                )}
            </option>
        </For>
    }
}

#[component]
fn Column(status: JobStatus, filter: Memo<JobFilter>, line: Memo<QueueLine>) -> impl IntoView {
    let store = expect_context::<FarmStore>();
    let jobs = Memo::new(move |_| {
        store.data.with(|d| {
            filter.with(|f| {
                board_column(&d.jobs, status, f)
                    .into_iter()
                    .cloned()
                    .collect::<Vec<_>>()
            })
        })
    });
    let name = status.as_str();
    let count = move || store.data.with(|d| d.job_count(status));
    // Jobs of this column the node did not send (the board holds the first of each).
    let hidden = move || count().saturating_sub(jobs.with(Vec::len));
    let filtered = move || filter.with(|f| !f.text.is_empty());
    view! {
        <section
            class=format!("column column-{}", name.to_lowercase())
            aria-labelledby=format!("col-{name}")
            data-testid=format!("column-{}", name.to_lowercase())
        >
            <h2 id=format!("col-{name}")>
                <StatusBadge status/>
                <span class="count">{move || if filtered() { jobs.with(Vec::len) } else { count() }}</span>
            </h2>
            <ol class="cards-list">
                // Keyed by what the card shows that can change without the job changing
                // column: being sent to its printer.
                <For
                    each=move || jobs.get()
                    key=|job| (job.id.clone(), job.dispatch.is_some())
                    let:job
                >
                    <JobCard job line/>
                </For>
            </ol>
            <Show when=move || { hidden() > 0 && !filtered() }>
                <p class="hint">
                    {move || format!("and {} more", hidden())}
                    " "
                    <button
                        type="button"
                        class="more"
                        data-testid=format!("more-{}", name.to_lowercase())
                        on:click=move |_| store.show_more()
                    >
                        "Show more"
                    </button>
                </p>
            </Show>
        </section>
    }
}

fn move_label(next: JobStatus) -> &'static str {
    match next {
        JobStatus::Running => "Start",
        JobStatus::Done => "Done",
        JobStatus::Canceled => "Cancel",
        JobStatus::Queued => "Requeue",
    }
}

#[component]
fn JobCard(job: PrintJob, line: Memo<QueueLine>) -> AnyView {
    let store = expect_context::<FarmStore>();
    let errors = RwSignal::new(FormErrors::default());
    let busy = RwSignal::new(false);
    let id = job.id.to_string();
    let (printer_name, spool_name) = store.data.with_untracked(|d| {
        (
            printer_label(&job, &d.printers),
            spool_label(&job, &d.filaments),
        )
    });
    // Follows the refresh tick, so a running job's time goes on counting.
    let timing = {
        let job = job.clone();
        move || {
            let now = store
                .link
                .with(|l| l.refreshed_ms.map(Timestamp::from_unix_ms));
            job_timing(&job, now)
        }
    };
    let buttons = offered_moves(&job)
        .into_iter()
        .map(|next| {
            let job_id = id.clone();
            let label = move_label(next);
            let on_click = move |_| {
                let write = Write::SetJobStatus {
                    job_id: job_id.clone(),
                    status: next.as_str().to_owned(),
                };
                leptos::task::spawn_local(async move {
                    submit(store, write, busy, errors).await;
                });
            };
            view! {
                <button
                    type="button"
                    class=format!("move to-{}", next.as_str().to_lowercase())
                    disabled=move || busy.get()
                    aria-label=format!("{label}: {}", job.filepath.as_str())
                    on:click=on_click
                >
                    {label}
                </button>
            }
        })
        .collect_view();
    let dispatched = dispatch_line(&job).map(|line| {
        view! { <p class="job-dispatch" data-testid="job-dispatch">{line}</p> }
    });
    let reason = job.reason.as_ref().map(|reason| {
        let text = format!("Reason: {}", reason.as_str());
        view! { <p class="job-reason" data-testid="job-reason">{text}</p> }
    });
    let download = job.file_id.as_ref().map(|file_id| {
        let name = job.filepath.as_str().to_owned();
        view! { <Download file_id=file_id.to_string() name errors/> }
    });
    // Keyed by whether it was sent: a job that waits keeps its card while it moves.
    let queue_buttons = is_waiting(&job).then(|| {
        let name = job.filepath.as_str().to_owned();
        view! { <QueueButtons job_id=job.id.clone() name line busy errors/> }
    });
    view! {
        <li class="job" data-testid=format!("job-{id}")>
            <div class="job-title">
                <span class="file">{job.filepath.as_str().to_owned()}</span>
                <span class="num">{grams(job.print_weight_in_grams)}</span>
            </div>
            <div class="job-meta">
                <span title="printer" data-testid="job-printer">{printer_name}</span>
                <span title="spool" data-testid="job-spool">{spool_name}</span>
                <span class="mono" title="job id">{id.clone()}</span>
            </div>
            <p class="job-time" data-testid="job-time">{timing}</p>
            {dispatched}
            {reason}
            <div class="job-actions">{buttons}{download}</div>
            {queue_buttons}
            <p class="form-error" aria-live="polite">{move || errors.with(|e| e.message.clone())}</p>
        </li>
    }
    // Erased: the page's view type would otherwise be too deep for the node's
    // compiler to prove it `Send`.
    .into_any()
}

/// Move up / Move down / To top on a job that waits in the queue. A button is disabled
/// when the board shows there is nowhere to go; a click asks the node for the nearest
/// waiting job in that direction in the *whole* queue (the board holds only its first
/// jobs, and the job board's filters hide some) and puts the job next to it.
#[component]
fn QueueButtons(
    job_id: Id,
    name: String,
    line: Memo<QueueLine>,
    busy: RwSignal<bool>,
    errors: RwSignal<FormErrors>,
) -> impl IntoView {
    let store = expect_context::<FarmStore>();
    let offered = {
        let job_id = job_id.clone();
        Memo::new(move |_| line.with(|l| l.offered(&job_id)))
    };
    let buttons = QueueMove::ALL.map(|step| {
        let job_id = job_id.to_string();
        let on_click = move |_| {
            let job_id = job_id.clone();
            leptos::task::spawn_local(async move {
                move_in_queue(store, job_id, step, busy, errors).await;
            });
        };
        view! {
            <button
                type="button"
                class="quiet"
                disabled=move || busy.get() || !offered.get().allows(step)
                aria-label=format!("{}: {name}", step.label())
                on:click=on_click
            >
                {step.label()}
            </button>
        }
    });
    view! {
        <div class="job-actions queue-actions" role="group" aria-label="Place in the queue">
            {buttons}
        </div>
    }
}

/// Finds the neighbour `step` moves next to and sends the move; says so when there is
/// none (the board was behind, or hid the neighbours).
async fn move_in_queue(
    store: FarmStore,
    job_id: String,
    step: QueueMove,
    busy: RwSignal<bool>,
    errors: RwSignal<FormErrors>,
) {
    busy.set(true);
    let placed = match store
        .queue_neighbour(job_id.clone(), step.looks_back())
        .await
    {
        Err(failure) => Err(failure),
        Ok(neighbour) => match place_for(step, neighbour.as_ref()) {
            None => Ok(false),
            Some(body) => store
                .write(Write::PlaceInQueue { job_id, body })
                .await
                .map(|()| true),
        },
    };
    busy.set(false);
    errors.set(match placed {
        Ok(true) => FormErrors::default(),
        Ok(false) => FormErrors {
            field: None,
            message: Some(step.nowhere().to_owned()),
        },
        Err(failure) => FormErrors::from_failure(&failure),
    });
}

#[component]
fn AddJobForm() -> AnyView {
    let store = expect_context::<FarmStore>();
    // Empty: any printer that fits. That is the default once a stored file is chosen:
    // the farm queue is how a shop floor prints (the first idle printer with a fitting
    // spool takes the next job), and naming a printer is the exception. A job of a file
    // path is moved by hand on its printer, so then the same choice reads "Choose a
    // printer" and the form refuses it empty.
    let printer = RwSignal::new(String::new());
    let spool = RwSignal::new(String::new());
    let material = RwSignal::new(FilamentType::Pla.as_str().to_owned());
    let colour = RwSignal::new(String::new());
    let copies = RwSignal::new("1".to_owned());
    let filepath = RwSignal::new(String::new());
    let weight = RwSignal::new(String::new());
    let errors = RwSignal::new(FormErrors::default());
    let busy = RwSignal::new(false);
    let source = GcodeSource::new();
    follow_files(store, source);
    let by_path = move || source.chosen.with(String::is_empty);
    let any_spool = move || spool.with(|s| s == ANY_SPOOL);
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let form = JobForm {
            printer: printer.get(),
            spool: spool.get(),
            material: material.get(),
            colour: colour.get(),
            file_id: source.chosen.get(),
            filepath: filepath.get(),
            weight: weight.get(),
            copies: copies.get(),
        };
        let clear = move || {
            filepath.set(String::new());
            weight.set(String::new());
            copies.set("1".to_owned());
            source.clear();
        };
        match form.request() {
            Err(problem) => errors.set(FormErrors {
                field: Some(problem.field.to_owned()),
                message: Some(problem.message.to_owned()),
            }),
            Ok(JobRequest::One(body)) => send_form(
                store,
                body,
                NewPrintJob::from_json,
                Write::CreatePrintJob,
                busy,
                errors,
                clear,
            ),
            Ok(JobRequest::Copies(body)) => send_form(
                store,
                body,
                NewPrintJob::copies_from_json,
                Write::QueueCopies,
                busy,
                errors,
                clear,
            ),
        }
    };
    // A G-code file dropped anywhere on the form is uploaded like a picked one.
    let on_drop = move |ev: leptos::ev::DragEvent| {
        ev.prevent_default();
        source.dragging.set(false);
        #[cfg(feature = "hydrate")]
        if let Some(file) = crate::client::dropped_file(&ev) {
            source.upload(store, file, weight);
        }
    };
    let on_drag_over = move |ev: leptos::ev::DragEvent| {
        // Without this the browser opens the dropped file instead.
        ev.prevent_default();
        source.dragging.set(true);
    };
    let colour_choices = move || {
        let kind = material.get().parse::<FilamentType>().ok();
        store.data.with(|d| {
            kind.map(|kind| colours_of(&d.filaments, kind))
                .unwrap_or_default()
                .into_iter()
                .map(|colour| view! { <option value=colour></option> })
                .collect_view()
        })
    };
    let copies_count = move || {
        copies
            .with(|c| c.trim().parse::<u32>().ok())
            .filter(|n| *n > 1)
    };
    view! {
        <div class="board-side">
        <form
            class="panel"
            class:dropping=move || source.dragging.get()
            on:submit=on_submit
            on:dragover=on_drag_over
            on:dragleave=move |_| source.dragging.set(false)
            on:drop=on_drop
            aria-labelledby="job-form-title"
            novalidate
        >
            <h2 id="job-form-title">"Queue a job"</h2>
            <GcodeChooser source weight errors form=FORM/>
            <Show when=by_path>
                <InputField label="File" name="filepath" form=FORM value=filepath errors placeholder="benchy.gcode"/>
            </Show>
            <Field label="Printer" name="printer_id" form=FORM errors>
                <select
                    id="job-printer_id"
                    prop:value=move || printer.get()
                    on:change=move |ev| printer.set(event_target_value(&ev))
                >
                    <option value="">
                        {move || if by_path() { "Choose a printer" } else { "Any printer that fits" }}
                    </option>
                    <PrinterOptions/>
                </select>
            </Field>
            <Show when=move || !by_path() && printer.with(String::is_empty)>
                <p class="hint" data-testid="job-any-printer-hint">
                    "The first idle printer with a fitting spool loaded takes it."
                </p>
            </Show>
            <Field label="Spool" name="filament_id" form=FORM errors>
                <select
                    id="job-filament_id"
                    prop:value=move || spool.get()
                    on:change=move |ev| spool.set(event_target_value(&ev))
                >
                    <option value="">"Choose a spool"</option>
                    <option value=ANY_SPOOL prop:selected=any_spool>"Any spool of…"</option>
                    <SpoolOptions selected=spool/>
                </select>
            </Field>
            <Show when=any_spool>
                <div class="field">
                    <label for="job-material-type">"Material"</label>
                    <select
                        id="job-material-type"
                        prop:value=move || material.get()
                        on:change=move |ev| material.set(event_target_value(&ev))
                    >
                        {FilamentType::ALL.map(|kind| {
                            view! { <option value=kind.as_str()>{kind.as_str()}</option> }
                        })}
                    </select>
                </div>
                <Field label="Colour" name="material" form=FORM errors>
                    <input
                        id="job-material"
                        name="colour"
                        type="text"
                        list="job-colours"
                        placeholder="red"
                        aria-describedby="job-material-error"
                        bind:value=colour
                    />
                    <datalist id="job-colours">{colour_choices}</datalist>
                </Field>
            </Show>
            <InputField label="Weight (g)" name="print_weight_in_grams" form=FORM value=weight errors kind="number"/>
            <InputField label="Copies" name="copies" form=FORM value=copies errors kind="number"/>
            <FormError errors fields=FIELDS form=FORM/>
            <button type="submit" disabled=move || busy.get()>
                {move || match (busy.get(), copies_count()) {
                    (true, _) => "Queuing…".to_owned(),
                    (false, Some(n)) => format!("Queue {n} copies"),
                    (false, None) => "Queue job".to_owned(),
                }}
            </button>
        </form>
        <StoredFiles source/>
        </div>
    }
    // Erased: the page's view type would otherwise be too deep for the node's
    // compiler to prove it `Send`.
    .into_any()
}
