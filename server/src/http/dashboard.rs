//! The dashboard on `/`, `/printers`, `/filaments`, `/jobs`, `/cluster`: the node renders
//! the first page with the farm it holds (`leptos_axum`), and serves the WASM
//! bundle under `/pkg` that hydrates it. After that the browser uses `/api/v1` like any
//! other client; CORS lets it call the other members (see [`cors`]).
//!
//! Owns: routes and files of the UI (the bundle `build.rs` embeds in the binary, or the
//! one in `--site-dir`), and which origins may call the API from a browser.
//! Must not: answer API requests (the browser uses the same REST API as everyone).

use super::farm::Farm;
use app::api::{
    BOARD_LIMIT, IDEMPOTENCY_KEY_HEADER, INDEX_HEADER, LEADER_ID_HEADER, LEADER_URL_HEADER,
};
use axum::extract::Path as UrlPath;
use axum::http::{header, HeaderMap, HeaderName, Method};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use dashboard::{FarmData, InitialFarm};
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::path::Path;
use std::sync::Once;
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::ServeDir;

/// The bundle's file names, as `scripts/build-dashboard.sh` writes them (`--out-name`).
const OUTPUT_NAME: &str = "frontend";

/// Leptos reads `<site root>/pkg/__wasm_split_manifest.json` once per process (for
/// wasm-split bundles, which the build does not make here). A node serving its embedded
/// bundle has no site root; nothing can exist below `/dev/null`, so no stray file in the
/// working directory can change its pages.
const NO_SITE_ROOT: &str = "/dev/null";

/// The UI routes and `/pkg` files of one node: the bundle in `site_dir/pkg` when given
/// (developers iterating on the UI rebuild it and reload, without rebuilding the node),
/// else the one embedded in the binary.
///
/// `anonymous_may_read`: whether a page may carry farm data to a caller without a token
/// (a navigation carries none: the page's token lives in the page, see `dashboard::store`).
/// When not, pages render empty and ask for a token; the browser then reads the farm
/// through the API with it.
pub fn router(farm: Farm, anonymous_may_read: bool, site_dir: Option<&Path>) -> Router {
    let wasm = format!("{OUTPUT_NAME}_bg.wasm");
    let site_root = match site_dir {
        Some(site_dir) => {
            let pkg_dir = site_dir.join("pkg");
            if !pkg_dir.join(&wasm).is_file() {
                tracing::warn!(
                    dir = %pkg_dir.display(),
                    "dashboard bundle not found in --site-dir: pages are rendered but stay static; build it with scripts/build-dashboard.sh"
                );
            }
            site_dir.display().to_string()
        }
        None => {
            if embedded::find(embedded::FILES, &wasm).is_none() {
                // Once per process: tests and `raft3d cluster` start many nodes.
                static SAID: Once = Once::new();
                SAID.call_once(|| {
                    tracing::info!(
                        "this binary has no dashboard bundle: pages are rendered but not interactive; run scripts/build-dashboard.sh before cargo build (or pass --site-dir)"
                    );
                });
            }
            NO_SITE_ROOT.to_owned()
        }
    };
    let options = LeptosOptions::builder()
        .output_name(OUTPUT_NAME)
        .site_root(site_root)
        .site_pkg_dir("pkg")
        .build();
    // Also starts Leptos' executor, which server-side rendering needs.
    let routes = generate_route_list(dashboard::App);
    let shell_options = options.clone();
    let router = Router::new().leptos_routes_with_context(
        &options,
        routes,
        move || {
            let initial = match anonymous_may_read {
                true => farm_data(&farm),
                false => FarmData::login_required(),
            };
            provide_context(InitialFarm(initial))
        },
        move || dashboard::shell(shell_options.clone()),
    );
    let router = match site_dir {
        // `*.gz` siblings (scripts/build-dashboard.sh): ~2.6x smaller WASM on the wire.
        Some(site_dir) => router.nest_service(
            "/pkg",
            ServeDir::new(site_dir.join("pkg")).precompressed_gzip(),
        ),
        None => router.route("/pkg/{*path}", get(embedded_file)),
    };
    router.with_state(options)
}

async fn embedded_file(UrlPath(path): UrlPath<String>, headers: HeaderMap) -> Response {
    embedded::respond(embedded::FILES, &path, &headers)
}

