//! The API's shapes, shared by the server, the CLI, the tests and the dashboard.
//!
//! Requests are parsed from raw JSON here, field by field, so that every error names the
//! field it is about and says whether the request was *malformed* (wrong JSON, wrong
//! types: HTTP 400) or broke a *rule* (empty text, bad filament type, non-positive
//! weight: HTTP 422). Which HTTP status each error becomes is decided by the server, in
//! one place; this module only classifies.

use crate::digest::fnv1a;
use crate::domain::filament::{Filament, FilamentType};
use crate::domain::job::{JobStatus, PrintJob};
use crate::domain::printer::Printer;
use crate::domain::{
    AccessRole, Connection, ConnectionKind, GcodeFile, Id, IdError, Material, QueuePlace, Text,
    TextError, TokenView, MAX_WEIGHT_GRAMS,
};
use crate::state::Rejection;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

mod board;
pub mod contract;
pub mod etag;
mod list;
#[cfg(feature = "openapi")]
pub mod openapi;
pub use board::{column_order, Board, BOARD_LIMIT};
pub use contract::{Endpoint, Method};
pub use list::{JobFilter, Order, Paging, MAX_PAGE_LIMIT};

// The bodies of the create requests as they travel: what clients (`raft3d-client`, the
// dashboard) send and the OpenAPI document shows. Plain strings, so that a client can
// send anything and the server, parsing field by field (`NewPrinter::from_json`, ...),
// names the field it refuses.

/// `POST /api/v1/printers`: `id` may be left to the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(examples(json!({"id": "prusa-1", "company": "Prusa", "model": "MK4"}))))]
#[serde(deny_unknown_fields)]
pub struct NewPrinterBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<openapi::IdInput>))]
    pub id: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Text))]
    pub company: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Text))]
    pub model: String,
}

/// `POST /api/v1/filaments`: a fresh spool (`remaining` defaults to `total`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(examples(json!({"id": "pla-red-1", "type": "PLA", "color": "red", "total_weight_in_grams": 1000}))))]
#[serde(deny_unknown_fields)]
pub struct NewFilamentBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<openapi::IdInput>))]
    pub id: Option<String>,
    /// `PLA`, `PETG`, `ABS` or `TPU`, in any case.
    #[serde(rename = "type")]
    #[cfg_attr(feature = "openapi", schema(value_type = FilamentType))]
    pub kind: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Text))]
    pub color: String,
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 1, maximum = 1_000_000_000_000_u64)
    )]
    pub total_weight_in_grams: u64,
    /// At most `total_weight_in_grams`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(maximum = 1_000_000_000_000_u64))]
    pub remaining_weight_in_grams: Option<u64>,
}

/// `POST /api/v1/print_jobs`: a fresh job (queued, reserving its weight of its spool).
/// It prints a stored file (`file_id`: its printer's driver sends it there, and the
/// weight defaults to the file's) or only names one (`filepath`: moved by hand).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(examples(json!({"printer_id": "prusa-1", "filament_id": "pla-red-1", "filepath": "benchy.gcode", "print_weight_in_grams": 15}))))]
#[serde(deny_unknown_fields)]
pub struct NewPrintJobBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<openapi::IdInput>))]
    pub id: Option<String>,
    /// The printer to print on; without it, the farm queue sends the job to the first
    /// idle printer whose loaded spool fits (needs `file_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<openapi::IdInput>))]
    pub printer_id: Option<String>,
    /// The spool, which reserves the job's weight now; or give `material` instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<openapi::IdInput>))]
    pub filament_id: Option<String>,
    /// Instead of `filament_id`: any spool of this material and colour, loaded on the
    /// printer that takes the job (needs `file_id`; the weight is reserved then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub material: Option<MaterialBody>,
    /// A stored file (`POST /api/v1/files`); `filepath` then defaults to its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<openapi::IdInput>))]
    pub file_id: Option<String>,
    /// Required without `file_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Text>))]
    pub filepath: Option<String>,
    /// Required without `file_id`; with one, defaults to the file's grams rounded up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 1, maximum = 1_000_000_000_000_u64)
    )]
    pub print_weight_in_grams: Option<u64>,
}

/// A material and colour as a request gives them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MaterialBody {
    #[serde(rename = "type")]
    #[cfg_attr(feature = "openapi", schema(value_type = FilamentType))]
    pub kind: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Text))]
    pub color: String,
}

impl NewPrintJobBody {
    /// A job that only names its file (`filepath`), moved by hand.
    pub fn by_path(printer_id: &str, filament_id: &str, filepath: &str, grams: u64) -> Self {
        Self {
            id: None,
            printer_id: Some(printer_id.to_owned()),
            filament_id: Some(filament_id.to_owned()),
            material: None,
            file_id: None,
            filepath: Some(filepath.to_owned()),
            print_weight_in_grams: Some(grams),
        }
    }

