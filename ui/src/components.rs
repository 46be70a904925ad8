//! Small pieces every page uses: labelled fields that show the API's error next to
//! them, status badges that carry text as well as colour, spool bars, and the header's
//! connection state and failover banner, and the login form.

use super::model::{grams, spool_bar};
use super::store::{ApiFailure, FarmStore, Write};
use app::api::{RequestError, Role};
use app::state::FilamentView;
use app::JobStatus;
use leptos::prelude::*;

/// What went wrong with a form's last submission: a message, and the field it is about
/// when the rules or the server named one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormErrors {
    pub field: Option<String>,
    pub message: Option<String>,
}

impl FormErrors {
    /// The message, if it is about `field`.
    pub fn for_field(&self, field: &str) -> Option<String> {
        (self.field.as_deref() == Some(field))
            .then(|| self.message.clone())
            .flatten()
    }

    /// The message, if it is about none of `fields` (shown under the form).
    pub fn general(&self, fields: &[&str]) -> Option<String> {
        match &self.field {
            Some(field) if fields.contains(&field.as_str()) => None,
            _ => self.message.clone(),
        }
    }

    pub fn from_request(error: &RequestError) -> Self {
        Self {
            field: error.field().map(str::to_owned),
            message: Some(error.to_string()),
        }
    }

    pub fn from_failure(failure: &ApiFailure) -> Self {
        Self {
            field: failure.field().map(str::to_owned),
            message: Some(failure.to_string()),
        }
    }
}

/// A form's submission: checks `body` with the rules the server applies (nothing is sent
/// if they refuse it), then sends it as the request's body type (`app::api::New*Body`, what
/// every client sends) and calls `clear` once the write landed.
pub fn send_form<T, B: serde::de::DeserializeOwned + 'static>(
    store: FarmStore,
    body: serde_json::Value,
    check: fn(&[u8]) -> Result<T, RequestError>,
    into_write: impl FnOnce(B) -> Write + 'static,
    busy: RwSignal<bool>,
    errors: RwSignal<FormErrors>,
    clear: impl FnOnce() + 'static,
) {
    if let Err(error) = check(body.to_string().as_bytes()) {
        errors.set(FormErrors::from_request(&error));
        return;
    }
    // What passed the server's own parser fits the request's body type.
    let body: B = match serde_json::from_value(body) {
        Ok(body) => body,
        Err(e) => {
            let error = RequestError::MalformedJson(e.to_string());
            errors.set(FormErrors::from_request(&error));
            return;
        }
    };
    leptos::task::spawn_local(async move {
        if submit(store, into_write(body), busy, errors).await {
            clear();
        }
    });
}

/// Sends `write` through the store; `busy` is true meanwhile, `errors` gets the outcome.
/// Returns whether the write landed, to let the form clear itself.
pub async fn submit(
    store: FarmStore,
    write: Write,
    busy: RwSignal<bool>,
    errors: RwSignal<FormErrors>,
) -> bool {
    busy.set(true);
    let result = store.write(write).await;
    busy.set(false);
    match result {
        Ok(()) => {
            errors.set(FormErrors::default());
            true
        }
        Err(failure) => {
            errors.set(FormErrors::from_failure(&failure));
            false
        }
    }
}

/// A labelled control with room for its error below, reserved so nothing jumps when
/// an error appears. The control inside must have id `{form}-{name}`.
#[component]
pub fn Field(
    label: &'static str,
    /// The API field name.
    name: &'static str,
    /// Prefix of the ids: unique on the page (a form shown once per printer has the
    /// printer's id in it).
    #[prop(into)]
    form: String,
    errors: RwSignal<FormErrors>,
    children: Children,
) -> impl IntoView {
    let error = move || errors.with(|e| e.for_field(name));
    view! {
        <div class="field" class:invalid=move || error().is_some()>
            <label for=format!("{form}-{name}")>{label}</label>
            {children()}
            <p
                class="field-error"
                id=format!("{form}-{name}-error")
                data-testid=format!("{form}-{name}-error")
                aria-live="polite"
            >
                {error}
            </p>
        </div>
    }
}