/// The bundle compiled into the binary, and how it is served.
///
/// Owns: the table `build.rs` generates and the answer to a `/pkg/...` request from
/// it (content type, gzip when the client takes it, revalidation by ETag). Pure
/// functions of the table and the request, so a small table tests them.
mod embedded {
    use axum::body::Body;
    use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
    use axum::response::{IntoResponse, Response};

    /// One file below `/pkg`.
    pub struct EmbeddedFile {
        /// Path after `/pkg/`, `/`-separated (`frontend_bg.wasm`, `style/base.css`).
        pub path: &'static str,
        pub body: EmbeddedBody,
        /// The precompressed copy `scripts/build-dashboard.sh` writes next to it.
        pub gzip: Option<EmbeddedBody>,
    }

    /// The bytes of one representation, and its quoted strong ETag.
    pub struct EmbeddedBody {
        pub bytes: &'static [u8],
        pub etag: &'static str,
    }

    /// The bundle found when the binary was built; empty when there was none.
    pub static FILES: &[EmbeddedFile] = include!(concat!(env!("OUT_DIR"), "/dashboard_bundle.rs"));

    /// File names are unhashed (`frontend_bg.wasm`), so a browser must not reuse a copy
    /// after the node is upgraded: it asks every time and gets a `304` when nothing
    /// changed.
    const CACHE_CONTROL: &str = "no-cache";

