//! What the HTTP host adapters (`octoprint`, `moonraker`) share: one [`HttpHost`] per
//! host holds its checked base URL, its API key and a reqwest client (connect and request
//! timeouts, no redirects), sends requests with the key attached and reads whole
//! [`Answer`]s, and uploads a file as a `multipart/form-data` body. Around it: the checks
//! of base URLs and file names, clipping of host texts, scrubbing the key out of them, and
//! the wording of failures without an answer.
//!
//! Each adapter keeps what is its host's own: routes, JSON shapes, the mapping of states,
//! and which status means which [`HostError`].
//!
//! # The API key
//! Sent as `X-Api-Key` (both hosts' header), marked sensitive, and nowhere else: not in
//! URLs, not in errors (texts pass [`HttpHost::scrub`]), not in `Debug`.

use super::host::HostError;
use futures::{future, stream, StreamExt};
use hyper::body::Bytes;
use reqwest::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use std::fmt;
use std::path::Path;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;

/// How long a TCP (and TLS) connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// A whole request, answer included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A whole upload (a big G-code file over a slow link).
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(600);
/// Host texts in errors are cut to this many characters.
const MAX_ERROR_CHARS: usize = 200;
/// A report's message is cut to this many characters.
pub(super) const MAX_MESSAGE_CHARS: usize = 300;
/// Longest file name we send.
const MAX_NAME_LEN: usize = 255;

/// One host reached over HTTP at its base URL with one API key (or none).
pub(super) struct HttpHost {
    /// `http(s)://host[:port][/path]`, no trailing `/`.
    base: String,
    api_key: Option<String>,
    http: reqwest::Client,
}

/// A host's answer: its status and whole body.
pub(super) struct Answer {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

impl fmt::Debug for HttpHost {
    /// The base URL, and whether a key is set (never the key).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = if self.api_key.is_some() {
            "<set>"
        } else {
            "<none>"
        };
        f.debug_struct("HttpHost")
            .field("base", &self.base)
            .field("api_key", &format_args!("{key}"))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
impl Answer {
    /// The answer `status` with `body`, as a host could give it.
    pub fn of(status: u16, body: &str) -> Self {
        Self {
            status: StatusCode::from_u16(status).expect("a status code"),
            body: body.as_bytes().to_vec(),
        }
    }
}

impl HttpHost {
    /// A host at `base_url` (`http(s)://host[:port][/path]`; no user, query or fragment),
    /// sending `api_key` when there is one. Nothing is sent yet.
    pub fn new(base_url: &str, api_key: Option<String>) -> Result<Self, HostError> {
        let base = check_base(base_url)?;
        let api_key = api_key.filter(|key| !key.is_empty());
        if let Some(key) = &api_key {
            if HeaderValue::from_str(key).is_err() {
                return Err(HostError::Protocol(
                    "the API key has characters an HTTP header cannot carry".to_owned(),
                ));
            }
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| HostError::Protocol(format!("cannot make an HTTP client: {e}")))?;
        Ok(Self {
            base,
            api_key,
            http,
        })
    }

    /// The base URL requests go to (normalised, no trailing `/`).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Sends one request to `path` (with its query, if any; the key attached) and reads
    /// the whole answer. No answer is [`HostError::Unreachable`].
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        build: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<Answer, HostError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url);
        if let Some(key) = &self.api_key {
            // Checked in `new`.
            if let Ok(mut value) = HeaderValue::from_str(key) {
                value.set_sensitive(true);
                request = request.header("X-Api-Key", value);
            }
        }
        let unreachable = |e: reqwest::Error| HostError::Unreachable {
            url: url.clone(),
            why: self.scrub(&error_chain(&e)),
        };
        let response = build(request).send().await.map_err(unreachable)?;
        let status = response.status();
        let body = response.bytes().await.map_err(unreachable)?;
        Ok(Answer {
            status,
            body: body.to_vec(),
        })
    }

    /// `POST`s the local `file` (`size` bytes) to `path` as the file `name` of a
    /// `multipart/form-data` body, after the plain `fields`; the answer is the caller's to
    /// judge. The file is streamed from disk, never held in memory, with its
    /// `Content-Length` (head + `size` + tail) set. A file that cannot be read, or whose
    /// size is not `size`, is a [`HostError::Protocol`] before anything is sent; one that
    /// fails while it is sent ends the request ([`HostError::Unreachable`]).
    pub async fn upload(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        name: &str,
        file: &Path,
        size: u64,
    ) -> Result<Answer, HostError> {
        check_name(name)?;
        let unreadable =
            |e: std::io::Error| HostError::Protocol(format!("cannot read the file to upload: {e}"));
        let opened = tokio::fs::File::open(file).await.map_err(unreadable)?;
        let on_disk = opened.metadata().await.map_err(unreadable)?.len();
        if on_disk != size {
            return Err(HostError::Protocol(format!(
                "the file to upload has {on_disk} bytes, not the {size} expected"
            )));
        }
        let boundary = format!("raft3d-{}", uuid::Uuid::now_v7().simple());
        let (head, tail) = multipart_frame(&boundary, fields, name);
        let length = head.len() as u64 + size + tail.len() as u64;
        let piece = |text: String| stream::once(future::ready(Ok(Bytes::from(text))));
        let body = piece(head)
            .chain(ReaderStream::new(opened.take(size)))
            .chain(piece(tail));
        let body = reqwest::Body::wrap_stream(body);
        self.send(Method::POST, path, |r| {
            r.header(
                CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .header(CONTENT_LENGTH, length)
            .body(body)
            .timeout(UPLOAD_TIMEOUT)
        })
        .await
    }

    /// `text` without the API key in it (should a host or a library ever echo it).
    pub fn scrub(&self, text: &str) -> String {
        match &self.api_key {
            Some(key) if text.contains(key.as_str()) => text.replace(key.as_str(), "<api key>"),
            _ => text.to_owned(),
        }
    }
}