/// A text or number input bound to `value`, inside a [`Field`].
#[component]
pub fn InputField(
    label: &'static str,
    name: &'static str,
    #[prop(into)] form: String,
    value: RwSignal<String>,
    errors: RwSignal<FormErrors>,
    #[prop(default = "text")] kind: &'static str,
    #[prop(optional)] placeholder: &'static str,
) -> impl IntoView {
    let invalid = move || errors.with(|e| e.for_field(name).is_some());
    view! {
        <Field label name form=form.clone() errors>
            <input
                id=format!("{form}-{name}")
                name=name
                type=kind
                placeholder=placeholder
                inputmode=if kind == "number" { "numeric" } else { "text" }
                min=if kind == "number" { Some("0") } else { None }
                aria-invalid=move || invalid().to_string()
                aria-describedby=format!("{form}-{name}-error")
                bind:value=value
            />
        </Field>
    }
}

/// The form's error that belongs to no field of it (e.g. "no leader answered").
#[component]
pub fn FormError(
    errors: RwSignal<FormErrors>,
    fields: &'static [&'static str],
    #[prop(into)] form: String,
) -> impl IntoView {
    view! {
        <p class="form-error" data-testid=format!("{form}-error") aria-live="polite">
            {move || errors.with(|e| e.general(fields))}
        </p>
    }
}

/// A job status as text on a colour that also differs in shape (border style), so it
/// reads without colour vision.
#[component]
pub fn StatusBadge(status: JobStatus) -> impl IntoView {
    view! {
        <span class=format!("badge status-{}", status.as_str().to_lowercase())>
            {status.as_str()}
        </span>
    }
}

/// Remaining / reserved / available of a spool as a bar, with the numbers in text.
#[component]
pub fn SpoolBar(spool: FilamentView) -> impl IntoView {
    let (used, reserved, available) = spool_bar(&spool);
    let total = spool.filament.total_weight_in_grams;
    let summary = format!(
        "{} of {} left; {} reserved, {} available",
        grams(spool.filament.remaining_weight_in_grams),
        grams(total),
        grams(spool.reserved_weight_in_grams),
        grams(spool.available_weight_in_grams),
    );
    view! {
        <div class="spool-bar" role="img" aria-label=summary.clone() title=summary>
            <span class="seg used" style=format!("width:{used:.2}%")></span>
            <span class="seg reserved" style=format!("width:{reserved:.2}%")></span>
            <span class="seg available" style=format!("width:{available:.2}%")></span>
        </div>
    }
}

/// Which node this browser talks to, its role, the leader, and data freshness.
#[component]
pub fn ConnectionBadge() -> impl IntoView {
    let store = expect_context::<FarmStore>();
    let summary = move || {
        store.data.with(|d| match &d.cluster {
            Some(c) => {
                let leader = match (c.leader_id, c.role) {
                    (_, Role::Leader) => "this node leads".to_owned(),
                    (Some(id), _) => format!("leader: node {id}"),
                    (None, _) => "no leader".to_owned(),
                };
                format!("Node {} · {} · {leader}", c.node_id, c.role)
            }
            None => "not connected".to_owned(),
        })
    };
    let freshness = move || {
        if store.show_login() {
            return "signed out: sign in to see the farm".to_owned();
        }
        store
            .link
            .with(|l| match (&l.trouble, l.stale, &l.refreshed_at) {
                (Some(trouble), _, _) => format!("⚠ {trouble}"),
                (None, true, Some(at)) => format!("stale copy (no leader) · {at}"),
                (None, false, Some(at)) => format!("live · {at}"),
                (None, _, None) => "as rendered by the node".to_owned(),
            })
    };
    let state_class = move || {
        if store.show_login() {
            return "connection signed-out";
        }
        store.link.with(|l| {
            if l.trouble.is_some() {
                "connection trouble"
            } else if l.stale {
                "connection stale"
            } else {
                "connection live"
            }
        })
    };
    view! {
        <div class=state_class data-testid="connection" aria-live="polite">
            <span class="who">{summary}</span>
            <span class="freshness" data-testid="freshness">{freshness}</span>
        </div>
    }
}