    pub fn find<'a>(files: &'a [EmbeddedFile], path: &str) -> Option<&'a EmbeddedFile> {
        files.iter().find(|file| file.path == path)
    }

    /// The answer to `GET`/`HEAD /pkg/{path}` (axum drops the body for `HEAD`).
    pub fn respond(files: &'static [EmbeddedFile], path: &str, headers: &HeaderMap) -> Response {
        let Some(file) = find(files, path) else {
            return StatusCode::NOT_FOUND.into_response();
        };
        let (body, gzipped) = match &file.gzip {
            Some(gzip) if accepts_gzip(headers) => (gzip, true),
            _ => (&file.body, false),
        };
        let mut response = if etag_matches(headers, body.etag) {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            let mut response = Body::from(body.bytes).into_response();
            let response_headers = response.headers_mut();
            response_headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(content_type(file.path)),
            );
            if gzipped {
                response_headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            }
            response
        };
        let response_headers = response.headers_mut();
        response_headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(CACHE_CONTROL),
        );
        // Built by build.rs as a quoted hex hash, so always a valid header value.
        if let Ok(etag) = HeaderValue::from_str(body.etag) {
            response_headers.insert(header::ETAG, etag);
        }
        if file.gzip.is_some() {
            // Caches must key this URL by the request's encodings.
            response_headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
        response
    }

    /// By extension, for the files the bundle holds; `application/wasm` is what lets the
    /// browser compile the WASM while it downloads.
    pub fn content_type(path: &str) -> &'static str {
        let extension = path.rsplit_once('.').map_or("", |(_, extension)| extension);
        let is = |known: &str| extension.eq_ignore_ascii_case(known);
        if is("wasm") {
            "application/wasm"
        } else if is("js") || is("mjs") {
            "text/javascript; charset=utf-8"
        } else if is("css") {
            "text/css; charset=utf-8"
        } else if is("html") {
            "text/html; charset=utf-8"
        } else if is("json") || is("map") {
            "application/json"
        } else if is("svg") {
            "image/svg+xml"
        } else if is("png") {
            "image/png"
        } else if is("ico") {
            "image/x-icon"
        } else if is("woff2") {
            "font/woff2"
        } else if is("txt") {
            "text/plain; charset=utf-8"
        } else {
            "application/octet-stream"
        }
    }

    /// Whether `Accept-Encoding` allows gzip: named (`gzip`, `x-gzip`) or through `*`,
    /// with a non-zero `q`. A name's own entry beats `*`; an entry whose `q` does not
    /// parse is ignored (the plain file always works).
    pub fn accepts_gzip(headers: &HeaderMap) -> bool {
        let mut gzip = None;
        let mut any = None;
        let entries = headers
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','));
        for entry in entries {
            let mut parts = entry.split(';');
            let coding = parts.next().unwrap_or_default().trim();
            let q = parts
                .filter_map(|param| param.split_once('='))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
                .map_or(Some(1.0), |(_, q)| q.trim().parse::<f32>().ok());
            let Some(q) = q else { continue };
            if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                gzip = Some(q > 0.0);
            } else if coding == "*" {
                any = Some(q > 0.0);
            }
        }
        gzip.or(any).unwrap_or(false)
    }

    /// Whether `If-None-Match` names `etag` (or is `*`); weak comparison, as RFC 9110
    /// asks for this header.
    fn etag_matches(headers: &HeaderMap, etag: &str) -> bool {
        headers
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use axum::body::to_bytes;

        static TABLE: &[EmbeddedFile] = &[
            EmbeddedFile {
                path: "frontend_bg.wasm",
                body: EmbeddedBody {
                    bytes: b"\0asm plain",
                    etag: "\"plain\"",
                },
                gzip: Some(EmbeddedBody {
                    bytes: b"gz",
                    etag: "\"gzipped\"",
                }),
            },
            EmbeddedFile {
                path: "style/base.css",
                body: EmbeddedBody {
                    bytes: b"body {}",
                    etag: "\"css\"",
                },
                gzip: None,
            },
        ];

        fn request(pairs: &[(header::HeaderName, &'static str)]) -> HeaderMap {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                headers.append(name, HeaderValue::from_static(value));
            }
            headers
        }

        fn header(response: &Response, name: header::HeaderName) -> Option<&str> {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
        }

        async fn body(response: Response) -> Vec<u8> {
            to_bytes(response.into_body(), usize::MAX)
                .await
                .map(|bytes| bytes.to_vec())
                .unwrap_or_default()
        }

        #[test]
        fn lookup_is_by_exact_path_below_pkg() {
            assert!(find(TABLE, "frontend_bg.wasm").is_some());
            assert!(find(TABLE, "style/base.css").is_some());
            assert!(find(TABLE, "/frontend_bg.wasm").is_none());
            assert!(find(TABLE, "frontend_bg.wasm.gz").is_none());
            assert!(find(TABLE, "style").is_none());
            assert!(find(&[], "frontend_bg.wasm").is_none());
        }

        #[test]
        fn content_types_of_the_bundle_files() {
            assert_eq!(content_type("frontend_bg.wasm"), "application/wasm");
            assert_eq!(
                content_type("frontend.js"),
                "text/javascript; charset=utf-8"
            );
            assert_eq!(content_type("style/base.CSS"), "text/css; charset=utf-8");
            assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
            assert_eq!(content_type("LICENSE"), "application/octet-stream");
        }

        #[test]
        fn gzip_is_chosen_only_when_accepted() {
            use header::ACCEPT_ENCODING as AE;
            assert!(!accepts_gzip(&request(&[])));
            assert!(accepts_gzip(&request(&[(AE, "gzip, deflate, br, zstd")])));
            assert!(accepts_gzip(&request(&[(AE, "br;q=1.0, GZIP;q=0.5")])));
            assert!(accepts_gzip(&request(&[(AE, "x-gzip")])));
            assert!(accepts_gzip(&request(&[(AE, "*")])));
            assert!(accepts_gzip(&request(&[(AE, "br"), (AE, "gzip")])));
            assert!(!accepts_gzip(&request(&[(AE, "identity")])));
            assert!(!accepts_gzip(&request(&[(AE, "br, deflate")])));
            assert!(!accepts_gzip(&request(&[(AE, "gzip;q=0")])));
            assert!(!accepts_gzip(&request(&[(AE, "gzip;q=0.000, *")])));
            assert!(!accepts_gzip(&request(&[(AE, "*;q=0")])));
            assert!(!accepts_gzip(&request(&[(AE, "gzip;q=nonsense")])));
        }

        #[tokio::test]
        async fn serves_gzip_to_clients_that_accept_it() {
            let headers = request(&[(header::ACCEPT_ENCODING, "gzip, br")]);
            let response = respond(TABLE, "frontend_bg.wasm", &headers);
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(
                header(&response, header::CONTENT_TYPE),
                Some("application/wasm")
            );
            assert_eq!(header(&response, header::CONTENT_ENCODING), Some("gzip"));
            assert_eq!(header(&response, header::ETAG), Some("\"gzipped\""));
            assert_eq!(header(&response, header::VARY), Some("accept-encoding"));
            assert_eq!(header(&response, header::CACHE_CONTROL), Some("no-cache"));
            assert_eq!(body(response).await, b"gz");
        }

        #[tokio::test]
        async fn serves_the_plain_file_otherwise() {
            let response = respond(TABLE, "frontend_bg.wasm", &HeaderMap::new());
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(
                header(&response, header::CONTENT_TYPE),
                Some("application/wasm")
            );
            assert_eq!(header(&response, header::CONTENT_ENCODING), None);
            assert_eq!(header(&response, header::ETAG), Some("\"plain\""));
            assert_eq!(header(&response, header::VARY), Some("accept-encoding"));
            assert_eq!(body(response).await, b"\0asm plain");

            let response = respond(
                TABLE,
                "style/base.css",
                &request(&[(header::ACCEPT_ENCODING, "gzip")]),
            );
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(
                header(&response, header::CONTENT_TYPE),
                Some("text/css; charset=utf-8")
            );
            assert_eq!(header(&response, header::CONTENT_ENCODING), None);
            // Only one representation: nothing for a cache to tell apart.
            assert_eq!(header(&response, header::VARY), None);
            assert_eq!(body(response).await, b"body {}");
        }

        #[tokio::test]
        async fn a_known_etag_gets_not_modified_without_a_body() {
            let headers = request(&[
                (header::ACCEPT_ENCODING, "gzip"),
                (header::IF_NONE_MATCH, "\"other\", W/\"gzipped\""),
            ]);
            let response = respond(TABLE, "frontend_bg.wasm", &headers);
            assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
            assert_eq!(header(&response, header::ETAG), Some("\"gzipped\""));
            assert_eq!(header(&response, header::CONTENT_ENCODING), None);
            assert!(body(response).await.is_empty());

            // The other representation's tag does not match this one.
            let headers = request(&[(header::IF_NONE_MATCH, "\"gzipped\"")]);
            let response = respond(TABLE, "frontend_bg.wasm", &headers);
            assert_eq!(response.status(), StatusCode::OK);
        }

        #[test]
        fn unknown_files_are_not_found() {
            let response = respond(TABLE, "missing.js", &HeaderMap::new());
            assert_eq!(response.status(), StatusCode::NOT_FOUND);
            assert_eq!(
                respond(&[], "frontend_bg.wasm", &HeaderMap::new()).status(),
                StatusCode::NOT_FOUND
            );
        }
    }
}