/// The normalised base URL, or why it is not one.
fn check_base(raw: &str) -> Result<String, HostError> {
    // The text is not echoed: it may hold a password.
    let bad = |why: &str| {
        HostError::Protocol(format!(
            "the host URL must be http(s)://host[:port][/path]: {why}"
        ))
    };
    let url = reqwest::Url::parse(raw.trim()).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("not http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("it carries a user or password"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("it has a query or fragment"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// A file name we put, unescaped, in a URL (OctoPrint: a path segment; Moonraker: a query
/// string) and a multipart header: `[A-Za-z0-9-_.~]`, not hidden (`.x`: OctoPrint keeps
/// its own metadata so, Moonraker its thumbnails in `.thumbs`), at most 255 bytes. No
/// `/`: our files live in the host's top folder itself.
pub(super) fn check_name(name: &str) -> Result<(), HostError> {
    let fine = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'));
    if fine {
        Ok(())
    } else {
        Err(HostError::Protocol(format!(
            "file name {:?} is not allowed (only [A-Za-z0-9-_.~], not starting with '.')",
            clip(name, 80)
        )))
    }
}

/// What comes before and after the file's bytes in a `multipart/form-data` body: the
/// plain `fields` in order, then field `file` with `filename` = `name`, then the closing
/// boundary. Field names and values are ours, and `name` passed [`check_name`], so none
/// needs quoting. `boundary` is random: a file that contains it by chance is not a
/// concern.
fn multipart_frame(boundary: &str, fields: &[(&str, &str)], name: &str) -> (String, String) {
    let mut head = String::new();
    for (field, value) in fields {
        head.push_str(&format!(
            "--{boundary}\r\n\
             Content-Disposition: form-data; name=\"{field}\"\r\n\
             \r\n\
             {value}\r\n"
        ));
    }
    head.push_str(&format!(
        "--{boundary}\r\n\
         Content-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
         Content-Type: application/octet-stream\r\n\
         \r\n"
    ));
    (head, format!("\r\n--{boundary}--\r\n"))
}

/// An error and its causes, `a: b: c`, without the URL (the caller names it).
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = String::new();
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        let part = match e.downcast_ref::<reqwest::Error>() {
            // reqwest's own text names the URL; say what kind of failure it is instead.
            Some(re) if re.is_timeout() => "timed out".to_owned(),
            Some(re) if re.is_connect() => "cannot connect".to_owned(),
            Some(re) if re.is_body() => "the answer was cut short".to_owned(),
            Some(_) => "request failed".to_owned(),
            None => e.to_string(),
        };
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
        current = e.source();
    }
    clip(&text, MAX_ERROR_CHARS)
}

/// The host's words in a refusal: what `from_json` finds in the body parsed as JSON (each
/// host has its own shape), else the body as text, else the status's name; cut short, one
/// line. Not yet scrubbed of the key.
pub(super) fn host_text(
    answer: &Answer,
    from_json: impl FnOnce(&serde_json::Value) -> Option<&str>,
) -> String {
    let parsed = serde_json::from_slice::<serde_json::Value>(&answer.body).ok();
    let text = parsed
        .as_ref()
        .and_then(from_json)
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(&answer.body).trim().to_owned());
    let text = if text.is_empty() {
        answer
            .status
            .canonical_reason()
            .unwrap_or("no reason given")
            .to_owned()
    } else {
        text
    };
    clip(&text, MAX_ERROR_CHARS)
}

