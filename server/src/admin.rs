//! `raft3d add-node` and `raft3d remove-node`: thin HTTP clients of
//! `/api/v1/cluster/nodes`, following the leader redirect like any client.

use app::api::{AddNodeRequest, ClusterView, Problem};
use clap::Args;
use reqwest::{Method, StatusCode};
use std::time::Duration;

/// `raft3d add-node` flags.
#[derive(Debug, Clone, Args)]
pub struct AddNodeArgs {
    /// Client URL of any member of the running cluster.
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    pub cluster: String,
    /// Id of the new node (started with `raft3d serve` and no --peers).
    #[arg(long)]
    pub id: u64,
    /// Raft address of the new node, as its peers should dial it.
    #[arg(long)]
    pub raft_addr: String,
}

/// `raft3d remove-node` flags.
#[derive(Debug, Clone, Args)]
pub struct RemoveNodeArgs {
    /// Client URL of any member of the running cluster.
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    pub cluster: String,
    /// Id of the node to remove.
    #[arg(long)]
    pub id: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("cannot reach {url}: {source}")]
    Transport { url: String, source: reqwest::Error },
    #[error("the cluster refused: {status} {detail}")]
    Refused { status: StatusCode, detail: String },
    #[error("too many redirects (the leader keeps moving); try again")]
    TooManyRedirects,
}

pub async fn add_node(args: AddNodeArgs) -> Result<ClusterView, AdminError> {
    let body = AddNodeRequest {
        id: args.id,
        raft_addr: args.raft_addr,
    };
    send(
        Method::POST,
        &args.cluster,
        "/api/v1/cluster/nodes",
        Some(&body),
    )
    .await
}

pub async fn remove_node(args: RemoveNodeArgs) -> Result<ClusterView, AdminError> {
    let path = format!("/api/v1/cluster/nodes/{}", args.id);
    send::<()>(Method::DELETE, &args.cluster, &path, None).await
}

/// Sends a request, following `307`s to the leader (a bounded number of times) and
/// waiting out `503`s for up to a minute (an election in progress).
async fn send<B: serde::Serialize>(
    method: Method,
    base: &str,
    path: &str,
    body: Option<&B>,
) -> Result<ClusterView, AdminError> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(120))
        .build()
        .map_err(|source| AdminError::Transport {
            url: base.to_owned(),
            source,
        })?;
    let mut url = format!("{}{path}", base.trim_end_matches('/'));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for _ in 0..20 {
        let mut request = client.request(method.clone(), &url);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|source| AdminError::Transport {
                url: url.clone(),
                source,
            })?;
        let status = response.status();
        if status == StatusCode::TEMPORARY_REDIRECT {
            if let Some(location) = response
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
            {
                url = location.to_owned();
                continue;
            }
        }
        if status == StatusCode::SERVICE_UNAVAILABLE && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        if status.is_success() {
            return response
                .json()
                .await
                .map_err(|source| AdminError::Transport { url, source });
        }
        let detail = match response.json::<Problem>().await {
            Ok(problem) => problem.detail,
            Err(_) => String::new(),
        };
        return Err(AdminError::Refused { status, detail });
    }
    Err(AdminError::TooManyRedirects)
}