/// What the first page shows: this node's own copy (no waiting for a leader, so the page
/// renders even during an election; the browser's first poll brings linearizable data).
/// What a page is rendered with: the node's board ([`app::api::Board`]: every printer and
/// spool, the first jobs of each column), so a page stays small whatever the farm holds.
fn farm_data(farm: &Farm) -> FarmData {
    let cluster = farm.cluster_view();
    let board = {
        let applied = farm.local_state();
        let index = applied.last_applied.map(|l| l.index);
        app::api::Board::of(
            &applied.farm,
            &app::api::JobFilter::default(),
            BOARD_LIMIT,
            index,
        )
    };
    FarmData::from_board(board, Some(cluster))
}

/// Every method an operation of the contract takes (a page on a follower sends its
/// `PUT`s to the leader, which must let the preflight through).
fn api_methods() -> Vec<Method> {
    let mut methods: Vec<Method> = app::api::Endpoint::ALL
        .iter()
        .map(|e| Method::from_bytes(e.operation().method.as_str().as_bytes()))
        .filter_map(Result::ok)
        .collect();
    methods.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    methods.dedup();
    methods
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
        .allow_methods(api_methods())
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            HeaderName::from_static(IDEMPOTENCY_KEY_HEADER),
            // The change stream's position, resumed on another member after a failover.
            HeaderName::from_static("last-event-id"),
            header::IF_MATCH,
            header::IF_NONE_MATCH,
        ])
        .expose_headers([
            header::LOCATION,
            header::ETAG,
            HeaderName::from_static(INDEX_HEADER),
            header::RETRY_AFTER,
            HeaderName::from_static(LEADER_ID_HEADER),
            HeaderName::from_static(LEADER_URL_HEADER),
        ])
        .max_age(Duration::from_secs(600))
}

/// Whether `origin` (`scheme://host[:port]`) is the origin of `url`. `localhost` and
/// `127.0.0.1` count as the same host: the local cluster advertises the latter and
/// people type the former.
pub(crate) fn same_origin(url: &str, origin: &str) -> bool {
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