    /// A job of a stored file; its weight defaults to the file's.
    pub fn of_file(printer_id: &str, filament_id: &str, file_id: &str) -> Self {
        Self {
            printer_id: Some(printer_id.to_owned()),
            filament_id: Some(filament_id.to_owned()),
            ..Self::for_queue(file_id)
        }
    }

    /// A job of a stored file for the farm queue: set the spool or material, and the
    /// printer if it must be one.
    pub fn for_queue(file_id: &str) -> Self {
        Self {
            id: None,
            printer_id: None,
            filament_id: None,
            material: None,
            file_id: Some(file_id.to_owned()),
            filepath: None,
            print_weight_in_grams: None,
        }
    }
}

/// `POST /api/v1/queue`: copies of one print: the fields of [`NewPrintJobBody`] but `id`
/// (each copy gets its own; one given is refused, `422`), and `copies`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(examples(json!({"file_id": "benchy", "material": {"type": "PLA", "color": "red"}, "copies": 4}))))]
#[serde(deny_unknown_fields)]
pub struct NewCopiesBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<openapi::IdInput>))]
    pub printer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<openapi::IdInput>))]
    pub filament_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub material: Option<MaterialBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<openapi::IdInput>))]
    pub file_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Text>))]
    pub filepath: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 1, maximum = 1_000_000_000_000_u64)
    )]
    pub print_weight_in_grams: Option<u64>,
    /// How many copies, 1 to 100.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100))]
    pub copies: u32,
}

impl NewCopiesBody {
    /// `copies` of `job` (whose `id` is dropped).
    pub fn of(job: NewPrintJobBody, copies: u32) -> Self {
        Self {
            printer_id: job.printer_id,
            filament_id: job.filament_id,
            material: job.material,
            file_id: job.file_id,
            filepath: job.filepath,
            print_weight_in_grams: job.print_weight_in_grams,
            copies,
        }
    }
}

/// Most copies one `POST /api/v1/queue` queues.
pub const MAX_COPIES: u32 = 100;

/// `PUT /api/v1/printers/{id}/connection`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(examples(json!({"kind": "octoprint", "url": "http://octopi.local", "api_key": "0123456789ABCDEF0123456789ABCDEF"}))))]
#[serde(deny_unknown_fields)]
pub struct NewConnectionBody {
    #[cfg_attr(feature = "openapi", schema(value_type = crate::domain::ConnectionKind))]
    pub kind: String,
    /// The host's base URL: `http(s)://host[:port][/path]`.
    pub url: String,
    /// OctoPrint's (per-user) API key, or Moonraker's; never shown again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[\x21-\x7e]{1,256}$"))]
    pub api_key: Option<String>,
    /// Give the idle printer the first queued job it fits (default `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_dispatch: Option<bool>,
    /// The printer clears its own bed: no waiting for a person between jobs (default
    /// `false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_clearing: Option<bool>,
}

/// A connection request, validated. Its `Debug` hides the key.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct NewConnection {
    pub kind: ConnectionKind,
    pub url: String,
    /// Serialised only for the idempotency fingerprint; never stored as it is.
    pub api_key: Option<String>,
    pub auto_dispatch: bool,
    pub self_clearing: bool,
}

impl fmt::Debug for NewConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewConnection")
            .field("kind", &self.kind)
            .field("url", &self.url)
            .field("api_key_set", &self.api_key.is_some())
            .field("auto_dispatch", &self.auto_dispatch)
            .field("self_clearing", &self.self_clearing)
            .finish()
    }
}

/// Longest API key accepted (OctoPrint's are 32 characters, Moonraker's 32 hex digits).
const MAX_API_KEY_LEN: usize = 256;

impl NewConnection {
    pub fn from_json(body: &[u8]) -> Result<Self, RequestError> {
        let mut fields = Fields::parse(
            body,
            &["kind", "url", "api_key", "auto_dispatch", "self_clearing"],
        )?;
        let kind = ConnectionKind::parse(&fields.string("kind")?)
            .ok_or_else(|| invalid("kind", FieldProblem::ConnectionKind))?;
        let url = parse_host_url(&fields.string("url")?).map_err(|p| invalid("url", p))?;
        let api_key = match fields.present("api_key") {
            false => None,
            true => {
                let key = fields.string("api_key")?;
                let visible = |b: u8| (0x21..=0x7e).contains(&b);
                if key.is_empty() || key.len() > MAX_API_KEY_LEN || !key.bytes().all(visible) {
                    return Err(invalid("api_key", FieldProblem::ApiKey));
                }
                Some(key)
            }
        };
        Ok(Self {
            kind,
            url,
            api_key,
            auto_dispatch: fields.flag("auto_dispatch", true)?,
            self_clearing: fields.flag("self_clearing", false)?,
        })
    }

