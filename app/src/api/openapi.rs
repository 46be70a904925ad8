//! The OpenAPI 3.1 document of the API, generated from the contract ([`super::contract`])
//! and the schemas utoipa derives from the body types themselves: a field added to
//! `PrintJob` is in the document the moment it is in the code. The nodes serve it at
//! `/api/v1/openapi.json` and as a page at `/api/v1/reference`; CI fuzzes every
//! operation in it against a secured cluster (`scripts/fuzz-api.sh`).

use super::contract::{Access, Answer, Endpoint, Operation, Param, ParamIn, ParamKind, Shape};
use super::{
    AddNodeRequest, Board, ClusterView, CreatedToken, NewFilamentBody, NewPrintJobBody,
    NewPrinterBody, NewTokenBody, Problem,
};
use crate::domain::{Id, Text, Timestamp, MAX_ID_LEN, MAX_TEXT_LEN};
use crate::state::FilamentView;
use crate::{PrintJob, Printer, TokenView};
use serde_json::{json, Map, Value};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

type Schemas = Vec<(String, RefOr<Schema>)>;

impl PartialSchema for Id {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "1-128 of A-Z a-z 0-9 - _ . ~ (not `.` or `..`): safe in a path segment.",
            ))
            .min_length(Some(1))
            .max_length(Some(MAX_ID_LEN))
            .pattern(Some(r"^(?!\.\.?$)[A-Za-z0-9._~-]+$"))
            .into()
    }
}
impl ToSchema for Id {}

/// An id in a request body: an [`Id`], or an integer (taken as its decimal digits).
pub struct IdInput;

impl PartialSchema for IdInput {
    fn schema() -> RefOr<Schema> {
        let any_of = utoipa::openapi::schema::AnyOfBuilder::new()
            .item(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("Id")))
            // JSON has integers of any size; the API reads those of 64 bits.
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(i64::MIN))
                    .maximum(Some(u64::MAX)),
            )
            .description(Some("An id, or an integer taken as its decimal digits."));
        RefOr::T(Schema::AnyOf(any_of.build()))
    }
}
impl ToSchema for IdInput {
    fn schemas(schemas: &mut Schemas) {
        schemas.push((Id::name().into_owned(), Id::schema()));
    }
}

impl PartialSchema for Text {
    fn schema() -> RefOr<Schema> {
        let doc = format!(
            "Trimmed of surrounding white space, then 1 to {MAX_TEXT_LEN} bytes with no \
             control or bidirectional-override characters."
        );
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(doc))
            .min_length(Some(1))
            .pattern(Some(r"\S"))
            .into()
    }
}
impl ToSchema for Text {}

impl PartialSchema for Timestamp {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::DateTime,
            )))
            .description(Some(
                "RFC 3339, UTC, milliseconds: `2026-12-06T10:00:00.000Z`.",
            ))
            .into()
    }
}
impl ToSchema for Timestamp {}

/// The schema of a body shape (a `$ref` into the components), registering it and what
/// it refers to in `schemas`.
fn shape_schema(shape: Shape, schemas: &mut Schemas) -> Value {
    fn named<T: ToSchema>(schemas: &mut Schemas) -> Value {
        T::schemas(schemas);
        schemas.push((T::name().into_owned(), T::schema()));
        json!({ "$ref": format!("#/components/schemas/{}", T::name()) })
    }
    match shape {
        Shape::Printer => named::<Printer>(schemas),
        Shape::NewPrinter => named::<NewPrinterBody>(schemas),
        Shape::Filament => named::<FilamentView>(schemas),
        Shape::NewFilament => named::<NewFilamentBody>(schemas),
        Shape::PrintJob => named::<PrintJob>(schemas),
        Shape::NewPrintJob => named::<NewPrintJobBody>(schemas),
        Shape::Board => named::<Board>(schemas),
        Shape::Cluster => named::<ClusterView>(schemas),
        Shape::AddNode => named::<AddNodeRequest>(schemas),
        Shape::Token => named::<TokenView>(schemas),
        Shape::NewToken => named::<NewTokenBody>(schemas),
        Shape::CreatedToken => named::<CreatedToken>(schemas),
        Shape::NewConnection => named::<super::NewConnectionBody>(schemas),
        Shape::PrinterLive => named::<crate::domain::PrinterLive>(schemas),
        Shape::File => named::<crate::domain::GcodeFile>(schemas),
        Shape::NewCopies => named::<super::NewCopiesBody>(schemas),
        Shape::QueuePlace => named::<super::QueuePlaceBody>(schemas),
        Shape::LoadSpool => named::<super::LoadSpoolBody>(schemas),
        Shape::Gcode => json!({
            "type": "string",
            "contentMediaType": "application/octet-stream",
            "examples": ["; generated by PrusaSlicer 2.7.1\nG28\nG1 X10 Y10 E1\n; filament used [g] = 3.71\n; estimated printing time (normal mode) = 1m 5s\n"]
        }),
        Shape::OpenApi => json!({ "type": "object" }),
    }
}

