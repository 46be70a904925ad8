//! Printers: a card per printer with what it is doing (for a printer connected to its
//! host: the host's state, the job, a progress bar with the time left, temperatures, and
//! whether it waits for its bed to be cleared, see [`super::printer_state`]), the spool
//! loaded on it, its connection ([`super::connection`]), its running and queued jobs
//! (among those on the board), its history on demand, and a form to add one.

use super::connection::ConnectionCell;
use super::history::History;
use super::printer_state::PrinterCondition;
use crate::components::{send_form, submit, FormError, FormErrors, InputField};
use crate::model::queue::loaded_spool_choice;
use crate::model::{is_busy, printer_jobs};
use crate::store::Write;
use crate::FarmStore;
use app::api::{LoadSpoolBody, NewPrinter};
use app::{Id, JobStatus, Printer};
use leptos::prelude::*;

const FORM: &str = "printer";
const FIELDS: &[&str] = &["id", "company", "model"];

#[component]
pub fn PrintersPage() -> impl IntoView {
    let store = expect_context::<FarmStore>();
    let printers = Memo::new(move |_| store.data.with(|d| d.printers.clone()));
    view! {
        <h1>"Printers"</h1>
        <div class="split">
            <section aria-labelledby="printer-list">
                <h2 id="printer-list" class="visually-hidden">"All printers"</h2>
                <Show
                    when=move || !printers.with(Vec::is_empty)
                    fallback=|| view! { <p class="empty">"No printers yet: add one with the form."</p> }
                >
                    <ul class="printer-cards" data-testid="printer-list">
                        <For each=move || printers.get() key=|p| p.id.clone() let:printer>
                            <PrinterCard printer/>
                        </For>
                    </ul>
                </Show>
            </section>
            <AddPrinterForm/>
        </div>
    }
}

#[component]
fn PrinterCard(printer: Printer) -> AnyView {
    let store = expect_context::<FarmStore>();
    let id = printer.id.to_string();
    let for_busy = printer.clone();
    let busy = Memo::new(move |_| store.data.with(|d| is_busy(&d.jobs, &for_busy)));
    // The card is keyed by id: what changes (connection, status) is read from the store.
    let key = printer.id.clone();
    let connected = Memo::new(move |_| {
        store
            .data
            .with(|d| d.printers.iter().any(|p| p.id == key && p.is_connected()))
    });
    let for_jobs = printer.clone();
    let jobs = move || {
        store.data.with(|d| {
            printer_jobs(&d.jobs, &for_jobs)
                .into_iter()
                .map(|job| {
                    let running = job.status == JobStatus::Running;
                    view! {
                        <li class:running=running>
                            {if running { "▶ " } else { "⏸ " }}
                            {job.filepath.as_str().to_owned()}
                        </li>
                    }
                })
                .collect_view()
        })
    };
    let title_id = format!("printer-{id}-title");
    view! {
        <li>
            <article class="card printer-card" data-testid=format!("printer-{id}") aria-labelledby=format!("printer-{id}-title")>
                <header class="printer-card-head">
                    <h3 id=title_id>
                        {format!("{} {}", printer.company.as_str(), printer.model.as_str())}
                    </h3>
                    <span class="mono printer-id">{id.clone()}</span>
                </header>
                <div class="printer-card-state">
                    // Moved by hand, "busy" is what its jobs say; a connected printer's
                    // host says it itself.
                    <Show when=move || !connected.get()>
                        {move || {
                            if busy.get() {
                                view! { <span class="badge printer-busy">"Busy"</span> }
                            } else {
                                view! { <span class="badge printer-idle">"Idle"</span> }
                            }
                        }}
                    </Show>
                    <PrinterCondition id=printer.id.clone()/>
                </div>
                <LoadedSpool id=printer.id.clone()/>
                <ConnectionCell id=printer.id.clone()/>
                <section class="printer-card-jobs" aria-label=format!("Running and queued jobs of {id}")>
                    <h4>"Running and queued jobs"</h4>
                    <ul class="inline-list">{jobs}</ul>
                </section>
                <History filter="printer_id" id=id.clone()/>
            </article>
        </li>
    }
    // Erased: the page's view type would otherwise be too deep for the node's
    // compiler to prove it `Send`.
    .into_any()
}

