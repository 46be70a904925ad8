//! `/api/v1/cluster`: the cluster as this node sees it, and membership changes.

use super::{ApiResult, ApiState, Body};
use app::api::{AddNodeRequest, ClusterView, RequestError};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::Json;

pub async fn view(State(state): State<ApiState>) -> Json<ClusterView> {
    Json(state.farm.cluster_view())
}

/// Adds a node: learner first (it catches up without affecting quorum), then voter.
pub async fn add_node(State(state): State<ApiState>, body: Body) -> ApiResult<Json<ClusterView>> {
    let request: AddNodeRequest =
        serde_json::from_slice(&body.0).map_err(|e| RequestError::MalformedJson(e.to_string()))?;
    if request.id == 0 {
        return Err(RequestError::WrongType {
            field: "id".to_owned(),
            expected: "a positive integer",
        }
        .into());
    }
    let raft_addr =
        app::api::parse_address(&request.raft_addr).map_err(|problem| RequestError::Invalid {
            field: "raft_addr",
            problem,
        })?;
    state.farm.add_node(request.id, raft_addr).await?;
    Ok(Json(state.farm.cluster_view()))
}

pub async fn remove_node(
    State(state): State<ApiState>,
    path: Result<Path<u64>, PathRejection>,
) -> ApiResult<Json<ClusterView>> {
    let Path(id) = path.map_err(|_| RequestError::WrongType {
        field: "id".to_owned(),
        expected: "a node id (a positive integer)",
    })?;
    state.farm.remove_node(id).await?;
    Ok(Json(state.farm.cluster_view()))
}