fn param_schema(kind: ParamKind) -> Value {
    match kind {
        ParamKind::Id => json!({ "$ref": "#/components/schemas/Id" }),
        ParamKind::Integer { min, max } => json!({
            "type": "integer", "minimum": min, "maximum": max
        }),
        ParamKind::OneOf(words) => json!({ "type": "string", "enum": words }),
        ParamKind::Pattern(pattern) => json!({ "type": "string", "pattern": pattern }),
    }
}

fn parameter(param: &Param) -> Value {
    let located = match param.located {
        ParamIn::Path => "path",
        ParamIn::Query => "query",
        ParamIn::Header => "header",
    };
    json!({
        "name": param.name,
        "in": located,
        "required": param.required,
        "description": param.doc,
        "schema": param_schema(param.kind),
    })
}

fn success(op: &Operation, schemas: &mut Schemas) -> Value {
    let content = match op.answer {
        Answer::Json(shape) => {
            json!({ "application/json": { "schema": shape_schema(shape, schemas) } })
        }
        Answer::JsonList(shape) => json!({ "application/json": {
            "schema": { "type": "array", "items": shape_schema(shape, schemas) }
        } }),
        Answer::EventStream => json!({ "text/event-stream": { "schema": { "type": "string" } } }),
        Answer::Text => json!({ "text/plain": { "schema": { "type": "string" } } }),
        Answer::Html => json!({ "text/html": { "schema": { "type": "string" } } }),
        Answer::Bytes => {
            json!({ "application/octet-stream": { "schema": { "type": "string", "contentMediaType": "application/octet-stream" } } })
        }
    };
    let mut headers = Map::new();
    if op.path.starts_with("/api/v1/") {
        headers.insert(
            "X-Raft3D-Index".into(),
            json!({
                "description": "The log index the answer reflects (for a write: its entry's).",
                "schema": { "type": "integer", "minimum": 0 }
            }),
        );
    }
    if op.method.reads() && matches!(op.answer, Answer::Json(_) | Answer::JsonList(_)) {
        headers.insert("ETag".into(), json!({
            "description": "The answer's version, for `If-None-Match` (and `If-Match` on a job).",
            "schema": { "type": "string" }
        }));
    }
    if matches!(op.answer, Answer::JsonList(_)) {
        headers.insert(
            "Link".into(),
            json!({
                "description": "`<...>; rel=\"next\"`: the next page, while more follow.",
                "schema": { "type": "string" }
            }),
        );
    }
    let mut answer = json!({ "description": "Done.", "content": content, "headers": headers });
    let links = links(op);
    if !links.is_empty() {
        answer["links"] = Value::Object(links);
    }
    answer
}

/// What a made object leads to: every operation on `{its list}/{id}...`, with the new
/// object's id (how a client, and the fuzzer, goes from a `POST` to what it made).
fn links(made: &Operation) -> Map<String, Value> {
    if made.success != 201 {
        return Map::new();
    }
    let object_path = format!("{}/{{id}}", made.path);
    Endpoint::ALL
        .into_iter()
        .filter(|e| e.operation().path.starts_with(&object_path))
        .map(|e| {
            let link = json!({
                "operationId": e.name(),
                "parameters": { "id": "$response.body#/id" }
            });
            (e.name().to_owned(), link)
        })
        .collect()
}

fn problem_response(status: u16) -> Value {
    let description = match status {
        304 => return json!({ "description": "Not modified since the `ETag` given." }),
        307 => {
            return json!({
                "description": "This node is a follower: the same request to the leader.",
                "headers": {
                    "Location": { "schema": { "type": "string" } },
                    "X-Raft3D-Leader-Url": { "schema": { "type": "string" } }
                }
            })
        }
        400 => "Malformed: not JSON, wrong types, unknown fields, bad query or headers.",
        401 => "No token, or not a valid one.",
        403 => "The token's role may not do this, or a cross-site write.",
        404 => "No such object.",
        409 => "Conflicts with the farm (a move the job's status does not allow, a reused idempotency key).",
        412 => "`If-Match` no longer holds: the job changed since it was read.",
        413 => "The body is larger than `--max-body-bytes`.",
        415 => "The body must be `application/json` (a file: `application/octet-stream`).",
        421 => "Not a host name of this cluster.",
        422 => "Breaks a rule: names the field.",
        503 => "No leader yet, a write not confirmed in time, or `min_index` not reached: try again after `retry_after_ms`.",
        _ => "See the problem body.",
    };
    json!({
        "description": description,
        "content": { "application/problem+json": {
            "schema": { "$ref": "#/components/schemas/Problem" }
        } }
    })
}