    /// The public part, as the printer shows it.
    pub fn public(&self) -> Connection {
        Connection {
            kind: self.kind,
            url: self.url.clone(),
            api_key_set: self.api_key.is_some(),
            auto_dispatch: self.auto_dispatch,
            self_clearing: self.self_clearing,
        }
    }
}

/// Longest printer host URL accepted.
const MAX_HOST_URL_LEN: usize = 512;

/// A printer host's base URL, `http(s)://host[:port][/path]`, checked (no user, query
/// or fragment; the path in unreserved characters and `/` `%`). Returned without a
/// trailing `/`: the driver appends `/api/...` to it.
pub fn parse_host_url(raw: &str) -> Result<String, FieldProblem> {
    let raw = raw.trim();
    let (scheme, rest) = raw.split_once("://").ok_or(FieldProblem::HostUrl)?;
    let default_port = match scheme {
        "http" => 80,
        "https" => 443,
        _ => return Err(FieldProblem::HostUrl),
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let has_port = match authority.rsplit_once(':') {
        Some((host, _)) => {
            !host.ends_with('[') && (!authority.starts_with('[') || host.ends_with(']'))
        }
        None => false,
    };
    let with_port = match has_port {
        true => authority.to_owned(),
        false => format!("{authority}:{default_port}"),
    };
    let path_ok = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/' | b'%'));
    if raw.len() > MAX_HOST_URL_LEN || !path_ok || parse_address(&with_port).is_err() {
        return Err(FieldProblem::HostUrl);
    }
    Ok(raw.trim_end_matches('/').to_owned())
}

/// `PUT /api/v1/queue/{id}`: where the job goes, one of the fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(examples(json!({"before": "0190a1b2c3d4e5f60718293a4b5c6d7e"}), json!({"to": "first"}))))]
#[serde(deny_unknown_fields)]
pub struct QueuePlaceBody {
    /// Just before this queued job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<openapi::IdInput>))]
    pub before: Option<String>,
    /// Just after this queued job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<openapi::IdInput>))]
    pub after: Option<String>,
    /// `first` or `last`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(pattern = "^(first|last)$"))]
    pub to: Option<String>,
}

impl QueuePlaceBody {
    pub fn before(job_id: &str) -> Self {
        Self {
            before: Some(job_id.to_owned()),
            after: None,
            to: None,
        }
    }

    pub fn after(job_id: &str) -> Self {
        Self {
            before: None,
            after: Some(job_id.to_owned()),
            to: None,
        }
    }

    /// `first` or `last`.
    pub fn to(end: &str) -> Self {
        Self {
            before: None,
            after: None,
            to: Some(end.to_owned()),
        }
    }
}

/// Parses `PUT /api/v1/queue/{id}`'s body: exactly one of `before`, `after`, `to`.
pub fn parse_queue_place(body: &[u8]) -> Result<QueuePlace, RequestError> {
    let mut fields = Fields::parse(body, &["before", "after", "to"])?;
    let given = ["before", "after", "to"].map(|f| fields.present(f));
    match given {
        [true, false, false] => Ok(QueuePlace::Before(fields.id("before")?)),
        [false, true, false] => Ok(QueuePlace::After(fields.id("after")?)),
        [false, false, true] => match fields.string("to")?.trim().to_ascii_lowercase().as_str() {
            "first" => Ok(QueuePlace::First),
            "last" => Ok(QueuePlace::Last),
            _ => Err(invalid("to", FieldProblem::QueueEnd)),
        },
        [false, false, false] => Err(RequestError::Missing { field: "before" }),
        _ => Err(invalid("to", FieldProblem::OnePlace)),
    }
}

/// `PUT /api/v1/printers/{id}/spool`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(examples(json!({"filament_id": "pla-red-1"}))))]
#[serde(deny_unknown_fields)]
pub struct LoadSpoolBody {
    #[cfg_attr(feature = "openapi", schema(value_type = openapi::IdInput))]
    pub filament_id: String,
}

impl LoadSpoolBody {
    pub fn from_json(body: &[u8]) -> Result<Id, RequestError> {
        Fields::parse(body, &["filament_id"])?.id("filament_id")
    }
}

/// `POST /api/v1/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(examples(json!({"name": "front desk tablet", "role": "viewer"}))))]
#[serde(deny_unknown_fields)]
pub struct NewTokenBody {
    /// Who or what holds it ("front desk tablet").
    #[cfg_attr(feature = "openapi", schema(value_type = Text))]
    pub name: String,
    pub role: AccessRole,
}

/// A request to create a printer, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewPrinter {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Id>,
    pub company: Text,
    pub model: Text,
}

/// A request to create a filament spool, validated (`remaining <= total`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewFilament {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Id>,
    #[serde(rename = "type")]
    pub kind: FilamentType,
    pub color: Text,
    pub total_weight_in_grams: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining_weight_in_grams: Option<u64>,
}

