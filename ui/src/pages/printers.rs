//! Printers: every printer with what it is doing (for a printer connected to its host:
//! the host's state, progress and temperatures, see [`super::printer_state`]), its
//! connection ([`super::connection`]), its running and queued jobs (among those on the
//! board), its history on demand, and a form to add one.

use super::connection::ConnectionCell;
use super::history::History;
use super::printer_state::PrinterCondition;
use crate::components::{send_form, FormError, FormErrors, InputField};
use crate::model::{is_busy, printer_jobs};
use crate::store::Write;
use crate::FarmStore;
use app::api::NewPrinter;
use app::{JobStatus, Printer};
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
                    <table class="grid" data-testid="printer-table">
                        <thead>
                            <tr>
                                <th scope="col">"ID"</th>
                                <th scope="col">"Company"</th>
                                <th scope="col">"Model"</th>
                                <th scope="col">"State"</th>
                                <th scope="col">"Connection"</th>
                                <th scope="col">"Running and queued jobs"</th>
                                <th scope="col">"History"</th>
                            </tr>
                        </thead>
                        <tbody>
                            <For each=move || printers.get() key=|p| p.id.clone() let:printer>
                                <PrinterRow printer/>
                            </For>
                        </tbody>
                    </table>
                </Show>
            </section>
            <AddPrinterForm/>
        </div>
    }
}

#[component]
fn PrinterRow(printer: Printer) -> AnyView {
    let store = expect_context::<FarmStore>();
    let id = printer.id.to_string();
    let for_busy = printer.clone();
    let busy = Memo::new(move |_| store.data.with(|d| is_busy(&d.jobs, &for_busy)));
    // The row is keyed by id: what changes (connection, status) is read from the store.
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
    view! {
        <tr data-testid=format!("printer-{id}")>
            <td class="mono">{id.clone()}</td>
            <td>{printer.company.as_str().to_owned()}</td>
            <td>{printer.model.as_str().to_owned()}</td>
            <td class="wide">
                // Moved by hand, "busy" is what its jobs say; a connected printer's host
                // says it itself.
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
            </td>
            <td>
                <ConnectionCell id=printer.id.clone()/>
            </td>
            <td>
                <ul class="inline-list">{jobs}</ul>
            </td>
            <td>
                <History filter="printer_id" id=id.clone()/>
            </td>
        </tr>
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
