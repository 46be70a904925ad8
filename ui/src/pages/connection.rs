//! How Raft3D reaches a printer's host: the connection as the printer shows it (kind,
//! URL, whether an API key is stored — the key itself is never shown again), a form to
//! connect it or change how (auto-dispatch, whether it clears its own bed), and
//! Disconnect. The form checks its body with the server's
//! own parser ([`NewConnection::from_json`]) before sending.

use crate::components::{send_form, submit, Field, FormError, FormErrors, InputField};
use crate::store::Write;
use crate::FarmStore;
use app::api::NewConnection;
use app::domain::{Connection, ConnectionKind};
use app::Id;
use leptos::prelude::*;

const FIELDS: &[&str] = &["kind", "url", "api_key", "auto_dispatch", "self_clearing"];

fn kind_name(kind: ConnectionKind) -> &'static str {
    match kind {
        ConnectionKind::OctoPrint => "OctoPrint",
        ConnectionKind::Moonraker => "Moonraker",
    }
}

/// Printer `id`'s connection, with Connect / Change and Disconnect.
#[component]
pub fn ConnectionCell(id: Id) -> AnyView {
    let store = expect_context::<FarmStore>();
    let key = id.clone();
    let connection = Memo::new(move |_| {
        store.data.with(|d| {
            d.printers
                .iter()
                .find(|p| p.id == key)
                .and_then(|p| p.connection.clone())
        })
    });
    let editing = RwSignal::new(false);
    let errors = RwSignal::new(FormErrors::default());
    let busy = RwSignal::new(false);
    let printer_id = id.to_string();
    let disconnect = {
        let printer_id = printer_id.clone();
        move |_| {
            let write = Write::DisconnectPrinter {
                printer_id: printer_id.clone(),
            };
            leptos::task::spawn_local(async move {
                submit(store, write, busy, errors).await;
            });
        }
    };
    let form_id = format!("connect-{id}");
    view! {
        <div class="connection-cell" data-testid="printer-connection">
            {move || connection.get().map(|c| view! { <ConnectionSummary connection=c/> })}
            <div class="connection-actions">
                <button
                    type="button"
                    class="quiet"
                    aria-expanded=move || editing.get().to_string()
                    aria-controls=form_id.clone()
                    on:click=move |_| editing.update(|open| *open = !*open)
                >
                    {move || match (editing.get(), connection.with(Option::is_some)) {
                        (true, _) => "Close",
                        (false, true) => "Change connection",
                        (false, false) => "Connect…",
                    }}
                </button>
                <Show when=move || connection.with(Option::is_some)>
                    <button
                        type="button"
                        class="quiet danger"
                        disabled=move || busy.get()
                        aria-label=format!("Disconnect {printer_id}")
                        on:click=disconnect.clone()
                    >
                        "Disconnect"
                    </button>
                </Show>
            </div>
            <p class="form-error" aria-live="polite">{move || errors.with(|e| e.message.clone())}</p>
            <Show when=move || editing.get()>
                <ConnectForm id=id.clone() editing/>
            </Show>
        </div>
    }
    // Erased: the page's view type would otherwise be too deep for the node's
    // compiler to prove it `Send`.
    .into_any()
}

/// "OctoPrint · http://octopi.local", then "API key set · queued jobs are sent to it by
/// themselves · waits for its bed to be cleared after each job".
#[component]
fn ConnectionSummary(connection: Connection) -> impl IntoView {
    view! {
        <p class="connection-summary">
            <span>{kind_name(connection.kind)}</span>
            " · "
            <span class="mono">{connection.url.clone()}</span>
        </p>
        <p class="hint">
            <span data-testid="api-key-state">
                {if connection.api_key_set { "API key set" } else { "no API key" }}
            </span>
            " · "
            {if connection.auto_dispatch {
                "queued jobs are sent to it by themselves"
            } else {
                "jobs are sent to it by hand"
            }}
            " · "
            <span data-testid="self-clearing-state">
                {if connection.self_clearing {
                    "clears its own bed"
                } else {
                    "waits for its bed to be cleared after each job"
                }}
            </span>
        </p>
    }
}