/// A request to create a print job, validated as far as it can be without the farm
/// (whether printer and filament exist and the weight is available is the state's call).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewPrintJob {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Id>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub printer_id: Option<Id>,
    #[serde(flatten)]
    pub spool: SpoolChoice,
    #[serde(flatten)]
    pub source: JobSource,
}

/// What a new job prints with: a spool, or any spool of a material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SpoolChoice {
    Spool { filament_id: Id },
    Material { material: Material },
}

/// What a new job prints: a stored file, or a path that only names one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum JobSource {
    /// A stored file: its printer's driver sends it there; the path and weight default
    /// to the file's name and grams.
    File {
        file_id: Id,
        #[serde(skip_serializing_if = "Option::is_none")]
        filepath: Option<Text>,
        #[serde(skip_serializing_if = "Option::is_none")]
        print_weight_in_grams: Option<u64>,
    },
    /// Only a path: the job is moved by hand.
    Path {
        filepath: Text,
        print_weight_in_grams: u64,
    },
}

/// Why a request body or parameter was refused before it reached the farm.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("the body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("the body must be a JSON object")]
    NotAnObject,
    #[error("'{field}' must be {expected}")]
    WrongType {
        field: String,
        expected: &'static str,
    },
    #[error("'{0}' is not a field of this request")]
    UnknownField(String),
    #[error("'{field}' is required")]
    Missing { field: &'static str },
    #[error("'{field}' {problem}")]
    Invalid {
        field: &'static str,
        problem: FieldProblem,
    },
}

impl RequestError {
    /// True when the request is malformed (HTTP 400) rather than breaking a rule (422).
    pub fn is_malformed(&self) -> bool {
        matches!(
            self,
            Self::MalformedJson(_)
                | Self::NotAnObject
                | Self::WrongType { .. }
                | Self::UnknownField(_)
        )
    }

    /// The field the error is about, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::MalformedJson(_) | Self::NotAnObject => None,
            Self::WrongType { field, .. } | Self::UnknownField(field) => Some(field),
            Self::Missing { field } | Self::Invalid { field, .. } => Some(field),
        }
    }
}

/// What is wrong with a well-typed field's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldProblem {
    #[error("{0}")]
    Id(#[from] IdError),
    #[error("{0}")]
    Text(#[from] TextError),
    #[error("must be one of PLA, PETG, ABS, TPU")]
    FilamentType,
    #[error("must be one of Queued, Running, Done, Canceled")]
    JobStatus,
    #[error("must be Queued (or omitted): a new job always starts queued")]
    NotQueued,
    #[error("must be greater than 0")]
    NotPositive,
    #[error("must not be negative")]
    Negative,
    #[error("must be at most {MAX_WEIGHT_GRAMS}")]
    TooLarge,
    #[error("must not be more than total_weight_in_grams")]
    AboveTotal,
    #[error("must be 'linearizable' or 'stale'")]
    Consistency,
    #[error("must be a whole number from 1 to {}", list::MAX_PAGE_LIMIT)]
    PageLimit,
    #[error("must be 'asc' or 'desc'")]
    Order,
    #[error("must be a log index (a whole number)")]
    LogIndex,
    #[error("must be a change stream position: a log index N, or N.k")]
    EventPosition,
    #[error("must be one of viewer, operator, admin")]
    AccessRole,
    #[error("must be http://host:port or https://host:port")]
    ClientUrl,
    #[error("must be octoprint or moonraker")]
    ConnectionKind,
    #[error("must be http(s)://host[:port][/path], without user, query or fragment")]
    HostUrl,
    #[error("must be 1-256 visible ASCII characters")]
    ApiKey,
    #[error("is required, or a material ({{\"type\": \"PLA\", \"color\": \"red\"}}) for any spool of it; not both")]
    SpoolOrMaterial,
    #[error("is required for a job that names no printer or no spool: only a stored file can be sent to the printer the farm queue picks")]
    FileForQueue,
    #[error("must be a whole number from 1 to {MAX_COPIES}")]
    Copies,
    #[error("cannot be given with copies: each copy gets its own")]
    IdWithCopies,
    #[error("must be first or last")]
    QueueEnd,
    #[error("give one of before, after and to")]
    OnePlace,
    #[error("must be host:port (a host name, an IPv4 address or a [bracketed] IPv6 address, and a port 1-65535)")]
    Address,
}

/// Longest address accepted (a DNS name is at most 253 bytes, plus `:65535`).
const MAX_ADDRESS_LEN: usize = 260;

/// A peer's Raft address as `host:port`, checked: it is stored in the membership on every
/// node and dialled by every leader, so nothing else (a path, a user, spaces, control
/// characters) may ride along. Used for `POST /api/v1/cluster/nodes` and `--peers`.
pub fn parse_address(raw: &str) -> Result<String, FieldProblem> {
    let raw = raw.trim();
    let (host, port) = raw.rsplit_once(':').ok_or(FieldProblem::Address)?;
    let port_ok =
        port.parse::<u16>().is_ok_and(|p| p > 0) && port.bytes().all(|b| b.is_ascii_digit());
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        }
    };
    if raw.len() > MAX_ADDRESS_LEN || !port_ok || !host_ok {
        return Err(FieldProblem::Address);
    }
    Ok(raw.to_owned())
}