fn operation(endpoint: Endpoint, schemas: &mut Schemas) -> Value {
    let op = endpoint.operation();
    let mut responses = Map::new();
    responses.insert(op.success.to_string(), success(&op, schemas));
    for &status in op.problems {
        responses.insert(status.to_string(), problem_response(status));
    }
    let tag = op.path.split('/').nth(3).unwrap_or("operations");
    let mut out = json!({
        "operationId": endpoint.name(),
        "summary": op.summary,
        "tags": [tag],
        "parameters": op.params.iter().map(parameter).collect::<Vec<_>>(),
        "responses": responses,
    });
    if !op.description.is_empty() {
        out["description"] = json!(op.description);
    }
    if let Access::Role(role) = op.access {
        out["security"] = json!([{ "bearer": [] }]);
        out["x-raft3d-role"] = json!(role.as_str());
    }
    if let Some(body) = op.body {
        let media = match body {
            Shape::Gcode => "application/octet-stream",
            _ => "application/json",
        };
        out["requestBody"] = json!({
            "required": true,
            "content": { media: { "schema": shape_schema(body, schemas) } }
        });
    }
    out
}

/// The whole document. `version` is the crate's (the nodes pass theirs).
pub fn document(version: &str) -> Value {
    let mut schemas: Schemas = Vec::new();
    let mut paths = Map::new();
    for endpoint in Endpoint::ALL {
        let op = endpoint.operation();
        let item = paths.entry(op.path).or_insert_with(|| json!({}));
        item[op.method.as_str().to_ascii_lowercase()] = operation(endpoint, &mut schemas);
    }
    Problem::schemas(&mut schemas);
    schemas.push(("Problem".into(), Problem::schema()));
    let components: Map<String, Value> = schemas
        .into_iter()
        .map(|(name, schema)| (name, serde_json::to_value(schema).unwrap_or(Value::Null)))
        .collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Raft3D",
            "version": version,
            "description": "A fault-tolerant 3D-print farm: printers, filament spools and print \
                jobs, replicated with Raft. Any node takes any request: reads are answered \
                where they arrive (linearizable unless asked otherwise), writes on a \
                follower are redirected (`307`) to the leader. Errors are \
                `application/problem+json` (RFC 9457). Tokens go in `Authorization: Bearer`.",
            "license": { "name": "MIT OR Apache-2.0" }
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_is_in_the_document_and_every_ref_resolves() {
        let doc = document("test");
        for endpoint in Endpoint::ALL {
            let op = endpoint.operation();
            let method = op.method.as_str().to_ascii_lowercase();
            assert_eq!(
                doc["paths"][op.path][&method]["operationId"],
                endpoint.name()
            );
        }
        let text = doc.to_string();
        for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = &piece[..piece.find('"').unwrap_or(0)];
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "{name} is referred to but not defined"
            );
        }
    }

    #[test]
    fn what_a_post_makes_links_to_the_operations_on_it() {
        let doc = document("test");
        let made = &doc["paths"]["/api/v1/print_jobs"]["post"]["responses"]["201"]["links"];
        assert_eq!(
            made["setJobStatus"]["parameters"]["id"],
            "$response.body#/id"
        );
        assert!(made["getPrintJob"].is_object(), "{made}");
    }

    #[test]
    fn weight_bounds_are_the_rules() {
        // utoipa takes only literals there: this holds them to the constant.
        let doc = document("test");
        let schemas = &doc["components"]["schemas"];
        for (body, field) in [
            ("NewFilamentBody", "total_weight_in_grams"),
            ("NewFilamentBody", "remaining_weight_in_grams"),
            ("NewPrintJobBody", "print_weight_in_grams"),
        ] {
            let maximum = &schemas[body]["properties"][field]["maximum"];
            assert_eq!(
                maximum.as_f64(),
                Some(crate::domain::MAX_WEIGHT_GRAMS as f64),
                "{body}.{field}"
            );
        }
    }

    #[test]
    fn schemas_follow_the_types() {
        let doc = document("test");
        let job = &doc["components"]["schemas"]["PrintJob"];
        assert!(job["properties"]["started_at"].is_object(), "{job}");
        let required: Vec<&str> = job["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        assert!(required.contains(&"status") && !required.contains(&"started_at"));
        let status = &doc["components"]["schemas"]["JobStatus"];
        assert_eq!(
            status["enum"],
            json!(["Queued", "Running", "Done", "Canceled"])
        );
    }
}
