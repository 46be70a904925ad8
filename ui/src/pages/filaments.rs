//! Filament: every spool with a bar of used / reserved / available grams, a filter by
//! type and colour, and a form to add a spool.

use super::history::History;
use crate::components::{send_form, Field, FormError, FormErrors, InputField, SpoolBar};
use crate::model::{filter_spools, grams, is_low, number_json};
use crate::store::Write;
use crate::FarmStore;
use app::api::NewFilament;
use app::state::FilamentView;
use app::FilamentType;
use leptos::prelude::*;

const FORM: &str = "filament";
const FIELDS: &[&str] = &[
    "id",
    "type",
    "color",
    "total_weight_in_grams",
    "remaining_weight_in_grams",
];

#[component]
pub fn FilamentsPage() -> impl IntoView {
    let store = expect_context::<FarmStore>();
    let kind_filter = RwSignal::new(String::new());
    let color_filter = RwSignal::new(String::new());
    let shown = Memo::new(move |_| {
        let kind = kind_filter.with(|k| k.parse::<FilamentType>().ok());
        store.data.with(|d| {
            color_filter.with(|color| {
                filter_spools(&d.filaments, kind, color)
                    .into_iter()
                    .cloned()
                    .collect::<Vec<_>>()
            })
        })
    });
    view! {
        <h1>"Filament"</h1>
        <div class="split">
            <section aria-labelledby="spool-list">
                <h2 id="spool-list" class="visually-hidden">"All spools"</h2>
                <div class="filters" role="search">
                    <label>
                        "Type "
                        <select
                            data-testid="filter-type"
                            prop:value=move || kind_filter.get()
                            on:change=move |ev| kind_filter.set(event_target_value(&ev))
                        >
                            <option value="">"All types"</option>
                            {FilamentType::ALL
                                .map(|k| view! { <option value=k.as_str()>{k.as_str()}</option> })}
                        </select>
                    </label>
                    <label>
                        "Colour "
                        <input type="search" data-testid="filter-color" placeholder="any" bind:value=color_filter/>
                    </label>
                </div>
                <Show
                    when=move || !shown.with(Vec::is_empty)
                    fallback=|| view! { <p class="empty">"No spool matches."</p> }
                >
                    <table class="grid" data-testid="filament-table">
                        <thead>
                            <tr>
                                <th scope="col">"ID"</th>
                                <th scope="col">"Type"</th>
                                <th scope="col">"Colour"</th>
                                <th scope="col" class="wide">"Used · reserved · available"</th>
                                <th scope="col" class="num">"Remaining"</th>
                                <th scope="col" class="num">"Reserved"</th>
                                <th scope="col" class="num">"Available"</th>
                                <th scope="col">"History"</th>
                            </tr>
                        </thead>
                        <tbody>
                            <For each=move || shown.get() key=|s| (s.filament.id.clone(), s.filament.remaining_weight_in_grams, s.reserved_weight_in_grams) let:spool>
                                <SpoolRow spool/>
                            </For>
                        </tbody>
                    </table>
                </Show>
            </section>
            <AddFilamentForm/>
        </div>
    }
}

#[component]
fn SpoolRow(spool: FilamentView) -> impl IntoView {
    let id = spool.filament.id.to_string();
    let low = is_low(&spool);
    view! {
        <tr data-testid=format!("filament-{id}") class:low=low>
            <td class="mono">{id.clone()}</td>
            <td>{spool.filament.kind.as_str()}</td>
            <td>{spool.filament.color.as_str().to_owned()}</td>
            <td class="wide">
                <SpoolBar spool=spool.clone()/>
                {low.then(|| view! { <span class="badge low">"Low"</span> })}
            </td>
            <td class="num" data-testid="remaining">
                {format!("{} / {}", grams(spool.filament.remaining_weight_in_grams), grams(spool.filament.total_weight_in_grams))}
            </td>
            <td class="num" data-testid="reserved">{grams(spool.reserved_weight_in_grams)}</td>
            <td class="num" data-testid="available">{grams(spool.available_weight_in_grams)}</td>
            <td><History filter="filament_id" id=id.clone()/></td>
        </tr>
    }
}

#[component]
fn AddFilamentForm() -> impl IntoView {
    let store = expect_context::<FarmStore>();
    let kind = RwSignal::new(FilamentType::Pla.as_str().to_owned());
    let color = RwSignal::new(String::new());
    let total = RwSignal::new(String::new());
    let remaining = RwSignal::new(String::new());
    let errors = RwSignal::new(FormErrors::default());
    let busy = RwSignal::new(false);
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let mut body = serde_json::json!({
            "type": kind.get(),
            "color": color.get(),
            "total_weight_in_grams": number_json(&total.get()),
        });
        // Blank remaining means a full spool (the API's default).
        if !remaining.with(|r| r.trim().is_empty()) {
            body["remaining_weight_in_grams"] = number_json(&remaining.get());
        }
        let clear = move || {
            color.set(String::new());
            total.set(String::new());
            remaining.set(String::new());
        };
        send_form(
            store,
            body,
            NewFilament::from_json,
            Write::CreateFilament,
            busy,
            errors,
            clear,
        );
    };
    view! {
        <form class="panel" on:submit=on_submit aria-labelledby="filament-form-title" novalidate>
            <h2 id="filament-form-title">"Add a spool"</h2>
            <Field label="Type" name="type" form=FORM errors>
                <select
                    id="filament-type"
                    prop:value=move || kind.get()
                    on:change=move |ev| kind.set(event_target_value(&ev))
                >
                    {FilamentType::ALL
                        .map(|k| view! { <option value=k.as_str()>{k.as_str()}</option> })}
                </select>
            </Field>
            <InputField label="Colour" name="color" form=FORM value=color errors placeholder="Galaxy black"/>
            <InputField label="Total weight (g)" name="total_weight_in_grams" form=FORM value=total errors kind="number" placeholder="1000"/>
            <InputField label="Remaining (g, blank = full)" name="remaining_weight_in_grams" form=FORM value=remaining errors kind="number"/>
            <FormError errors fields=FIELDS form=FORM/>
            <button type="submit" disabled=move || busy.get()>
                {move || if busy.get() { "Adding…" } else { "Add spool" }}
            </button>
        </form>
    }
}