/// `POST /api/v1/tokens`: a token for `name` with `role`. The server makes its id and
/// secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewToken {
    pub name: Text,
    pub role: AccessRole,
}

impl NewToken {
    pub fn from_json(body: &[u8]) -> Result<Self, RequestError> {
        let mut fields = Fields::parse(body, &["name", "role"])?;
        let name = fields.text("name")?;
        let role = AccessRole::parse(&fields.string("role")?)
            .ok_or_else(|| invalid("role", FieldProblem::AccessRole))?;
        Ok(Self { name, role })
    }
}

/// The answer to `POST /api/v1/tokens`: the token and, this once, its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedToken {
    #[serde(flatten)]
    pub token: TokenView,
    /// Send as `Authorization: Bearer <secret>`. Shown only in this answer.
    pub secret: String,
}

/// A node's client URL, `http(s)://host:port` (an optional trailing `/`), checked: it is
/// recorded in the membership, sent to every client in redirects, and trusted as a
/// browser origin (CORS, cross-site writes) and host name. Returned without the `/`.
pub fn parse_client_url(raw: &str) -> Result<String, FieldProblem> {
    let raw = raw.trim();
    let rest = raw
        .strip_prefix("http://")
        .or_else(|| raw.strip_prefix("https://"))
        .ok_or(FieldProblem::ClientUrl)?;
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    parse_address(authority).map_err(|_| FieldProblem::ClientUrl)?;
    Ok(raw.trim_end_matches('/').to_owned())
}

impl NewPrinter {
    pub fn from_json(body: &[u8]) -> Result<Self, RequestError> {
        let mut fields = Fields::parse(body, &["id", "company", "model"])?;
        Ok(Self {
            id: fields.optional_id("id")?,
            company: fields.text("company")?,
            model: fields.text("model")?,
        })
    }

    /// The printer to store, with `fallback_id` if the client gave none.
    pub fn into_printer(self, fallback_id: Id) -> Printer {
        Printer::new(self.id.unwrap_or(fallback_id), self.company, self.model)
    }
}

impl NewFilament {
    pub fn from_json(body: &[u8]) -> Result<Self, RequestError> {
        let mut fields = Fields::parse(
            body,
            &[
                "id",
                "type",
                "color",
                "total_weight_in_grams",
                "remaining_weight_in_grams",
            ],
        )?;
        let id = fields.optional_id("id")?;
        let kind = fields
            .string("type")?
            .parse()
            .map_err(|_| invalid("type", FieldProblem::FilamentType))?;
        let color = fields.text("color")?;
        let total = fields.weight("total_weight_in_grams", true)?;
        let remaining = match fields.present("remaining_weight_in_grams") {
            true => Some(fields.weight("remaining_weight_in_grams", false)?),
            false => None,
        };
        if remaining.is_some_and(|r| r > total) {
            return Err(invalid(
                "remaining_weight_in_grams",
                FieldProblem::AboveTotal,
            ));
        }
        Ok(Self {
            id,
            kind,
            color,
            total_weight_in_grams: total,
            remaining_weight_in_grams: remaining,
        })
    }

    pub fn into_filament(self, fallback_id: Id) -> Filament {
        Filament {
            id: self.id.unwrap_or(fallback_id),
            kind: self.kind,
            color: self.color,
            total_weight_in_grams: self.total_weight_in_grams,
            remaining_weight_in_grams: self
                .remaining_weight_in_grams
                .unwrap_or(self.total_weight_in_grams),
        }
    }
}

/// The fields of a new job (copies take `copies` too, and refuse an `id` with `422`).
const JOB_FIELDS: [&str; 8] = [
    "printer_id",
    "filament_id",
    "material",
    "file_id",
    "filepath",
    "print_weight_in_grams",
    "status",
    "id",
];

impl NewPrintJob {
    pub fn from_json(body: &[u8]) -> Result<Self, RequestError> {
        let mut fields = Fields::parse(body, &JOB_FIELDS)?;
        let id = fields.optional_id("id")?;
        Self::from_fields(id, fields)
    }