/// Says which node stopped answering and which one this page moved to.
#[component]
pub fn FailoverBanner() -> impl IntoView {
    let store = expect_context::<FarmStore>();
    let notice = move || store.link.with(|l| l.notice.clone());
    view! {
        <Show when=move || notice().is_some()>
            <div class="banner" role="status" data-testid="failover-banner">
                <span>{notice}</span>
                <button
                    type="button"
                    class="quiet"
                    on:click=move |_| store.link.update(|l| l.notice = None)
                >
                    "Dismiss"
                </button>
            </div>
        </Show>
    }
}

/// The answering node's warnings (`ClusterView::warnings`, e.g. `--insecure`), on every
/// page: the staff at the screen may be the first to see that a farm runs unprotected.
#[component]
pub fn NodeWarnings() -> impl IntoView {
    let store = expect_context::<FarmStore>();
    let warnings = move || {
        store.data.with(|d| {
            d.cluster
                .as_ref()
                .map(|c| c.warnings.clone())
                .unwrap_or_default()
        })
    };
    view! {
        <For each=warnings key=|warning| warning.clone() let:warning>
            <div class="banner warning" role="alert" data-testid="node-warning">
                {warning}
            </div>
        </For>
    }
}

/// Asks for an API token when the cluster wants one and this tab has none (see
/// "Signing in" in [`super::store`]). The button stays disabled until the bundle has
/// hydrated the page: a form submitted before that would be sent by the browser itself.
#[component]
pub fn LoginForm() -> impl IntoView {
    let store = expect_context::<FarmStore>();
    let typed = RwSignal::new(String::new());
    // Effects run only in the browser, after hydration: the node and the first render
    // in the browser both have the button disabled.
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        store.sign_in(&typed.get_untracked());
        typed.set(String::new());
    };
    let message = move || store.session.with(|s| s.message.clone());
    view! {
        <Show when=move || store.show_login()>
            // `post`: should it ever be submitted by the browser, the token is not put
            // into the URL (history, logs).
            <form
                class="panel login"
                method="post"
                data-testid="login-form"
                aria-labelledby="login-title"
                on:submit=on_submit
            >
                <h2 id="login-title">"Sign in"</h2>
                <p class="hint">
                    "This cluster needs an API token to show or change the farm. Ask its admin for one ("
                    <code>"raft3d ctl tokens create"</code>
                    "). It stays in this tab only and is gone when the tab closes."
                </p>
                <div class="field" class:invalid=move || message().is_some()>
                    <label for="login-token">"API token"</label>
                    <input
                        id="login-token"
                        name="token"
                        type="password"
                        autocomplete="off"
                        spellcheck="false"
                        data-testid="login-token"
                        aria-describedby="login-error"
                        bind:value=typed
                    />
                    <p class="field-error" id="login-error" data-testid="login-error" aria-live="polite">
                        {message}
                    </p>
                </div>
                <button type="submit" disabled=move || !hydrated.get()>"Sign in"</button>
            </form>
        </Show>
    }
}

/// "Sign out" in the header while this tab holds a token.
#[component]
pub fn SignOut() -> impl IntoView {
    let store = expect_context::<FarmStore>();
    view! {
        <Show when=move || store.signed_in()>
            <button
                type="button"
                class="quiet sign-out"
                data-testid="sign-out"
                on:click=move |_| store.sign_out()
            >
                "Sign out"
            </button>
        </Show>
    }
}
