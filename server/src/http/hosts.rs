//! The `Host` a request names must be one of the cluster's own names: a page of another
//! site can point a host name of its own at a node's address (DNS rebinding) and then
//! read and write the API as if it were same-origin; its requests still name that host.
//!
//! Owns: which host names a node answers to. Allowed: the hosts of every member's client
//! URL (the leader records them in the membership), this node's own URL and bound
//! address, the loopback names, and `--allowed-host`. Health checks and `/metrics` are
//! exempt: load balancers and scrapers address nodes by IP.

use super::error::ApiError;
use super::ApiState;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Paths any host name may reach.
const EXEMPT: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// The host part of a URL or of a `Host` header value, lowercase, without port or
/// brackets: `http://[::1]:8081/x` and `[::1]:8081` both give `::1`.
pub fn host_of(url_or_authority: &str) -> String {
    let rest = url_or_authority
        .split_once("://")
        .map_or(url_or_authority, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether `host` (from [`host_of`]) is one this node answers to.
pub fn allowed(host: &str, fixed: &[String], member_urls: &[String]) -> bool {
    const LOOPBACK: [&str; 3] = ["localhost", "127.0.0.1", "::1"];
    LOOPBACK.contains(&host)
        || fixed.iter().any(|allowed| allowed == host)
        || member_urls.iter().any(|url| host_of(url) == host)
}

/// Refuses (`421 Misdirected Request`) a request whose `Host` is not the cluster's.
pub async fn check_host(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let named = request
        .headers()
        .get(header::HOST)
        .map(|value| host_of(&String::from_utf8_lossy(value.as_bytes())));
    if let Some(host) = named.filter(|_| !EXEMPT.contains(&path)) {
        if !allowed(&host, &state.allowed_hosts, &state.farm.member_urls()) {
            return ApiError::UnknownHost(host).into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_compared_without_port_case_or_brackets() {
        assert_eq!(host_of("http://Farm1.Shop:8081/api"), "farm1.shop");
        assert_eq!(host_of("farm1.shop:8081"), "farm1.shop");
        assert_eq!(host_of("[::1]:8081"), "::1");
        assert_eq!(host_of("http://[fe80::1]:8081"), "fe80::1");
        assert_eq!(host_of("10.0.0.5"), "10.0.0.5");
        assert_eq!(host_of("http://user@evil.example:80/"), "evil.example");
        assert_eq!(host_of("farm1.shop."), "farm1.shop");
    }

    #[test]
    fn only_the_clusters_names_are_allowed() {
        let members = vec!["http://farm1.shop:8081".to_owned()];
        let fixed = vec!["10.0.0.5".to_owned()];
        for ok in ["farm1.shop", "10.0.0.5", "localhost", "127.0.0.1", "::1"] {
            assert!(allowed(ok, &fixed, &members), "{ok}");
        }
        for refused in ["evil.example", "farm1.shop.evil.example", "10.0.0.6", ""] {
            assert!(!allowed(refused, &fixed, &members), "{refused}");
        }
    }
}