    /// `POST /api/v1/queue`: the job and how many copies of it.
    pub fn copies_from_json(body: &[u8]) -> Result<(Self, u32), RequestError> {
        let mut known = JOB_FIELDS.to_vec();
        known.push("copies");
        let mut fields = Fields::parse(body, &known)?;
        if fields.present("id") {
            return Err(invalid("id", FieldProblem::IdWithCopies));
        }
        let copies = match fields.take("copies")? {
            Value::Number(n) => n
                .as_u64()
                .filter(|n| (1..=u64::from(MAX_COPIES)).contains(n)),
            _ => return Err(wrong_type("copies", "an integer")),
        };
        let copies = copies.ok_or_else(|| invalid("copies", FieldProblem::Copies))?;
        let job = Self::from_fields(None, fields)?;
        // In range 1..=MAX_COPIES: fits u32.
        Ok((job, u32::try_from(copies).unwrap_or(1)))
    }

    fn from_fields(id: Option<Id>, mut fields: Fields) -> Result<Self, RequestError> {
        let printer_id = fields.optional_id("printer_id")?;
        let spool = match (fields.present("filament_id"), fields.present("material")) {
            (true, false) => SpoolChoice::Spool {
                filament_id: fields.id("filament_id")?,
            },
            (false, true) => SpoolChoice::Material {
                material: fields.material("material")?,
            },
            (false, false) => return Err(invalid("filament_id", FieldProblem::SpoolOrMaterial)),
            (true, true) => return Err(invalid("material", FieldProblem::SpoolOrMaterial)),
        };
        let picked_by_queue = printer_id.is_none() || matches!(spool, SpoolChoice::Material { .. });
        if picked_by_queue && !fields.present("file_id") {
            return Err(invalid("file_id", FieldProblem::FileForQueue));
        }
        let source = match fields.optional_id("file_id")? {
            None => JobSource::Path {
                filepath: fields.text("filepath")?,
                print_weight_in_grams: fields.weight("print_weight_in_grams", true)?,
            },
            Some(file_id) => JobSource::File {
                file_id,
                filepath: match fields.present("filepath") {
                    true => Some(fields.text("filepath")?),
                    false => None,
                },
                print_weight_in_grams: match fields.present("print_weight_in_grams") {
                    true => Some(fields.weight("print_weight_in_grams", true)?),
                    false => None,
                },
            },
        };
        let job = Self {
            id,
            printer_id,
            spool,
            source,
        };
        if fields.present("status") {
            let status = fields.string("status")?;
            if parse_status(&status)? != JobStatus::Queued {
                return Err(invalid("status", FieldProblem::NotQueued));
            }
        }
        Ok(job)
    }

    /// The stored file this job prints, if any.
    pub fn file_id(&self) -> Option<&Id> {
        match &self.source {
            JobSource::File { file_id, .. } => Some(file_id),
            JobSource::Path { .. } => None,
        }
    }

    /// The job to store, with `fallback_id` if the client gave none. `file` is the stored
    /// file [`Self::file_id`] names, as the proposing node knows it (`None`: no such file);
    /// its name and grams fill in what the request left out.
    pub fn into_job(
        self,
        fallback_id: Id,
        file: Option<&GcodeFile>,
    ) -> Result<PrintJob, Rejection> {
        let (file_id, filepath, print_weight_in_grams) = match self.source {
            JobSource::Path {
                filepath,
                print_weight_in_grams,
            } => (None, filepath, print_weight_in_grams),
            JobSource::File {
                file_id,
                filepath,
                print_weight_in_grams,
            } => {
                let file = file.ok_or_else(|| Rejection::UnknownFile(file_id.clone()))?;
                let grams = print_weight_in_grams
                    .or_else(|| file.job_weight())
                    .ok_or_else(|| Rejection::FileWithoutWeight(file_id.clone()))?;
                (
                    Some(file_id),
                    filepath.unwrap_or_else(|| file.name.clone()),
                    grams,
                )
            }
        };
        let (filament_id, material) = match self.spool {
            SpoolChoice::Spool { filament_id } => (Some(filament_id), None),
            SpoolChoice::Material { material } => (None, Some(material)),
        };
        Ok(PrintJob {
            printer_id: self.printer_id,
            filament_id,
            material,
            file_id,
            ..PrintJob::waiting(
                self.id.unwrap_or(fallback_id),
                filepath,
                print_weight_in_grams,
            )
        })
    }
}

/// Parses a `status` query parameter (case-insensitive, `cancelled` accepted).
pub fn parse_status(raw: &str) -> Result<JobStatus, RequestError> {
    raw.parse()
        .map_err(|_| invalid("status", FieldProblem::JobStatus))
}

/// Parses an id from a URL path segment.
pub fn parse_path_id(raw: &str) -> Result<Id, RequestError> {
    Id::parse(raw).map_err(|e| invalid("id", e.into()))
}

/// Identifies a request for idempotency: the same method, path and validated body give
/// the same fingerprint whatever the JSON's spacing or key order.
pub fn fingerprint<T: Serialize>(method: &str, path: &str, request: &T) -> u64 {
    // Serialising these plain request structs cannot fail.
    let body = serde_json::to_vec(request).unwrap_or_default();
    fnv1a(&[method.as_bytes(), path.as_bytes(), &body])
}

