//! `/api/v1/openapi.json` and `/api/v1/reference`: the API's OpenAPI document
//! (`app::api::openapi`, made from the contract) and the same document as one page to
//! read. The page is rendered here from the document, with its style inline and no
//! script: it works offline and behind any proxy (no CDN, nothing fetched).
//!
//! Must not: describe anything the document does not (the page is a view of it).

use axum::http::header;
use axum::response::{Html, IntoResponse};
use serde_json::Value;
use std::fmt::Write;
use std::sync::LazyLock;

static DOCUMENT: LazyLock<Value> =
    LazyLock::new(|| app::api::openapi::document(env!("CARGO_PKG_VERSION")));
static DOCUMENT_JSON: LazyLock<String> = LazyLock::new(|| DOCUMENT.to_string());
static PAGE: LazyLock<String> = LazyLock::new(|| render(&DOCUMENT));

pub async fn document() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT_JSON.as_str(),
    )
}

pub async fn page() -> Html<&'static str> {
    Html(PAGE.as_str())
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

/// `` `code` `` in a description as `<code>`; the rest escaped.
fn prose(text: &str) -> String {
    escape(text)
        .split('`')
        .enumerate()
        .map(|(i, part)| match i % 2 {
            1 => format!("<code>{part}</code>"),
            _ => part.to_owned(),
        })
        .collect()
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// A schema in one line: its `$ref` name, or its type.
fn schema_name(schema: &Value) -> String {
    if let Some(name) = schema.get("$ref").and_then(Value::as_str) {
        let name = name.rsplit('/').next().unwrap_or(name);
        return format!("<a href=\"#schema-{name}\">{name}</a>");
    }
    if let Some(items) = schema.get("items") {
        return format!("array of {}", schema_name(items));
    }
    if let Some(words) = schema.get("enum").and_then(Value::as_array) {
        let words: Vec<_> = words.iter().filter_map(Value::as_str).map(escape).collect();
        return format!("one of {}", words.join(", "));
    }
    match (schema.get("minimum"), schema.get("maximum")) {
        (Some(min), Some(max)) => format!("{} ({min}–{max})", text(schema, "type")),
        _ => escape(text(schema, "type")),
    }
}

fn render_operation(out: &mut String, path: &str, method: &str, op: &Value) {
    let id = text(op, "operationId");
    let role = match op.get("x-raft3d-role").and_then(Value::as_str) {
        Some(role) => format!("{role} token"),
        None => "open".to_owned(),
    };
    let _ = write!(
        out,
        "<section id=\"{id}\"><h3><span class=\"m\">{}</span> <code>{}</code></h3>\
         <p>{} <small>({role})</small></p>",
        method.to_ascii_uppercase(),
        escape(path),
        prose(text(op, "summary")),
    );
    if let Some(description) = op.get("description").and_then(Value::as_str) {
        let _ = write!(out, "<p>{}</p>", prose(description));
    }
    let params = op.get("parameters").and_then(Value::as_array);
    if let Some(params) = params.filter(|p| !p.is_empty()) {
        out.push_str("<table><tr><th>parameter</th><th>in</th><th>takes</th><th></th></tr>");
        for p in params {
            let required = if p["required"] == true { " *" } else { "" };
            let _ = write!(
                out,
                "<tr><td><code>{}</code>{required}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(text(p, "name")),
                text(p, "in"),
                schema_name(&p["schema"]),
                prose(text(p, "description")),
            );
        }
        out.push_str("</table>");
    }
    if let Some(body) = op.pointer("/requestBody/content/application~1json/schema") {
        let _ = write!(out, "<p>Body: {}</p>", schema_name(body));
    }
    out.push_str("<table><tr><th>status</th><th>answer</th></tr>");
    if let Some(responses) = op.get("responses").and_then(Value::as_object) {
        for (status, response) in responses {
            let body = response
                .get("content")
                .and_then(Value::as_object)
                .and_then(|c| c.iter().next())
                .map(|(kind, c)| format!("{kind}: {}", schema_name(&c["schema"])))
                .unwrap_or_default();
            let _ = write!(
                out,
                "<tr><td>{status}</td><td>{} {body}</td></tr>",
                prose(text(response, "description")),
            );
        }
    }
    out.push_str("</table></section>");
}

fn render(doc: &Value) -> String {
    let mut out = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Raft3D API reference</title><style>\
         body{font:15px/1.45 system-ui,sans-serif;max-width:62rem;margin:auto;padding:1rem;color:#1d2330}\
         code,pre{font:13px ui-monospace,monospace;background:#f1f3f7;padding:0 .2em}\
         pre{padding:.6em;overflow:auto}section{border-top:1px solid #dde;padding:.4em 0}\
         .m{display:inline-block;min-width:4.5em;font-size:13px;color:#fff;background:#3b5bdb;\
         text-align:center;border-radius:3px}table{border-collapse:collapse;margin:.4em 0}\
         td,th{border:1px solid #dde;padding:.2em .5em;text-align:left;vertical-align:top}\
         </style></head><body>",
    );
    let info = &doc["info"];
    let _ = write!(
        out,
        "<h1>{} API {}</h1><p>{}</p><p>Machine-readable: \
         <a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a> (OpenAPI {}). \
         <a href=\"/\">Dashboard</a>.</p>",
        escape(text(info, "title")),
        escape(text(info, "version")),
        prose(text(info, "description")),
        escape(text(doc, "openapi")),
    );
    let paths = doc["paths"].as_object().cloned().unwrap_or_default();
    out.push_str("<h2>Operations</h2><ul>");
    for (path, item) in &paths {
        for (method, op) in item.as_object().into_iter().flatten() {
            let _ = write!(
                out,
                "<li><a href=\"#{}\">{} {}</a> — {}</li>",
                text(op, "operationId"),
                method.to_ascii_uppercase(),
                escape(path),
                prose(text(op, "summary")),
            );
        }
    }
    out.push_str("</ul>");
    for (path, item) in &paths {
        for (method, op) in item.as_object().into_iter().flatten() {
            render_operation(&mut out, path, method, op);
        }
    }
    out.push_str("<h2>Schemas</h2>");
    let schemas = doc["components"]["schemas"].as_object().cloned();
    for (name, schema) in schemas.into_iter().flatten() {
        let pretty = serde_json::to_string_pretty(&schema).unwrap_or_default();
        let _ = write!(
            out,
            "<section id=\"schema-{name}\"><h3>{name}</h3><pre>{}</pre></section>",
            escape(&pretty)
        );
    }
    out.push_str("</body></html>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_shows_every_operation_and_schema_of_the_document() {
        let page = render(&DOCUMENT);
        for endpoint in app::api::Endpoint::ALL {
            assert!(page.contains(&format!("id=\"{}\"", endpoint.name())));
        }
        assert!(page.contains("id=\"schema-PrintJob\""));
        assert!(!page.contains("<script"), "the page needs no script");
    }

    #[test]
    fn descriptions_are_escaped() {
        assert_eq!(prose("a `<b>` & c"), "a <code>&lt;b&gt;</code> &amp; c");
    }
}
