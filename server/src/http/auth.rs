//! Who is calling, and what they may do: `Authorization: Bearer <token>` becomes a
//! [`Caller`] with an [`AccessRole`], and each route needs one.
//!
//! Owns: making and recognising token secrets (only their SHA-256 is stored, in the
//! replicated state, or in `node.json` for the admin token `raft3d init` makes), and the
//! contract → role ([`required_role`]). Must not: decide anything about the farm.
//!
//! Open without a token: `/healthz`, `/readyz`, `/metrics` (counters and latencies, no
//! farm data; etcd serves its metrics the same way), `GET /api/v1/cluster` (roles, terms,
//! indexes and member URLs: what any client, the dashboard included, needs to find the
//! leader before it can send its token there; no farm data, no secrets), the API's own
//! description (`/api/v1/openapi.json`, `/api/v1/reference`), the dashboard's
//! pages and bundle (a page shows farm data only to a caller who may read it:
//! `dashboard.rs`).

use super::error::ApiError;
use super::ApiState;
use app::{AccessRole, FarmState};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// How the client listener authenticates.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    /// Off with `--insecure`: every caller may do everything.
    pub enabled: bool,
    /// SHA-256 (hex) of the admin token `raft3d init` made (`node.json`): an admin even
    /// before any token is replicated, so the first tokens can be made with it.
    pub admin_sha256: Option<String>,
    /// Callers without a token may read (a wall screen): `--anonymous-reads`.
    pub anonymous_reads: bool,
}

/// The caller of a request, as [`authorize`] recognised it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub role: Option<AccessRole>,
    /// What their idempotency keys are scoped to: the token's id (`admin` for the
    /// bootstrap admin token); `None` when authentication is off.
    pub scope: Option<String>,
}

/// The prefix of every secret: recognisable in logs and by secret scanners.
pub const TOKEN_PREFIX: &str = "r3d_";

/// A new token secret: 256 random bits, hex, after [`TOKEN_PREFIX`].
pub fn new_secret() -> Result<String, ApiError> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| ApiError::Internal("no randomness for a token"))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{TOKEN_PREFIX}{hex}"))
}

/// Lowercase hex SHA-256 of `secret`: what is stored and compared.
pub fn secret_sha256(secret: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, secret.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The role a request needs, or `None` when it is open to anyone: what the contract
/// (`app::api::contract`) says of its operation. A request that names no operation (an
/// unknown path under `/api/v1`, or a method a path does not take) still needs the role
/// of every operation on its path, and at least viewer for a read, operator otherwise:
/// answering `404` or `405` must not tell a stranger which routes exist.
pub fn required_role(method: &Method, path: &str) -> Option<AccessRole> {
    use app::api::contract::{Access, Endpoint, Method as ApiMethod};
    let role = |endpoint: Endpoint| match endpoint.operation().access {
        Access::Open => None,
        Access::Role(role) => Some(role),
    };
    let reads = [Method::GET, Method::HEAD].contains(method);
    let api_method = match *method {
        Method::GET | Method::HEAD => Some(ApiMethod::Get),
        Method::POST => Some(ApiMethod::Post),
        Method::PUT => Some(ApiMethod::Put),
        Method::DELETE => Some(ApiMethod::Delete),
        _ => None,
    };
    if let Some(endpoint) = api_method.and_then(|m| Endpoint::find(m, path)) {
        return role(endpoint);
    }
    if path != "/api/v1" && !path.starts_with("/api/v1/") {
        return None;
    }
    let fallback = if reads {
        AccessRole::Viewer
    } else {
        AccessRole::Operator
    };
    Endpoint::on_path(path)
        .filter_map(role)
        .chain([fallback])
        .max()
}

impl AuthConfig {
    /// Who presents `headers`, given the tokens in `farm`.
    pub fn caller(&self, headers: &HeaderMap, farm: &FarmState) -> Result<Caller, ApiError> {
        if !self.enabled {
            return Ok(Caller {
                role: Some(AccessRole::Admin),
                scope: None,
            });
        }
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Ok(Caller {
                role: self.anonymous_reads.then_some(AccessRole::Viewer),
                scope: None,
            });
        };
        let secret = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(ApiError::Unauthenticated(
                "expected `Authorization: Bearer <token>`",
            ))?;
        let hash = secret_sha256(secret);
        // The replicated tokens first: a revoked bootstrap token is recorded there.
        match farm.token_by_secret_hash(&hash) {
            Some(token) if token.revoked_ms.is_some() => {
                Err(ApiError::Unauthenticated("this token was revoked"))
            }
            Some(token) => Ok(Caller {
                role: Some(token.role),
                scope: Some(token.id.to_string()),
            }),
            None if self.admin_sha256.as_deref() == Some(hash.as_str()) => Ok(Caller {
                role: Some(AccessRole::Admin),
                scope: Some(app::domain::BOOTSTRAP_TOKEN_ID.to_owned()),
            }),
            None => Err(ApiError::Unauthenticated("unknown token")),
        }
    }

    /// Whether a caller without a token may read the farm (the dashboard's first page).
    pub fn anonymous_may_read(&self) -> bool {
        !self.enabled || self.anonymous_reads
    }
}