/// An `application/problem+json` body (RFC 9457), plus Raft3D's extensions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    /// A URI naming the kind of problem, e.g. `https://raft3d.dev/problems/validation`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The request field the problem is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// On `307` and `503`: the leader, when one is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_url: Option<String>,
    /// On `503`: when to try again, in milliseconds. `Retry-After` says the same in whole
    /// seconds (all HTTP allows), far longer than an election takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

/// `GET /api/v1/cluster`: this node's view of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClusterView {
    /// The cluster this node belongs to (`None`: not joined yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    pub node_id: u64,
    pub role: Role,
    pub leader_id: Option<u64>,
    pub leader_url: Option<String>,
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub commit_index: Option<u64>,
    pub applied_index: Option<u64>,
    pub snapshot_index: Option<u64>,
    pub purged_index: Option<u64>,
    /// Digest of the farm state at `applied_index` (16 hex digits): equal on replicas
    /// that applied the same log.
    pub state_digest: String,
    pub members: Vec<MemberView>,
    /// What an operator must know about how this node runs, e.g. that its peers are not
    /// authenticated (`--insecure`). Empty when all is as it should be.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// A node's part in the cluster, as `GET /api/v1/cluster` reports it.
///
/// Serialised as the variant's name (`"Leader"`, ...), the strings the API has always
/// sent: the Playwright tests and any non-Rust client compare against them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Role {
    Leader,
    Follower,
    Candidate,
    /// Replicated to but not voting: added and not yet promoted, or a wiped member
    /// catching up before it votes again.
    Learner,
    Shutdown,
}

impl Role {
    /// The role's JSON string, for code that reads the cluster view as raw JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Leader => "Leader",
            Self::Follower => "Follower",
            Self::Candidate => "Candidate",
            Self::Learner => "Learner",
            Self::Shutdown => "Shutdown",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One member of the cluster as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberView {
    pub id: u64,
    pub raft_addr: String,
    pub http_url: Option<String>,
    /// Voter (counts for quorum) or learner (replicated to, does not vote).
    pub voter: bool,
    /// Whether the leader's last call to this member succeeded recently; `null` when this
    /// node is not the leader (only the leader talks to every member).
    pub reachable: Option<bool>,
    /// Highest log index known to be replicated to this member (leader only).
    pub matched_index: Option<u64>,
    /// The incarnation of the member's data directory, once the leader has recorded it: a
    /// new one means the node came back with a wiped disk.
    #[serde(default)]
    pub incarnation: Option<String>,
    /// The member came back with a wiped disk and catches up as a learner before it
    /// votes again.
    #[serde(default)]
    pub rejoining: bool,
}

/// `POST /api/v1/cluster/nodes`: add a node (as a learner, then a voter).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AddNodeRequest {
    pub id: u64,
    pub raft_addr: String,
}

// The API's own HTTP headers (standard ones, like `Retry-After` and `Location`, are in the
// `http` crate), in lower case: how HTTP/2 sends them and what `HeaderName::from_static`
// demands.

/// A write's idempotency key: every retry of the same write carries the same key, so it
/// is applied at most once.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
/// From a follower that knows the leader: its node id (on the `307`, and on the `503`
/// while the leader's client URL is not known yet).
pub const LEADER_ID_HEADER: &str = "x-raft3d-leader-id";
/// On a follower's `307`: the leader's client URL (the `Location` is that URL plus the
/// request's path and query).
pub const LEADER_URL_HEADER: &str = "x-raft3d-leader-url";

/// Prefix of every problem `type` URI.
/// The log index an answer reflects (for a write: the index it was applied at). A read
/// with `?min_index=` that value on any node sees at least as much.
pub const INDEX_HEADER: &str = "x-raft3d-index";

pub const PROBLEM_TYPE_BASE: &str = "https://raft3d.dev/problems/";

fn invalid(field: &'static str, problem: FieldProblem) -> RequestError {
    RequestError::Invalid { field, problem }
}

/// A JSON object being taken apart; refuses fields it does not know.
struct Fields(Map<String, Value>);

