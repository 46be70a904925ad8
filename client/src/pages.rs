//! Lists a page at a time (`?limit=&after=&order=`, the job filters, `min_index`): what
//! an integration reads a farm with a year of history with, instead of whole lists.

use crate::{Answer, ClientError};
use app::api::Endpoint;
use app::JobStatus;
use serde::de::DeserializeOwned;

/// Which part of a list to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Items per page (1-1,000; the server refuses more).
    pub limit: Option<usize>,
    /// Start after this id: the last of the previous page.
    pub after: Option<String>,
    /// Newest first.
    pub descending: bool,
    /// Jobs only: in this status, of this printer, from this spool.
    pub status: Option<JobStatus>,
    pub printer_id: Option<String>,
    pub filament_id: Option<String>,
    /// Answer once the node has applied this log index (an `X-Raft3D-Index` seen
    /// before): read-your-writes on any node, without a leader round trip.
    pub min_index: Option<u64>,
}

impl ListQuery {
    /// The first page of `limit` items.
    pub fn first(limit: usize) -> Self {
        Self {
            limit: Some(limit),
            ..Self::default()
        }
    }

    /// The path and query of `endpoint` (a list operation) for this query.
    pub fn path(&self, endpoint: Endpoint) -> String {
        let mut params: Vec<(&str, String)> = Vec::new();
        let mut add = |key, value: Option<String>| {
            if let Some(value) = value {
                params.push((key, value));
            }
        };
        add("limit", self.limit.map(|l| l.to_string()));
        add(
            "after",
            self.after.as_deref().map(app::api::contract::path_segment),
        );
        add("order", self.descending.then(|| "desc".to_owned()));
        add("status", self.status.map(|s| s.as_str().to_owned()));
        add(
            "printer_id",
            self.printer_id
                .as_deref()
                .map(app::api::contract::path_segment),
        );
        add(
            "filament_id",
            self.filament_id
                .as_deref()
                .map(app::api::contract::path_segment),
        );
        add("min_index", self.min_index.map(|i| i.to_string()));
        let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        match query.is_empty() {
            true => endpoint.url(&[]),
            false => format!("{}?{}", endpoint.url(&[]), query.join("&")),
        }
    }
}

/// One page of a list, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The log index the page was read at (`X-Raft3D-Index`).
    pub index: Option<u64>,
    /// The page's version (`ETag`), for `If-None-Match`.
    pub etag: Option<String>,
    /// The query of the next page, while the server says more follow (`Link: rel="next"`).
    pub next: Option<ListQuery>,
}

impl<T: DeserializeOwned> Page<T> {
    pub(crate) fn from_answer(answer: &Answer, query: &ListQuery) -> Result<Self, ClientError> {
        let header = |name: &str| {
            answer
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let next = header("link")
            .as_deref()
            .and_then(next_after)
            .map(|after| ListQuery {
                after: Some(after),
                ..query.clone()
            });
        Ok(Self {
            items: answer.json()?,
            index: header(app::api::INDEX_HEADER).and_then(|i| i.parse().ok()),
            etag: header("etag"),
            next,
        })
    }
}

/// The `after` cursor of a `Link: <...?...&after=ID&...>; rel="next"` header.
fn next_after(link: &str) -> Option<String> {
    let (target, params) = link.split_once(';')?;
    if !params.contains("rel=\"next\"") {
        return None;
    }
    let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
    let (_, query) = target.split_once('?')?;
    let raw = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("after="))?;
    percent_decode(raw)
}

fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_become_the_contracts_paths() {
        let query = ListQuery {
            descending: true,
            status: Some(JobStatus::Done),
            printer_id: Some("p 1".to_owned()),
            min_index: Some(42),
            ..ListQuery::first(100)
        };
        assert_eq!(
            query.path(Endpoint::ListPrintJobs),
            "/api/v1/print_jobs?limit=100&order=desc&status=Done&printer_id=p%201&min_index=42"
        );
        assert_eq!(
            ListQuery::default().path(Endpoint::ListPrinters),
            "/api/v1/printers"
        );
    }

    #[test]
    fn the_next_cursor_comes_from_the_link_header() {
        let link = r#"</api/v1/print_jobs?limit=2&after=j%2F2&order=desc>; rel="next""#;
        assert_eq!(next_after(link), Some("j/2".to_owned()));
        assert_eq!(
            next_after(r#"</api/v1/print_jobs?after=x>; rel="prev""#),
            None
        );
        assert_eq!(next_after("garbage"), None);
    }
}