/// Lets a request through only if its caller has the role its route needs, and puts the
/// [`Caller`] into its extensions for the handlers (idempotency keys are per caller).
/// Tokens are checked against this node's applied state: a token made a moment ago may
/// be refused (`401`) by a follower that has not applied it yet, for about one round trip.
pub async fn authorize(
    State(state): State<ApiState>,
    mut request: Request,
    next: Next,
) -> Response {
    let caller = {
        let applied = state.farm.local_state();
        state.auth.caller(request.headers(), &applied.farm)
    };
    let caller = match caller {
        Ok(caller) => caller,
        Err(refused) => return refused.into_response(),
    };
    if let Some(needed) = required_role(request.method(), request.uri().path()) {
        match caller.role {
            None => return ApiError::Unauthenticated("this needs a token").into_response(),
            Some(role) if !role.allows(needed) => {
                return ApiError::Forbidden { role, needed }.into_response()
            }
            Some(_) => {}
        }
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn routes_need_the_role_their_effect_needs() {
        use AccessRole::*;
        let cases = [
            (Method::GET, "/healthz", None),
            (Method::GET, "/metrics", None),
            (Method::GET, "/printers", None),
            (Method::GET, "/pkg/frontend.js", None),
            (Method::GET, "/api/v1/printers", Some(Viewer)),
            (Method::GET, "/api/v1/cluster", None),
            (Method::POST, "/api/v1/cluster", Some(Operator)),
            (Method::POST, "/api/v1/printers", Some(Operator)),
            (Method::POST, "/api/v1/print_jobs/j/status", Some(Operator)),
            (Method::POST, "/api/v1/cluster/nodes", Some(Admin)),
            (Method::DELETE, "/api/v1/cluster/nodes/3", Some(Admin)),
            (Method::GET, "/api/v1/tokens", Some(Admin)),
            (Method::POST, "/api/v1/tokens", Some(Admin)),
            (Method::PATCH, "/api/v1/anything", Some(Operator)),
            // A prefix is a whole path segment: not a way around the table.
            (Method::GET, "/api/v1/tokensx", Some(Viewer)),
            (Method::GET, "/api/v1x", None),
            (Method::PUT, "/api/v1/tokens", Some(Admin)),
            (Method::GET, "/api/v1/cluster/nodes", Some(Admin)),
            (Method::GET, "/api/v1/openapi.json", None),
            (Method::GET, "/api/v1/reference", None),
            (Method::HEAD, "/api/v1/print_jobs/j", Some(Viewer)),
        ];
        for (method, path, needed) in cases {
            assert_eq!(required_role(&method, path), needed, "{method} {path}");
        }
    }

    fn bearer(secret: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let value = HeaderValue::from_str(&format!("Bearer {secret}")).expect("header");
        headers.insert(header::AUTHORIZATION, value);
        headers
    }

    #[test]
    fn callers_are_known_by_their_token_and_nothing_else() {
        let admin = new_secret().expect("secret");
        assert!(admin.starts_with(TOKEN_PREFIX) && admin.len() == 68);
        assert_ne!(new_secret().expect("secret"), admin);
        let auth = AuthConfig {
            enabled: true,
            admin_sha256: Some(secret_sha256(&admin)),
            anonymous_reads: false,
        };
        let farm = FarmState::default();
        let caller = auth.caller(&bearer(&admin), &farm).expect("admin");
        assert_eq!(caller.role, Some(AccessRole::Admin));
        assert!(auth
            .caller(&HeaderMap::new(), &farm)
            .expect("anonymous")
            .role
            .is_none());
        assert!(auth.caller(&bearer("r3d_guess"), &farm).is_err());
        let mut basic = HeaderMap::new();
        basic.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic YTpi"),
        );
        assert!(auth.caller(&basic, &farm).is_err());

        let wall_screen = AuthConfig {
            anonymous_reads: true,
            ..auth
        };
        let anonymous = wall_screen
            .caller(&HeaderMap::new(), &farm)
            .expect("anonymous");
        assert_eq!(anonymous.role, Some(AccessRole::Viewer));
        let open = AuthConfig::default();
        assert_eq!(
            open.caller(&HeaderMap::new(), &farm).expect("off").role,
            Some(AccessRole::Admin)
        );
    }
}
