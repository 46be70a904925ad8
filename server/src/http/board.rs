//! `GET /api/v1/board[?limit=N&printer_id=P&filament_id=F]`: what the dashboard shows,
//! read at one log index and bounded whatever the farm holds (`app::api::Board`).

use super::{tagged_json, ApiResult, ApiState, ListRequest};
use app::api::{Board, JobFilter, BOARD_LIMIT};
use axum::extract::State;

pub async fn board(State(state): State<ApiState>, list: ListRequest) -> ApiResult {
    let filter = JobFilter::from_params(&list.params)?;
    if filter.status.is_some() {
        // A board has a column per status; a status filter would leave three empty.
        return Err(app::api::RequestError::UnknownField("status".to_owned()).into());
    }
    let limit = list.paging.limit.unwrap_or(BOARD_LIMIT);
    let (board, index) = state
        .farm
        .read_at(list.wish, |farm| Board::of(farm, &filter, limit, None))
        .await?;
    let board = Board { index, ..board };
    Ok(tagged_json(
        &board,
        list.if_none_match.as_ref(),
        board.index,
    ))
}