impl Fields {
    fn parse(body: &[u8], known: &[&str]) -> Result<Self, RequestError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| RequestError::MalformedJson(e.to_string()))?;
        Self::of(value, known)
    }

    fn of(value: Value, known: &[&str]) -> Result<Self, RequestError> {
        let Value::Object(map) = value else {
            return Err(RequestError::NotAnObject);
        };
        if let Some(unknown) = map.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(RequestError::UnknownField(unknown.clone()));
        }
        Ok(Self(map))
    }

    /// Present and not `null`.
    fn present(&self, field: &str) -> bool {
        self.0.get(field).is_some_and(|v| !v.is_null())
    }

    fn take(&mut self, field: &'static str) -> Result<Value, RequestError> {
        match self.0.remove(field) {
            None | Some(Value::Null) => Err(RequestError::Missing { field }),
            Some(value) => Ok(value),
        }
    }

    fn string(&mut self, field: &'static str) -> Result<String, RequestError> {
        match self.take(field)? {
            Value::String(s) => Ok(s),
            _ => Err(wrong_type(field, "a string")),
        }
    }

    fn text(&mut self, field: &'static str) -> Result<Text, RequestError> {
        Text::parse(&self.string(field)?).map_err(|e| invalid(field, e.into()))
    }

    /// Ids may be strings or integers; an integer is taken as its decimal string.
    fn id(&mut self, field: &'static str) -> Result<Id, RequestError> {
        let raw = match self.take(field)? {
            Value::String(s) => s,
            Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
            // `5.0` is an integer to JSON Schema (and Python's `json` writes it so).
            Value::Number(n) => match n.as_f64().and_then(whole_safe_integer) {
                Some(digits) => digits,
                None => return Err(wrong_type(field, "a string or an integer")),
            },
            _ => return Err(wrong_type(field, "a string or an integer")),
        };
        Id::parse(&raw).map_err(|e| invalid(field, e.into()))
    }

    /// `{"type": "PLA", "color": "red"}`.
    fn material(&mut self, field: &'static str) -> Result<Material, RequestError> {
        let value = self.take(field)?;
        if !value.is_object() {
            return Err(wrong_type(field, "an object with type and color"));
        }
        let mut inner = Fields::of(value, &["type", "color"])?;
        let kind = inner
            .string("type")
            .map_err(|_| wrong_type(field, "an object with type and color"))?
            .parse()
            .map_err(|_| invalid(field, FieldProblem::FilamentType))?;
        let color = inner
            .string("color")
            .map_err(|_| wrong_type(field, "an object with type and color"))?;
        let color = Text::parse(&color).map_err(|e| invalid(field, e.into()))?;
        Ok(Material { kind, color })
    }

    /// `true` or `false`; `default` when absent.
    fn flag(&mut self, field: &'static str, default: bool) -> Result<bool, RequestError> {
        match self.take(field) {
            Err(_) => Ok(default),
            Ok(Value::Bool(on)) => Ok(on),
            Ok(_) => Err(wrong_type(field, "true or false")),
        }
    }

    fn optional_id(&mut self, field: &'static str) -> Result<Option<Id>, RequestError> {
        match self.present(field) {
            true => self.id(field).map(Some),
            false => Ok(None),
        }
    }

    /// An integer number of grams; `positive` demands > 0, otherwise >= 0.
    fn weight(&mut self, field: &'static str, positive: bool) -> Result<u64, RequestError> {
        let Value::Number(number) = self.take(field)? else {
            return Err(wrong_type(field, "an integer"));
        };
        let below_zero = || {
            let problem = match positive {
                true => FieldProblem::NotPositive,
                false => FieldProblem::Negative,
            };
            Err(invalid(field, problem))
        };
        let grams = match (number.as_u64(), number.as_i64(), number.as_f64()) {
            (Some(grams), _, _) => grams,
            (None, Some(_negative), _) => return below_zero(),
            // `2.0` is an integer to JSON Schema (and to Python's `json`, which writes it).
            (None, None, Some(f)) if f.fract() == 0.0 => {
                if f < 0.0 {
                    return below_zero();
                }
                if f > MAX_WEIGHT_GRAMS as f64 {
                    return Err(invalid(field, FieldProblem::TooLarge));
                }
                // Whole, and within 0..=MAX_WEIGHT_GRAMS (< 2^53): exact.
                f as u64
            }
            _ => return Err(wrong_type(field, "an integer")),
        };
        if positive && grams == 0 {
            return Err(invalid(field, FieldProblem::NotPositive));
        }
        if grams > MAX_WEIGHT_GRAMS {
            return Err(invalid(field, FieldProblem::TooLarge));
        }
        Ok(grams)
    }
}

/// The decimal digits of a number written with a fraction or an exponent (`5.0`, `1e3`)
/// that is whole. Only up to 2^53 - 1 either way: past that an `f64` no longer says which
/// integer the text was (`-9223372036854775809` parses to `i64::MIN`), and a 64-bit
/// integer written as one is read exactly without coming here.
fn whole_safe_integer(f: f64) -> Option<String> {
    const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;
    match f.fract() == 0.0 && f.abs() <= MAX_SAFE_INTEGER {
        // Whole and below 2^53: the cast is exact.
        true => Some((f as i64).to_string()),
        false => None,
    }
}

fn wrong_type(field: &str, expected: &'static str) -> RequestError {
    RequestError::WrongType {
        field: field.to_owned(),
        expected,
    }
}

#[cfg(test)]
mod tests;
