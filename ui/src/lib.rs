//! The shop-floor dashboard: Leptos components rendered by a node (feature `ssr`, see
//! `shell`) and hydrated in the browser (feature `hydrate`). Its own crate, so that the
//! farm's rules (`app`) carry no UI and no I/O.
//!
//! Owns: what staff see and what their clicks send. Must not decide farm rules (those
//! are in [`app::state`] and answered by the API) and must not build URLs outside
//! `client.rs`. After hydration the browser is just another REST client of `/api/v1`.
//!
//! # Layout
//! - [`model`]: pure view-model functions over [`FarmData`] (unit-tested).
//! - [`store`]: the browser's copy of the farm, the polling loop, leader following and
//!   failover to another node.
//! - [`requests`]: what the dashboard asks (writes, board queries) and how that fails.
//! - [`live`]: the printers' live figures (progress, temperatures), polled while shown.
//! - `client` (browser only): the only place that builds URLs and speaks HTTP.
//! - [`components`]: small shared pieces (fields with errors, status badges, bars).
//! - [`pages`]: one module per page.

// Leptos views are deeply nested types; the default limit is too low for a page.
#![recursion_limit = "256"]

pub mod components;
pub mod live;
pub mod model;
pub mod pages;
pub mod requests;
pub mod store;

#[cfg(feature = "hydrate")]
mod client;

pub use model::FarmData;
pub use store::{FarmStore, InitialFarm};

use leptos::prelude::*;
use leptos_router::components::{Route, Router, Routes, A};
use leptos_router::path;

/// Id of the `<script type="application/json">` that carries the node's first copy of the
/// farm into the page, so the bundle hydrates with exactly the data the node rendered.
pub const INITIAL_DATA_ID: &str = "raft3d-initial";

/// Stylesheets `scripts/build-dashboard.sh` copies into `/pkg/style/`.
pub const STYLESHEETS: [&str; 4] = ["base.css", "layout.css", "board.css", "printers.css"];

/// The whole dashboard: header with navigation and connection state, then one page.
#[component]
pub fn App() -> impl IntoView {
    let initial = use_context::<InitialFarm>().unwrap_or_default();
    let store = FarmStore::new(initial.0);
    provide_context(store);
    provide_context(live::LivePrinters::new(store));
    #[cfg(feature = "hydrate")]
    store.start();

    view! {
        <Router>
            <header class="top">
                <div class="brand">
                    <span class="logo" aria-hidden="true">"▦"</span>
                    <span class="name">"Raft3D"</span>
                </div>
                <nav aria-label="Pages">
                    <A href="/" exact=true>"Overview"</A>
                    <A href="/printers">"Printers"</A>
                    <A href="/filaments">"Filament"</A>
                    <A href="/jobs">"Job board"</A>
                    <A href="/cluster">"Cluster"</A>
                    // The node's own page (no route of the dashboard): the OpenAPI reference.
                    <a href=app::api::Endpoint::Reference.url(&[]) rel="external">"API"</a>
                </nav>
                <components::ConnectionBadge/>
                <components::SignOut/>
            </header>
            <components::FailoverBanner/>
            <components::NodeWarnings/>
            <components::LoginForm/>
            // Without a token there is no farm to show, only the login form above.
            <main hidden=move || store.data.with(|d| d.login_required)>
                <Routes fallback=|| view! { <p class="empty">"No such page."</p> }>
                    <Route path=path!("/") view=pages::overview::OverviewPage/>
                    <Route path=path!("/printers") view=pages::printers::PrintersPage/>
                    <Route path=path!("/filaments") view=pages::filaments::FilamentsPage/>
                    <Route path=path!("/jobs") view=pages::jobs::JobBoardPage/>
                    <Route path=path!("/cluster") view=pages::cluster::ClusterPage/>
                </Routes>
            </main>
        </Router>
    }
}

/// The HTML document a node sends: the farm data it holds, the styles, the hydration
/// scripts, and the [`App`] rendered with that data.
#[cfg(feature = "ssr")]
pub fn shell(options: LeptosOptions) -> impl IntoView {
    use leptos::hydration::HydrationScripts;
    let initial = use_context::<InitialFarm>().unwrap_or_default();
    let initial_json = script_safe_json(&initial.0);
    let stylesheets = STYLESHEETS
        .map(|file| view! { <link rel="stylesheet" href=format!("/pkg/style/{file}")/> });
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <title>"Raft3D — print farm"</title>
                <link rel="icon" href="data:,"/>
                {stylesheets}
                <script type="application/json" id=INITIAL_DATA_ID inner_html=initial_json></script>
                <HydrationScripts options/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// JSON that cannot change how the page around it is parsed: every `<`, `>` and `&`
/// becomes a `\u00XX` escape (the same string to a JSON parser; they can only occur inside
/// strings). Escaping `</` alone is not enough: `<!--<script>` in a printer's name puts
/// the HTML parser in its "double escaped" state, the `</script>` that ends this element
/// no longer does, and the whole page went blank on every node.
pub fn script_safe_json(data: &FarmData) -> String {
    let json = serde_json::to_string(data).unwrap_or_else(|_| "{}".to_owned());
    let mut safe = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => safe.push_str("\\u003c"),
            '>' => safe.push_str("\\u003e"),
            '&' => safe.push_str("\\u0026"),
            c => safe.push(c),
        }
    }
    safe
}

/// Browser entry (called by `frontend`): read the node's copy of the farm, then hydrate.
#[cfg(feature = "hydrate")]
pub fn hydrate() {
    let initial = client::initial_data(INITIAL_DATA_ID);
    leptos::mount::hydrate_body(move || {
        provide_context(InitialFarm(initial));
        view! { <App/> }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn farm_data_in_the_page_cannot_close_its_script_element() {
        let mut data = FarmData::default();
        data.printers.push(app::Printer::new(
            app::Id::parse("p").expect("id"),
            app::domain::Text::parse("</script><script>alert(1)").expect("text"),
            app::domain::Text::parse("x").expect("text"),
        ));
        let json = script_safe_json(&data);
        assert!(!json.contains("</"));
        let back: FarmData = serde_json::from_str(&json).expect("still JSON");
        assert_eq!(back, data);
    }

    #[test]
    fn farm_data_in_the_page_cannot_open_a_comment_or_a_script_either() {
        let mut data = FarmData::default();
        for (n, text) in ["<!--<script>", "a & b > c", "<!-- x -->"]
            .into_iter()
            .enumerate()
        {
            data.printers.push(app::Printer::new(
                app::Id::parse(&format!("p{n}")).expect("id"),
                app::domain::Text::parse(text).expect("text"),
                app::domain::Text::parse("x").expect("text"),
            ));
        }
        let json = script_safe_json(&data);
        assert!(!json.contains(['<', '>', '&']), "{json}");
        let back: FarmData = serde_json::from_str(&json).expect("still JSON");
        assert_eq!(back, data);
    }
}