/// Kind, URL, API key (a password field, never filled back in), auto-dispatch, and
/// whether the printer clears its own bed.
#[component]
fn ConnectForm(id: Id, editing: RwSignal<bool>) -> AnyView {
    let store = expect_context::<FarmStore>();
    let current = store.data.with_untracked(|d| {
        d.printers
            .iter()
            .find(|p| p.id == id)
            .and_then(|p| p.connection.clone())
    });
    let kind = RwSignal::new(
        current
            .as_ref()
            .map_or(ConnectionKind::OctoPrint, |c| c.kind)
            .as_str()
            .to_owned(),
    );
    let url = RwSignal::new(current.as_ref().map(|c| c.url.clone()).unwrap_or_default());
    let api_key = RwSignal::new(String::new());
    let auto_dispatch = RwSignal::new(current.as_ref().is_none_or(|c| c.auto_dispatch));
    let self_clearing = RwSignal::new(current.as_ref().is_some_and(|c| c.self_clearing));
    let errors = RwSignal::new(FormErrors::default());
    let busy = RwSignal::new(false);
    let form = format!("connect-{id}");
    let (kind_id, key_id) = (format!("{form}-kind"), format!("{form}-api_key"));
    let key_described_by = format!("{form}-api_key-error {form}-api_key-hint");
    let key_hint_id = format!("{form}-api_key-hint");
    let printer_id = id.to_string();
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let mut body = serde_json::json!({
            "kind": kind.get(),
            "url": url.get(),
            "auto_dispatch": auto_dispatch.get(),
            "self_clearing": self_clearing.get(),
        });
        let key = api_key.get();
        if !key.is_empty() {
            body["api_key"] = serde_json::Value::from(key);
        }
        let printer_id = printer_id.clone();
        let clear = move || {
            api_key.set(String::new());
            editing.set(false);
        };
        send_form(
            store,
            body,
            NewConnection::from_json,
            move |body| Write::ConnectPrinter { printer_id, body },
            busy,
            errors,
            clear,
        );
    };
    let kinds = [ConnectionKind::OctoPrint, ConnectionKind::Moonraker]
        .map(|k| view! { <option value=k.as_str()>{kind_name(k)}</option> });
    view! {
        <form
            class="connect-form"
            id=form.clone()
            aria-label=format!("Connect printer {id}")
            on:submit=on_submit
            novalidate
        >
            <Field label="Host" name="kind" form=form.clone() errors>
                <select
                    id=kind_id
                    prop:value=move || kind.get()
                    on:change=move |ev| kind.set(event_target_value(&ev))
                >
                    {kinds}
                </select>
            </Field>
            <InputField label="URL" name="url" form=form.clone() value=url errors placeholder="http://octopi.local"/>
            <Field label="API key" name="api_key" form=form.clone() errors>
                <input
                    id=key_id
                    name="api_key"
                    type="password"
                    autocomplete="off"
                    spellcheck="false"
                    aria-describedby=key_described_by
                    bind:value=api_key
                />
            </Field>
            <p class="hint" id=key_hint_id>
                "Never shown again once sent. Leave it empty for a host that needs none; "
                "saving without it forgets a stored key."
            </p>
            <label class="check">
                <input type="checkbox" bind:checked=auto_dispatch/>
                "Send it queued jobs of stored files by itself (auto-dispatch)"
            </label>
            <label class="check">
                <input type="checkbox" bind:checked=self_clearing/>
                "Clears its own bed (a belt or ejecting printer): take the next job at once, "
                "without waiting for someone to clear it"
            </label>
            <FormError errors fields=FIELDS form=form.clone()/>
            <button type="submit" disabled=move || busy.get()>
                {move || if busy.get() { "Connecting…" } else { "Connect" }}
            </button>
        </form>
    }
    // Erased: the page's view type would otherwise be too deep for the node's
    // compiler to prove it `Send`.
    .into_any()
}
