//! `/api/v1/tokens` (admin only, see `auth::required_role`): list, make and revoke the
//! API tokens. The secret of a new token is made here, before proposing, and only its
//! hash enters the log; the one answer that carries the secret is the first. Revoked
//! tokens stay listed, marked; `DELETE /api/v1/tokens/bootstrap` revokes the admin token
//! of `raft3d init` (do it once admins have tokens of their own).

use super::auth::{new_secret, secret_sha256};
use super::error::ApiError;
use super::{
    idempotency_claim, path_id, read_all, with_index, ApiResult, ApiState, Body, ListRequest,
    WriteContext,
};
use app::api::{CreatedToken, NewToken};
use app::domain::BOOTSTRAP_TOKEN_ID;
use app::{ApiToken, Command, Entity, Outcome, TokenView};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

pub async fn list(State(state): State<ApiState>, list: ListRequest) -> ApiResult {
    read_all(&state, &list, |farm| {
        farm.tokens().map(TokenView::from).collect::<Vec<_>>()
    })
    .await
}

/// `201` with the secret. A retry with the same `Idempotency-Key` finds the token the
/// first try made, whose secret this try cannot know: `409 secret-shown-once`.
pub async fn create(State(state): State<ApiState>, write: WriteContext, body: Body) -> ApiResult {
    let request = NewToken::from_json(&body.0)?;
    let claim = idempotency_claim(&write, &request)?;
    let secret = new_secret()?;
    let token = ApiToken {
        id: super::new_id(),
        name: request.name,
        role: request.role,
        secret_sha256: secret_sha256(&secret),
        created_ms: super::farm::now_ms(),
        revoked_ms: None,
    };
    let ours = token.secret_sha256.clone();
    let written = state
        .farm
        .propose(Command::CreateToken(token), claim)
        .await?;
    match written.outcome {
        Outcome::Created(Entity::Token(made)) if made.secret_sha256 == ours => {
            let created = CreatedToken {
                token: TokenView::from(&made),
                secret,
            };
            let response = (StatusCode::CREATED, Json(created)).into_response();
            Ok(with_index(response, Some(written.index)))
        }
        Outcome::Created(Entity::Token(made)) => {
            Err(ApiError::SecretShownOnce(made.id.to_string()))
        }
        Outcome::Rejected(rejection) => Err(rejection.into()),
        _ => Err(ApiError::Internal("token creation produced something else")),
    }
}

pub async fn revoke(
    State(state): State<ApiState>,
    write: WriteContext,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult<Response> {
    let token_id = path_id(path)?;
    let claim = idempotency_claim(&write, &token_id)?;
    let command = match (token_id.as_str(), &state.auth.admin_sha256) {
        // The admin token of `raft3d init`: the nodes know only its hash.
        (BOOTSTRAP_TOKEN_ID, Some(hash)) => Command::RevokeBootstrapToken {
            secret_sha256: hash.clone(),
        },
        _ => Command::RevokeToken { token_id },
    };
    let written = state.farm.propose(command, claim).await?;
    match written.outcome {
        Outcome::Updated(Entity::Token(revoked)) => {
            let response = Json(TokenView::from(&revoked)).into_response();
            Ok(with_index(response, Some(written.index)))
        }
        Outcome::Rejected(rejection) => Err(rejection.into()),
        _ => Err(ApiError::Internal(
            "token revocation produced something else",
        )),
    }
}
