//! API tokens: who may read the farm, change it, or run the cluster. The cluster stores
//! a token's SHA-256 only; the secret itself is shown once, to whoever made it.

use super::{Id, Text};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a token may do; each role may do everything the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum AccessRole {
    /// Reads the farm and the cluster view (a wall screen, a reporting integration).
    Viewer,
    /// Also changes the farm: printers, spools, jobs and their status (shop-floor staff).
    Operator,
    /// Also changes the cluster's membership and its tokens (the farm's operators).
    Admin,
}

impl AccessRole {
    pub const ALL: [AccessRole; 3] = [Self::Viewer, Self::Operator, Self::Admin];

    /// Whether this role may do what `needed` may.
    pub fn allows(self, needed: AccessRole) -> bool {
        self >= needed
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.as_str() == raw)
    }
}

impl fmt::Display for AccessRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A token as the cluster stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: Id,
    /// Who or what holds it ("front desk tablet").
    pub name: Text,
    pub role: AccessRole,
    /// Lowercase hex SHA-256 of the whole secret. The secret has 256 random bits, so a
    /// plain hash is as good as a slow one and keeps every request's check cheap.
    pub secret_sha256: String,
    /// When it was made: the proposing leader's clock, milliseconds since the epoch.
    pub created_ms: u64,
    /// When it was revoked. A revoked token is kept (refused, listed as revoked): its
    /// hash must keep being recognised, which is also how the admin token of
    /// `raft3d init` (known to the nodes by its hash alone) is revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_ms: Option<u64>,
}

/// The id under which the admin token of `raft3d init` is revoked
/// (`DELETE /api/v1/tokens/bootstrap`). Ids the server makes are 32 hex digits.
pub const BOOTSTRAP_TOKEN_ID: &str = "bootstrap";

/// A token as the API lists it: everything but its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenView {
    pub id: Id,
    pub name: Text,
    pub role: AccessRole,
    pub created_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_ms: Option<u64>,
}

impl From<&ApiToken> for TokenView {
    fn from(token: &ApiToken) -> Self {
        Self {
            id: token.id.clone(),
            name: token.name.clone(),
            role: token.role,
            created_ms: token.created_ms,
            revoked_ms: token.revoked_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_allows_what_the_ones_before_it_allow() {
        use AccessRole::*;
        for (role, allowed) in [
            (Viewer, vec![Viewer]),
            (Operator, vec![Viewer, Operator]),
            (Admin, vec![Viewer, Operator, Admin]),
        ] {
            for needed in AccessRole::ALL {
                assert_eq!(
                    role.allows(needed),
                    allowed.contains(&needed),
                    "{role} {needed}"
                );
            }
        }
        for role in AccessRole::ALL {
            assert_eq!(AccessRole::parse(role.as_str()), Some(role));
            assert_eq!(
                serde_json::to_string(&role).expect("json"),
                format!("\"{role}\"")
            );
        }
        assert_eq!(AccessRole::parse("root"), None);
    }
}