/// The spool on printer `id`, as staff say: choosing one loads it
/// (`PUT /api/v1/printers/{id}/spool`), "No spool loaded" unloads it. The farm queue
/// sends a printer only jobs of its spool, or of that spool's material and colour.
#[component]
fn LoadedSpool(id: Id) -> AnyView {
    let store = expect_context::<FarmStore>();
    let errors = RwSignal::new(FormErrors::default());
    let busy = RwSignal::new(false);
    let loaded = {
        let id = id.clone();
        Memo::new(move |_| {
            store.data.with(|d| {
                d.printers
                    .iter()
                    .find(|p| p.id == id)
                    .and_then(|p| p.loaded_filament_id.as_ref())
                    .map(ToString::to_string)
                    .unwrap_or_default()
            })
        })
    };
    // What the select shows: the stored spool, or the choice being sent. A refused
    // choice goes back to the stored one.
    let shown = RwSignal::new(loaded.get_untracked());
    Effect::new(move |_| shown.set(loaded.get()));
    let printer_id = id.to_string();
    let on_change = move |ev: leptos::ev::Event| {
        let chosen = event_target_value(&ev);
        shown.set(chosen.clone());
        let printer_id = printer_id.clone();
        let write = match chosen.is_empty() {
            true => Write::UnloadSpool { printer_id },
            false => Write::LoadSpool {
                printer_id,
                body: LoadSpoolBody {
                    filament_id: chosen,
                },
            },
        };
        leptos::task::spawn_local(async move {
            if !submit(store, write, busy, errors).await {
                shown.set(loaded.get_untracked());
            }
        });
    };
    let select_id = format!("spool-{id}");
    let error_id = format!("spool-{id}-error");
    let choices = {
        let id = id.clone();
        move || {
            store.data.with(|d| {
                d.filaments
                    .iter()
                    .map(|spool| {
                        let value = spool.filament.id.to_string();
                        let label = loaded_spool_choice(spool, &d.printers, &id);
                        // Selected by the option itself too: the options are made anew
                        // when the grams change, and the select's value alone would fall
                        // back to the first one.
                        let selected = {
                            let value = value.clone();
                            move || shown.with(|s| s == &value)
                        };
                        view! { <option value=value prop:selected=selected>{label}</option> }
                    })
                    .collect_view()
            })
        }
    };
    view! {
        <div class="field loaded-spool">
            <label for=select_id.clone()>"Loaded spool"</label>
            <select
                id=select_id
                data-testid="loaded-spool"
                aria-describedby=error_id.clone()
                disabled=move || busy.get()
                prop:value=move || shown.get()
                on:change=on_change
            >
                <option value="" prop:selected=move || shown.with(String::is_empty)>"No spool loaded"</option>
                {choices}
            </select>
            <p class="field-error" id=error_id aria-live="polite">{move || errors.with(|e| e.message.clone())}</p>
        </div>
    }
    // Erased: the page's view type would otherwise be too deep for the node's
    // compiler to prove it `Send`.
    .into_any()
}

#[component]
fn AddPrinterForm() -> impl IntoView {
    let store = expect_context::<FarmStore>();
    let company = RwSignal::new(String::new());
    let model = RwSignal::new(String::new());
    let errors = RwSignal::new(FormErrors::default());
    let busy = RwSignal::new(false);
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = serde_json::json!({ "company": company.get(), "model": model.get() });
        let clear = move || {
            company.set(String::new());
            model.set(String::new());
        };
        send_form(
            store,
            body,
            NewPrinter::from_json,
            Write::CreatePrinter,
            busy,
            errors,
            clear,
        );
    };
    view! {
        <form class="panel" on:submit=on_submit aria-labelledby="printer-form-title" novalidate>
            <h2 id="printer-form-title">"Add a printer"</h2>
            <InputField label="Company" name="company" form=FORM value=company errors placeholder="Prusa"/>
            <InputField label="Model" name="model" form=FORM value=model errors placeholder="MK4"/>
            <FormError errors fields=FIELDS form=FORM/>
            <button type="submit" disabled=move || busy.get()>
                {move || if busy.get() { "Adding…" } else { "Add printer" }}
            </button>
        </form>
    }
}