/// At most `max` characters, control characters as spaces, "…" when cut.
pub(super) fn clip(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(key: Option<&str>) -> HttpHost {
        HttpHost::new("http://127.0.0.1:5000/", key.map(str::to_owned)).expect("a host")
    }

    #[test]
    fn the_multipart_body_has_the_fields_then_the_file() {
        let body = |fields: &[(&str, &str)]| {
            let (head, tail) = multipart_frame("BOUND", fields, "raft3d-j1.gcode");
            format!("{head}G28\nG4 P1\n{tail}")
        };
        assert_eq!(
            body(&[]),
            "--BOUND\r\n\
             Content-Disposition: form-data; name=\"file\"; filename=\"raft3d-j1.gcode\"\r\n\
             Content-Type: application/octet-stream\r\n\
             \r\n\
             G28\nG4 P1\n\
             \r\n--BOUND--\r\n"
        );
        assert_eq!(
            body(&[("root", "gcodes")]),
            "--BOUND\r\n\
             Content-Disposition: form-data; name=\"root\"\r\n\
             \r\n\
             gcodes\r\n\
             --BOUND\r\n\
             Content-Disposition: form-data; name=\"file\"; filename=\"raft3d-j1.gcode\"\r\n\
             Content-Type: application/octet-stream\r\n\
             \r\n\
             G28\nG4 P1\n\
             \r\n--BOUND--\r\n"
        );
    }

    #[test]
    fn only_plain_file_names_pass() {
        for good in ["raft3d-j1.gcode", "raft3d-0190a_b~c.gcode", "a"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        let long = "a".repeat(MAX_NAME_LEN + 1);
        for bad in [
            "",
            ".",
            "..",
            ".metadata.json",
            ".thumbs",
            "a/b.gcode",
            "../x",
            "a b",
            "a&root=config",
            "a%2F",
            "ä.gcode",
            &long,
        ] {
            assert!(
                matches!(check_name(bad), Err(HostError::Protocol(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn base_urls_are_normalised_and_checked() {
        assert_eq!(host(None).base_url(), "http://127.0.0.1:5000");
        let with_path = HttpHost::new(" https://farm.example/octo/ ", None).expect("fine");
        assert_eq!(with_path.base_url(), "https://farm.example/octo");
        for bad in [
            "ftp://h",
            "http://user:pw@h",
            "http://h/?apikey=x",
            "http://h/#x",
            "not a url",
            "",
        ] {
            let error = HttpHost::new(bad, None).expect_err(bad);
            assert!(matches!(error, HostError::Protocol(_)), "{bad}");
            assert!(!error.to_string().contains("pw"), "{error}");
        }
        assert!(HttpHost::new("http://h", Some("bad\nkey".to_owned())).is_err());
    }

    #[test]
    fn the_key_is_scrubbed_and_never_shows() {
        let with_key = host(Some("SECRETKEY123"));
        assert_eq!(
            with_key.scrub("bad key SECRETKEY123!"),
            "bad key <api key>!"
        );
        assert_eq!(host(None).scrub("SECRETKEY123"), "SECRETKEY123");
        let debug = format!("{with_key:?}");
        assert!(debug.contains("api_key: <set>"), "{debug}");
        assert!(!debug.contains("SECRETKEY123"), "{debug}");
        assert!(format!("{:?}", host(None)).contains("api_key: <none>"));
    }

    #[test]
    fn host_texts_fall_back_to_the_body_then_the_status() {
        let answer = Answer::of;
        fn error(v: &serde_json::Value) -> Option<&str> {
            v.get("error")?.as_str()
        }
        assert_eq!(host_text(&answer(400, r#"{"error": "no"}"#), error), "no");
        assert_eq!(host_text(&answer(400, " plain\n"), error), "plain");
        assert_eq!(host_text(&answer(400, r#"{"x": 1}"#), error), r#"{"x": 1}"#);
        assert_eq!(host_text(&answer(502, ""), error), "Bad Gateway");
        let long = "x".repeat(1000);
        assert_eq!(
            host_text(&answer(500, &long), error).chars().count(),
            MAX_ERROR_CHARS + 1
        );
    }

    #[tokio::test]
    async fn a_file_that_is_not_as_said_is_refused_before_sending() {
        // Nothing listens on port 1: an attempt to send would be Unreachable.
        let nowhere = HttpHost::new("http://127.0.0.1:1", None).expect("a host");
        let dir = tempfile::tempdir().expect("a temp dir");
        let file = dir.path().join("raft3d-j1.gcode");
        let missing = nowhere.upload("/x", &[], "raft3d-j1.gcode", &file, 4).await;
        assert!(
            matches!(missing, Err(HostError::Protocol(_))),
            "{:?}",
            missing.err()
        );
        std::fs::write(&file, b"G28\n").expect("written");
        let short = nowhere.upload("/x", &[], "raft3d-j1.gcode", &file, 5).await;
        assert!(
            matches!(short, Err(HostError::Protocol(_))),
            "{:?}",
            short.err()
        );
        let bad_name = nowhere.upload("/x", &[], "../x", &file, 4).await;
        assert!(
            matches!(bad_name, Err(HostError::Protocol(_))),
            "{:?}",
            bad_name.err()
        );
        let sent = nowhere.upload("/x", &[], "raft3d-j1.gcode", &file, 4).await;
        assert!(
            matches!(sent, Err(HostError::Unreachable { .. })),
            "{:?}",
            sent.err()
        );
    }

    #[test]
    fn clip_cuts_on_characters_and_flattens_lines() {
        assert_eq!(clip("äöü", 2), "äö…");
        assert_eq!(clip("a\nb", 10), "a b");
        assert_eq!(clip("abc", 3), "abc");
    }
}
