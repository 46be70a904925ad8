//! The dashboard on `/`, `/printers`, `/filaments`, `/jobs`, `/cluster`: the node renders
//! the first page with the farm it holds (`leptos_axum`), and serves the Trunk-built
//! bundle under `/pkg` that hydrates it. After that the browser uses `/api/v1` like any
//! other client; CORS lets it call the other members (see [`cors`]).
//!
//! Owns: routes and files of the UI, and which origins may call the API from a browser.
//! Must not: answer API requests (the browser uses the same REST API as everyone).

use super::farm::Farm;
use app::api::{IDEMPOTENCY_KEY_HEADER, LEADER_ID_HEADER, LEADER_URL_HEADER};
use app::ui::{FarmData, InitialFarm};
use axum::http::{header, HeaderName, Method};
use axum::Router;
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::path::Path;
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::ServeDir;

/// The bundle's file names, as `frontend/index.html` makes Trunk write them.
const OUTPUT_NAME: &str = "frontend";

/// The UI routes and `/pkg` files of one node.
pub fn router(farm: Farm, site_dir: &Path) -> Router {
    let pkg_dir = site_dir.join("pkg");
    if !pkg_dir.join(format!("{OUTPUT_NAME}_bg.wasm")).is_file() {
        tracing::warn!(
            dir = %pkg_dir.display(),
            "dashboard bundle not found: pages are rendered but stay static; build it with scripts/build-dashboard.sh"
        );
    }
    let options = LeptosOptions::builder()
        .output_name(OUTPUT_NAME)
        .site_root(site_dir.display().to_string())
        .site_pkg_dir("pkg")
        .build();
    // Also starts Leptos' executor, which server-side rendering needs.
    let routes = generate_route_list(app::ui::App);
    let shell_options = options.clone();
    Router::new()
        .leptos_routes_with_context(
            &options,
            routes,
            move || provide_context(InitialFarm(farm_data(&farm))),
            move || app::ui::shell(shell_options.clone()),
        )
        // `*.gz` siblings are written by the build script: ~2.6x smaller WASM on the wire.
        .nest_service("/pkg", ServeDir::new(pkg_dir).precompressed_gzip())
        .with_state(options)
}

/// What the first page shows: this node's own copy (no waiting for a leader, so the page
/// renders even during an election; the browser's first poll brings linearizable data).
fn farm_data(farm: &Farm) -> FarmData {
    let cluster = farm.cluster_view();
    let applied = farm.local_state();
    FarmData {
        printers: applied.farm.printers().cloned().collect(),
        filaments: applied.farm.filaments().collect(),
        jobs: applied.farm.jobs().cloned().collect(),
        cluster: Some(cluster),
    }
}

/// The API answers browsers only from the cluster's own origins (each member's client
/// URL), so a dashboard loaded from one node may call the others and nothing else may.
pub fn cors(farm: Farm) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, _| {
            origin.to_str().is_ok_and(|origin| {
                farm.member_urls()
                    .iter()
                    .any(|url| same_origin(url, origin))
            })
        }))
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([
            header::CONTENT_TYPE,
            HeaderName::from_static(IDEMPOTENCY_KEY_HEADER),
        ])
        .expose_headers([
            header::LOCATION,
            header::RETRY_AFTER,
            HeaderName::from_static(LEADER_ID_HEADER),
            HeaderName::from_static(LEADER_URL_HEADER),
        ])
        .max_age(Duration::from_secs(600))
}

/// Whether `origin` (`scheme://host[:port]`) is the origin of `url`. `localhost` and
/// `127.0.0.1` count as the same host: the local cluster advertises the latter and
/// people type the former.
fn same_origin(url: &str, origin: &str) -> bool {
    let normalize = |s: &str| -> String {
        let s = s.trim_end_matches('/').to_ascii_lowercase();
        let (scheme, rest) = s.split_once("://").unwrap_or(("http", s.as_str()));
        let authority = rest.split('/').next().unwrap_or_default();
        let authority = match authority.strip_prefix("localhost") {
            Some(port) => format!("127.0.0.1{port}"),
            None => authority.to_owned(),
        };
        let authority = match (scheme, authority.rsplit_once(':')) {
            (_, Some((_, port))) if port.parse::<u16>().is_ok() => authority,
            ("https", _) => format!("{authority}:443"),
            _ => format!("{authority}:80"),
        };
        format!("{scheme}://{authority}")
    };
    normalize(url) == normalize(origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_origins_match_with_or_without_default_ports_and_localhost() {
        assert!(same_origin(
            "http://127.0.0.1:8081",
            "http://127.0.0.1:8081"
        ));
        assert!(same_origin(
            "http://127.0.0.1:8081/",
            "http://localhost:8081"
        ));
        assert!(same_origin("http://farm.example", "http://farm.example:80"));
        assert!(same_origin(
            "https://Farm.Example/",
            "https://farm.example:443"
        ));
    }

    #[test]
    fn other_origins_do_not_match() {
        assert!(!same_origin(
            "http://127.0.0.1:8081",
            "http://127.0.0.1:8082"
        ));
        assert!(!same_origin(
            "http://127.0.0.1:8081",
            "https://127.0.0.1:8081"
        ));
        assert!(!same_origin(
            "http://farm.example",
            "http://farm.example.evil.com"
        ));
        assert!(!same_origin("http://127.0.0.1:8081", "null"));
    }
}
