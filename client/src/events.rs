//! Reading the change stream (`GET /api/v1/events`, Server-Sent Events).
//!
//! [`SseParser`] turns the bytes of a stream into [`Frame`]s (pure, tested here);
//! [`EventStream`] reads them from one node's answer. [`Client::events`] opens one with
//! the client's token; to resume after a node died, open another on any member with the
//! last [`ChangeEvent::id`] seen.

use crate::{Client, ClientError};
use serde_json::Value;
use std::time::Duration;

/// One change, as the stream sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeEvent {
    /// The position just after this event: `N` (the log index of its entry) or `N.k`.
    pub id: String,
    /// `printer.created`, `job.status`, … or `reset`.
    pub kind: String,
    /// The object after the change.
    pub data: Value,
}

/// What a stream carries: events and comments (`: heartbeat`).
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Event(ChangeEvent),
    Comment(String),
}

/// Splits a stream's bytes into frames. Only what Raft3D sends is understood (one
/// `data:` line per event, lines ending in `\n`).
#[derive(Debug, Default)]
pub struct SseParser {
    buffer: String,
}

impl SseParser {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.push_str(&String::from_utf8_lossy(bytes));
    }

    /// The next complete frame, if one has arrived.
    pub fn next_frame(&mut self) -> Option<Result<Frame, ClientError>> {
        let end = self.buffer.find("\n\n")?;
        let block: String = self.buffer.drain(..end + 2).collect();
        let mut event = ChangeEvent {
            id: String::new(),
            kind: String::new(),
            data: Value::Null,
        };
        for line in block.lines() {
            if let Some(text) = line.strip_prefix(':') {
                return Some(Ok(Frame::Comment(text.trim().to_owned())));
            } else if let Some(id) = line.strip_prefix("id: ") {
                event.id = id.to_owned();
            } else if let Some(kind) = line.strip_prefix("event: ") {
                event.kind = kind.to_owned();
            } else if let Some(data) = line.strip_prefix("data: ") {
                match serde_json::from_str(data) {
                    Ok(data) => event.data = data,
                    Err(e) => return Some(Err(ClientError::Invalid(format!("event data: {e}")))),
                }
            }
        }
        Some(Ok(Frame::Event(event)))
    }
}

/// One open change stream.
pub struct EventStream {
    response: reqwest::Response,
    parser: SseParser,
    /// The comments seen so far (heartbeats).
    pub comments: Vec<String>,
}

impl EventStream {
    /// Reads the stream of `response` (an answer to `GET /api/v1/events`).
    pub fn new(response: reqwest::Response) -> Self {
        Self {
            response,
            parser: SseParser::default(),
            comments: Vec::new(),
        }
    }

    /// The next event; `Ok(None)` if none comes within `within` or the stream ended.
    pub async fn next(&mut self, within: Duration) -> Result<Option<ChangeEvent>, ClientError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            while let Some(frame) = self.parser.next_frame() {
                match frame? {
                    Frame::Comment(text) => self.comments.push(text),
                    Frame::Event(event) => return Ok(Some(event)),
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk()).await;
            match chunk {
                Ok(Ok(Some(bytes))) => self.parser.push(&bytes),
                Ok(Ok(None)) | Err(_) => return Ok(None),
                Ok(Err(e)) => return Err(ClientError::Invalid(format!("event stream: {e}"))),
            }
        }
    }
}

/// Longest a stream may stay open: the client's request timeout does not apply to it.
const STREAM_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

impl Client {
    /// Opens the change stream of the member at `node` (a client URL), starting after
    /// `after` (an event id), or with the next change. Sent as `Last-Event-ID`.
    pub async fn events(
        &self,
        node: &str,
        after: Option<&str>,
    ) -> Result<EventStream, ClientError> {
        let url = format!(
            "{}{}",
            node.trim_end_matches('/'),
            app::api::Endpoint::Events.url(&[])
        );
        let mut request = self.http.get(url).timeout(STREAM_LIFETIME);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(after) = after {
            request = request.header("last-event-id", after);
        }
        let response = request
            .send()
            .await
            .map_err(|e| ClientError::Invalid(format!("opening the event stream: {e}")))?;
        if !response.status().is_success() {
            return Err(ClientError::Invalid(format!(
                "the event stream answered {}",
                response.status()
            )));
        }
        Ok(EventStream::new(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_cut_where_the_stream_says_and_not_before() {
        let mut parser = SseParser::default();
        parser.push(b": connected\n\nid: 7.1\nevent: job.created\ndata: {\"id\":");
        assert_eq!(
            parser.next_frame().map(Result::ok),
            Some(Some(Frame::Comment("connected".into())))
        );
        assert!(
            parser.next_frame().is_none(),
            "the event is not complete yet"
        );
        parser.push(b"\"j1\"}\n\nid: 7\nevent: filament.updated\ndata: {}\n\n");
        let Some(Ok(Frame::Event(first))) = parser.next_frame() else {
            panic!("an event")
        };
        assert_eq!(
            (first.id.as_str(), first.kind.as_str(), &first.data["id"]),
            ("7.1", "job.created", &Value::from("j1"))
        );
        assert!(matches!(parser.next_frame(), Some(Ok(Frame::Event(e))) if e.id == "7"));
        assert!(parser.next_frame().is_none());
        parser.push(b"data: {not json\n\n");
        assert!(matches!(parser.next_frame(), Some(Err(_))));
    }
}
