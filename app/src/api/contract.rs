//! The HTTP API, spelled once: every operation's method, path, who may call it, what it
//! takes and what it answers.
//!
//! The server builds its router and its role checks from [`Endpoint::ALL`];
//! `raft3d-client`, `raft3d ctl` and the dashboard build their URLs with
//! [`Endpoint::url`]; the OpenAPI document (`super::openapi`) is generated from this table
//! and from the body types' own definitions. A route that is not here does not exist.
//!
//! Pure data: no HTTP library, so the browser build carries it as cheaply as the server.

use crate::domain::AccessRole;

/// An HTTP method the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

impl Method {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Delete => "DELETE",
        }
    }

    /// Whether requests with this method only read (they are never proposed).
    pub const fn reads(self) -> bool {
        matches!(self, Self::Get)
    }
}

/// Where a parameter travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamIn {
    Path,
    Query,
    Header,
}

/// What values a parameter takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// An object id (`crate::Id`).
    Id,
    /// A whole number in `min..=max`.
    Integer { min: u64, max: u64 },
    /// One of these words (case-insensitive on input).
    OneOf(&'static [&'static str]),
    /// Text matching this regular expression (ECMA 262, as JSON Schema has it).
    Pattern(&'static str),
}

/// One parameter of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    pub name: &'static str,
    pub located: ParamIn,
    pub required: bool,
    pub kind: ParamKind,
    pub doc: &'static str,
}

const fn query(name: &'static str, kind: ParamKind, doc: &'static str) -> Param {
    Param {
        name,
        located: ParamIn::Query,
        required: false,
        kind,
        doc,
    }
}

const fn header(name: &'static str, pattern: &'static str, doc: &'static str) -> Param {
    Param {
        name,
        located: ParamIn::Header,
        required: false,
        kind: ParamKind::Pattern(pattern),
        doc,
    }
}

/// `*`, or a list of entity tags (`"..."`, `W/"..."`), as `If-Match` and `If-None-Match`
/// take them (empty elements are ignored, RFC 9110).
const ENTITY_TAGS: &str = r#"^\s*(\*|((W/)?"[\x21\x23-\x2b\x2d-\x7e]*")?(\s*,\s*((W/)?"[\x21\x23-\x2b\x2d-\x7e]*")?)*)\s*$"#;
/// A change stream position: `N` or `N.k`.
const POSITION: &str = r"^[0-9]{1,19}(\.[0-9]{1,9})?$";

const fn path_id(doc: &'static str) -> Param {
    Param {
        name: "id",
        located: ParamIn::Path,
        required: true,
        kind: ParamKind::Id,
        doc,
    }
}

/// The shapes of JSON bodies, each a type of `crate::api` or `crate::domain`
/// (`super::openapi` maps each to its type's schema).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    Printer,
    NewPrinter,
    Filament,
    NewFilament,
    PrintJob,
    NewPrintJob,
    Board,
    Cluster,
    AddNode,
    Token,
    NewToken,
    CreatedToken,
    NewConnection,
    PrinterLive,
    File,
    NewCopies,
    QueuePlace,
    LoadSpool,
    /// Raw bytes (`application/octet-stream`): a G-code file.
    Gcode,
    /// The OpenAPI document itself.
    OpenApi,
}

/// What a successful answer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// One JSON object.
    Json(Shape),
    /// A JSON array of objects: a whole list, or one page of it.
    JsonList(Shape),
    /// `text/event-stream`: the change stream.
    EventStream,
    /// `text/plain`.
    Text,
    /// `text/html`.
    Html,
    /// `application/octet-stream`: a stored file's bytes.
    Bytes,
}

/// Who may call an operation on a cluster with tokens (`--insecure` lets everyone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token needed: nothing of the farm is shown.
    Open,
    /// A token of this role or above.
    Role(AccessRole),
}

/// One operation of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    pub method: Method,
    /// The path, with `{name}` for each path parameter (the syntax of both axum and
    /// OpenAPI).
    pub path: &'static str,
    pub summary: &'static str,
    pub description: &'static str,
    pub access: Access,
    pub params: &'static [Param],
    pub body: Option<Shape>,
    /// The status of a successful answer, and what it carries.
    pub success: u16,
    pub answer: Answer,
    /// Every other status the operation may answer with (problems carry a
    /// `application/problem+json` body; `304` and `307` none).
    pub problems: &'static [u16],
}

/// Every operation, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    ListPrinters,
    CreatePrinter,
    GetPrinter,
    ListFilaments,
    CreateFilament,
    GetFilament,
    ListPrintJobs,
    CreatePrintJob,
    GetPrintJob,
    SetJobStatus,
    Events,
    Board,
    Cluster,
    AddNode,
    RemoveNode,
    Backup,
    ListTokens,
    CreateToken,
    RevokeToken,
    ConnectPrinter,
    DisconnectPrinter,
    PrintersLive,
    UploadFile,
    ListFiles,
    GetFile,
    GetFileContent,
    DeleteFile,
    GetQueue,
    QueueCopies,
    PlaceInQueue,
    LoadSpool,
    UnloadSpool,
    ClearBed,
    OpenApi,
    Reference,
    Metrics,
    Healthz,
    Readyz,
}

const LIMIT: Param = query(
    "limit",
    ParamKind::Integer {
        min: 1,
        max: super::MAX_PAGE_LIMIT as u64,
    },
    "Answer one page of at most this many, in id order, with a `Link: <...>; rel=\"next\"` \
     header while more follow. Without it, the whole list.",
);
const AFTER: Param = query(
    "after",
    ParamKind::Id,
    "The cursor: start after this id (the last one of the previous page).",
);
const ORDER: Param = query(
    "order",
    ParamKind::OneOf(&["asc", "desc"]),
    "Id order (`asc`, the default) or newest first (`desc`).",
);
const CONSISTENCY: Param = query(
    "consistency",
    ParamKind::OneOf(&["linearizable", "stale"]),
    "`linearizable` (the default; `strong` is the same) confirms with the leader that the \
     answer is current; `stale` answers from what this node has applied.",
);
const MIN_INDEX: Param = query(
    "min_index",
    ParamKind::Integer {
        min: 0,
        max: u64::MAX,
    },
    "Answer once this node has applied this log index (at most `--write-timeout-ms`, then \
     `503 index-not-reached`; on the leader, an index past the end of its log is `422 \
     index-in-future` at once). Alone it makes the read stale: read-your-writes without a \
     leader round trip.",
);
const IF_NONE_MATCH: Param = header(
    "If-None-Match",
    ENTITY_TAGS,
    "An `ETag` from an earlier answer: `304 Not Modified` while it still holds.",
);
const IDEMPOTENCY_KEY: Param = header(
    "Idempotency-Key",
    r"^[\x21-\x7e]{1,255}$",
    "The same key on every retry of one write (1-255 visible ASCII characters) makes it \
     apply at most once; a retry answers what the first attempt did.",
);
/// What `status` takes: [`JobStatus::as_str`](crate::JobStatus::as_str) of each status
/// (a test holds the two together).
const JOB_STATUSES: &[&str] = &["Queued", "Running", "Done", "Canceled"];
const STATUS_FILTER: Param = query(
    "status",
    ParamKind::OneOf(JOB_STATUSES),
    "Only jobs in this status.",
);
const PRINTER_FILTER: Param = query("printer_id", ParamKind::Id, "Only jobs of this printer.");
const FILAMENT_FILTER: Param = query(
    "filament_id",
    ParamKind::Id,
    "Only jobs printing from this spool.",
);

const LIST_PARAMS: &[Param] = &[LIMIT, AFTER, ORDER, CONSISTENCY, MIN_INDEX, IF_NONE_MATCH];
const JOB_LIST_PARAMS: &[Param] = &[
    LIMIT,
    AFTER,
    ORDER,
    STATUS_FILTER,
    PRINTER_FILTER,
    FILAMENT_FILTER,
    CONSISTENCY,
    MIN_INDEX,
    IF_NONE_MATCH,
];
const OBJECT_PARAMS: &[Param] = &[
    path_id("The object's id."),
    CONSISTENCY,
    MIN_INDEX,
    IF_NONE_MATCH,
];

const SET_STATUS_PARAMS: &[Param] = &[
    path_id("The job's id."),
    Param {
        name: "status",
        located: ParamIn::Query,
        required: true,
        kind: ParamKind::OneOf(JOB_STATUSES),
        doc: "The status to move to (case-insensitive; `cancelled` too).",
    },
    header(
        "If-Match",
        ENTITY_TAGS,
        "ETags of the job as last read; `*` asks only that it exists.",
    ),
    IDEMPOTENCY_KEY,
];
const EVENT_PARAMS: &[Param] = &[
    query(
        "after",
        ParamKind::Pattern(POSITION),
        "Resume after this position (`N` or `N.k`).",
    ),
    header(
        "Last-Event-ID",
        POSITION,
        "Resume after this position (wins over `after`).",
    ),
];
const BOARD_PARAMS: &[Param] = &[
    query(
        "limit",
        ParamKind::Integer {
            min: 1,
            max: super::MAX_PAGE_LIMIT as u64,
        },
        "Jobs per column (50 unless asked).",
    ),
    PRINTER_FILTER,
    FILAMENT_FILTER,
    CONSISTENCY,
    MIN_INDEX,
    IF_NONE_MATCH,
];
const REVOKE_PARAMS: &[Param] = &[path_id("The token's id."), IDEMPOTENCY_KEY];
const CONNECTION_PARAMS: &[Param] = &[path_id("The printer's id."), IDEMPOTENCY_KEY];
const UPLOAD_PARAMS: &[Param] = &[
    Param {
        name: "name",
        located: ParamIn::Query,
        required: true,
        kind: ParamKind::Pattern(r"^\s*[^\x00-\x1f\x7f]{1,255}\s*$"),
        doc: "The file's name, as people will see it (`benchy.gcode`).",
    },
    query(
        "id",
        ParamKind::Id,
        "The file's id; the cluster makes one when not given.",
    ),
];
const FILE_PARAMS: &[Param] = &[path_id("The file's id."), IDEMPOTENCY_KEY];
const QUEUE_PARAMS: &[Param] = &[
    query(
        "limit",
        ParamKind::Integer {
            min: 1,
            max: super::MAX_PAGE_LIMIT as u64,
        },
        "Answer one page of at most this many, in queue order, with a \
         `Link: <...>; rel=\"next\"` header while more follow. Without it, the whole queue.",
    ),
    query(
        "after",
        ParamKind::Id,
        "The cursor: start after this job (the last one of the previous page).",
    ),
    query(
        "order",
        ParamKind::OneOf(&["asc", "desc"]),
        "Next to print first (`asc`, the default) or last first (`desc`).",
    ),
    CONSISTENCY,
    MIN_INDEX,
    IF_NONE_MATCH,
];
const PLACE_PARAMS: &[Param] = &[path_id("The queued job's id."), IDEMPOTENCY_KEY];
const CONTENT_PARAMS: &[Param] = &[path_id("The file's id.")];

// Statuses, grouped by what brings them.
/// A read of the farm: bad query, no token, wrong role, wrong host, a `min_index` past
/// the end of the log (`422`), no leader or index not reached (`503`).
const READ_PROBLEMS: &[u16] = &[304, 400, 401, 403, 421, 422, 503];
const OBJECT_PROBLEMS: &[u16] = &[304, 400, 401, 403, 404, 421, 422, 503];
/// A write: also redirects to the leader, bodies too large or not JSON, idempotency
/// conflicts.
const WRITE_PROBLEMS: &[u16] = &[307, 400, 401, 403, 409, 413, 415, 421, 422, 503];
const CHANGE_PROBLEMS: &[u16] = &[307, 400, 401, 403, 404, 409, 412, 421, 422, 503];
const OPEN_PROBLEMS: &[u16] = &[421];
/// An upload: a write, plus a majority of the voters not storing it in time (`503`).
const UPLOAD_PROBLEMS: &[u16] = &[307, 400, 401, 403, 409, 413, 415, 421, 422, 503];

const VIEWER: Access = Access::Role(AccessRole::Viewer);
const OPERATOR: Access = Access::Role(AccessRole::Operator);
const ADMIN: Access = Access::Role(AccessRole::Admin);

impl Endpoint {
    pub const ALL: [Endpoint; 38] = [
        Self::ListPrinters,
        Self::CreatePrinter,
        Self::GetPrinter,
        Self::ListFilaments,
        Self::CreateFilament,
        Self::GetFilament,
        Self::ListPrintJobs,
        Self::CreatePrintJob,
        Self::GetPrintJob,
        Self::SetJobStatus,
        Self::Events,
        Self::Board,
        Self::Cluster,
        Self::AddNode,
        Self::RemoveNode,
        Self::Backup,
        Self::ListTokens,
        Self::CreateToken,
        Self::RevokeToken,
        Self::ConnectPrinter,
        Self::DisconnectPrinter,
        Self::PrintersLive,
        Self::UploadFile,
        Self::ListFiles,
        Self::GetFile,
        Self::GetFileContent,
        Self::DeleteFile,
        Self::GetQueue,
        Self::QueueCopies,
        Self::PlaceInQueue,
        Self::LoadSpool,
        Self::UnloadSpool,
        Self::ClearBed,
        Self::OpenApi,
        Self::Reference,
        Self::Metrics,
        Self::Healthz,
        Self::Readyz,
    ];

    /// The operation's name in the OpenAPI document (`operationId`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::ListPrinters => "listPrinters",
            Self::CreatePrinter => "createPrinter",
            Self::GetPrinter => "getPrinter",
            Self::ListFilaments => "listFilaments",
            Self::CreateFilament => "createFilament",
            Self::GetFilament => "getFilament",
            Self::ListPrintJobs => "listPrintJobs",
            Self::CreatePrintJob => "createPrintJob",
            Self::GetPrintJob => "getPrintJob",
            Self::SetJobStatus => "setJobStatus",
            Self::Events => "followEvents",
            Self::Board => "getBoard",
            Self::Cluster => "getCluster",
            Self::AddNode => "addNode",
            Self::RemoveNode => "removeNode",
            Self::Backup => "getBackup",
            Self::ListTokens => "listTokens",
            Self::CreateToken => "createToken",
            Self::RevokeToken => "revokeToken",
            Self::ConnectPrinter => "connectPrinter",
            Self::DisconnectPrinter => "disconnectPrinter",
            Self::PrintersLive => "getPrintersLive",
            Self::UploadFile => "uploadFile",
            Self::ListFiles => "listFiles",
            Self::GetFile => "getFile",
            Self::GetFileContent => "getFileContent",
            Self::DeleteFile => "deleteFile",
            Self::GetQueue => "getQueue",
            Self::QueueCopies => "queueCopies",
            Self::PlaceInQueue => "placeInQueue",
            Self::LoadSpool => "loadSpool",
            Self::UnloadSpool => "unloadSpool",
            Self::ClearBed => "clearBed",
            Self::OpenApi => "getOpenApi",
            Self::Reference => "getReference",
            Self::Metrics => "getMetrics",
            Self::Healthz => "getHealth",
            Self::Readyz => "getReadiness",
        }
    }

    pub const fn operation(self) -> Operation {
        match self {
            Self::ListPrinters => list(
                "/api/v1/printers",
                "List printers",
                LIST_PARAMS,
                Shape::Printer,
            ),
            Self::CreatePrinter => create(
                "/api/v1/printers",
                "Add a printer",
                Shape::NewPrinter,
                Shape::Printer,
            ),
            Self::GetPrinter => get("/api/v1/printers/{id}", "Get a printer", Shape::Printer),
            Self::ListFilaments => list(
                "/api/v1/filaments",
                "List filament spools, with what their jobs reserve",
                LIST_PARAMS,
                Shape::Filament,
            ),
            Self::CreateFilament => create(
                "/api/v1/filaments",
                "Add a filament spool",
                Shape::NewFilament,
                Shape::Filament,
            ),
            Self::GetFilament => get(
                "/api/v1/filaments/{id}",
                "Get a filament spool",
                Shape::Filament,
            ),
            Self::ListPrintJobs => list(
                "/api/v1/print_jobs",
                "List print jobs, filtered by status, printer and spool",
                JOB_LIST_PARAMS,
                Shape::PrintJob,
            ),
            Self::CreatePrintJob => create(
                "/api/v1/print_jobs",
                "Queue a print job (it reserves its weight on its spool)",
                Shape::NewPrintJob,
                Shape::PrintJob,
            ),
            Self::GetPrintJob => get(
                "/api/v1/print_jobs/{id}",
                "Get a print job",
                Shape::PrintJob,
            ),
            Self::SetJobStatus => Operation {
                method: Method::Post,
                path: "/api/v1/print_jobs/{id}/status",
                summary: "Move a print job: Queued → Running → Done, or Canceled",
                description: "With `If-Match: <ETag of the job>` the move is refused \
                    (`412`) if the job changed since it was read, so two operators \
                    cannot overwrite each other. Done deducts the job's weight from its \
                    spool; Canceled releases it.",
                access: OPERATOR,
                params: SET_STATUS_PARAMS,
                body: None,
                success: 200,
                answer: Answer::Json(Shape::PrintJob),
                problems: CHANGE_PROBLEMS,
            },
            Self::Events => Operation {
                method: Method::Get,
                path: "/api/v1/events",
                summary: "Follow the farm's changes (Server-Sent Events)",
                description: "One event per committed change: `id:` is its position (the \
                    log index of its entry, `N.k` for the k-th change of one entry), \
                    `event:` its kind (`printer.created`, `filament.created`, \
                    `filament.updated`, `job.created`, `job.status`) and `data:` the \
                    object after the change, as JSON. Resume with `Last-Event-ID` or \
                    `?after=`; a position this node no longer holds gets a `reset` event \
                    (re-read the lists). Heartbeat comments while idle; a subscriber that \
                    stops reading is cut off.",
                access: VIEWER,
                params: EVENT_PARAMS,
                body: None,
                success: 200,
                answer: Answer::EventStream,
                problems: &[400, 401, 403, 421, 422],
            },
            Self::Board => Operation {
                method: Method::Get,
                path: "/api/v1/board",
                summary: "The job board: printers, spools and the first jobs of each column",
                description: "Read at one log index: every printer and spool, the first \
                    `limit` jobs of each status (Queued in queue order, Running oldest \
                    first, Done and Canceled newest first) and how many each column holds. Bounded \
                    whatever the farm holds.",
                access: VIEWER,
                params: BOARD_PARAMS,
                body: None,
                success: 200,
                answer: Answer::Json(Shape::Board),
                problems: READ_PROBLEMS,
            },
            Self::Cluster => Operation {
                method: Method::Get,
                path: "/api/v1/cluster",
                summary: "The cluster as this node sees it",
                description: "Roles, terms, log indexes, members and their client URLs: \
                    what a client needs to find the leader. Open: it holds no farm data.",
                access: Access::Open,
                params: &[],
                body: None,
                success: 200,
                answer: Answer::Json(Shape::Cluster),
                problems: OPEN_PROBLEMS,
            },
            Self::AddNode => Operation {
                method: Method::Post,
                path: "/api/v1/cluster/nodes",
                summary: "Add a node: a learner first, then a voter",
                description: "Answers once the node has caught up and votes.",
                access: ADMIN,
                params: &[],
                body: Some(Shape::AddNode),
                success: 200,
                answer: Answer::Json(Shape::Cluster),
                problems: WRITE_PROBLEMS,
            },
            Self::RemoveNode => Operation {
                method: Method::Delete,
                path: "/api/v1/cluster/nodes/{id}",
                summary: "Remove a node from the cluster",
                description: "",
                access: ADMIN,
                params: &[Param {
                    name: "id",
                    located: ParamIn::Path,
                    required: true,
                    kind: ParamKind::Integer {
                        min: 1,
                        max: u64::MAX,
                    },
                    doc: "The node's id.",
                }],
                body: None,
                success: 200,
                answer: Answer::Json(Shape::Cluster),
                problems: &[307, 400, 401, 403, 404, 409, 421, 422, 503],
            },
            Self::Backup => Operation {
                method: Method::Get,
                path: "/api/v1/backup",
                summary: "A backup of the farm (for `raft3d restore`)",
                description: "The farm at one log index of the node asked (writes go on \
                    meanwhile) and every stored file's bytes, streamed, with a checksum: \
                    the format is in docs/operations.md. An answer cut short lacks its end \
                    line, and `raft3d restore` refuses it.",
                access: ADMIN,
                params: &[],
                body: None,
                success: 200,
                answer: Answer::Bytes,
                problems: &[401, 403, 421, 503],
            },
            Self::ListTokens => Operation {
                method: Method::Get,
                path: "/api/v1/tokens",
                summary: "List API tokens (never their secrets)",
                description: "Revoked tokens stay listed, with `revoked_ms`.",
                access: ADMIN,
                params: &[CONSISTENCY, MIN_INDEX, IF_NONE_MATCH],
                body: None,
                success: 200,
                answer: Answer::JsonList(Shape::Token),
                problems: READ_PROBLEMS,
            },
            Self::CreateToken => Operation {
                access: ADMIN,
                ..create(
                    "/api/v1/tokens",
                    "Make an API token; its secret is in this answer only",
                    Shape::NewToken,
                    Shape::CreatedToken,
                )
            },
            Self::RevokeToken => Operation {
                method: Method::Delete,
                path: "/api/v1/tokens/{id}",
                summary: "Revoke an API token",
                description: "`bootstrap` revokes the admin token of `raft3d init`.",
                access: ADMIN,
                params: REVOKE_PARAMS,
                body: None,
                success: 200,
                answer: Answer::Json(Shape::Token),
                problems: CHANGE_PROBLEMS,
            },
            Self::ConnectPrinter => Operation {
                method: Method::Put,
                path: "/api/v1/printers/{id}/connection",
                summary: "Connect a printer to its host (OctoPrint or Moonraker)",
                description: "The leader then drives it: it reports the host's state, \
                    sends the printer its oldest queued job of a stored file when idle \
                    (unless `auto_dispatch` is false) and ends jobs on the printer's word. \
                    The API key is sealed with the cluster secret and never shown again \
                    (`api_key_set`). Replaces any connection the printer had.",
                access: OPERATOR,
                params: CONNECTION_PARAMS,
                body: Some(Shape::NewConnection),
                success: 200,
                answer: Answer::Json(Shape::Printer),
                problems: CHANGE_PROBLEMS,
            },
            Self::DisconnectPrinter => Operation {
                method: Method::Delete,
                path: "/api/v1/printers/{id}/connection",
                summary: "Disconnect a printer: its jobs move by hand again",
                description: "A print under way on the printer goes on; its job stays \
                    Running until moved by hand.",
                access: OPERATOR,
                params: CONNECTION_PARAMS,
                body: None,
                success: 200,
                answer: Answer::Json(Shape::Printer),
                problems: CHANGE_PROBLEMS,
            },
            Self::PrintersLive => Operation {
                method: Method::Get,
                path: "/api/v1/telemetry",
                summary: "What the connected printers report right now: progress, time left, temperatures",
                description: "Observed by the leader's drivers about once a second and relayed \
                    by every node (a second or two behind on a follower). Not part of the \
                    log: a list of the printers whose host answered lately, empty while no \
                    leader drives them.",
                access: VIEWER,
                params: &[],
                body: None,
                success: 200,
                answer: Answer::JsonList(Shape::PrinterLive),
                problems: &[401, 403, 421],
            },
            Self::UploadFile => Operation {
                method: Method::Post,
                path: "/api/v1/files",
                summary: "Store a G-code file (the raw bytes as the body)",
                description: "Answers once a majority of the voters hold the file on disk, \
                    checked by its SHA-256: it survives the loss of any minority. The \
                    slicer's comments give its filament and time (PrusaSlicer, SuperSlicer, \
                    OrcaSlicer, Bambu Studio, Cura, Simplify3D). Empty, binary or larger \
                    than `--max-upload-mib` (512) files are refused.",
                access: OPERATOR,
                params: UPLOAD_PARAMS,
                body: Some(Shape::Gcode),
                success: 201,
                answer: Answer::Json(Shape::File),
                problems: UPLOAD_PROBLEMS,
            },
            Self::ListFiles => list(
                "/api/v1/files",
                "List stored G-code files",
                LIST_PARAMS,
                Shape::File,
            ),
            Self::GetFile => get(
                "/api/v1/files/{id}",
                "Get a stored file's metadata",
                Shape::File,
            ),
            Self::GetFileContent => Operation {
                params: CONTENT_PARAMS,
                answer: Answer::Bytes,
                problems: &[400, 401, 403, 404, 421, 422, 503],
                ..get(
                    "/api/v1/files/{id}/content",
                    "Download a stored file (from any node)",
                    Shape::File,
                )
            },
            Self::DeleteFile => Operation {
                method: Method::Delete,
                path: "/api/v1/files/{id}",
                summary: "Delete a stored file",
                description: "Refused (`409`) while a queued or running job prints it.",
                access: OPERATOR,
                params: FILE_PARAMS,
                body: None,
                success: 200,
                answer: Answer::Json(Shape::File),
                problems: CHANGE_PROBLEMS,
            },
            Self::GetQueue => Operation {
                description: "Every queued job, sent to a printer or waiting: a printer \
                    that is idle, connected and has a clear bed takes the first waiting job \
                    it fits (its printer if the job names one; its loaded spool is the \
                    job's spool, or of the job's material and colour with the grams left).",
                ..list(
                    "/api/v1/queue",
                    "The farm queue, in the order printers take it",
                    QUEUE_PARAMS,
                    Shape::PrintJob,
                )
            },
            Self::QueueCopies => Operation {
                answer: Answer::JsonList(Shape::PrintJob),
                description: "All or none: their weights are reserved together on a named \
                    spool. Each copy gets its own id and goes last in the queue, in order.",
                ..create(
                    "/api/v1/queue",
                    "Queue copies of one print",
                    Shape::NewCopies,
                    Shape::PrintJob,
                )
            },
            Self::PlaceInQueue => Operation {
                method: Method::Put,
                path: "/api/v1/queue/{id}",
                summary: "Move a waiting job: first, last, or before or after another",
                description: "Only a queued job not yet sent to a printer (`409` \
                    otherwise).",
                access: OPERATOR,
                params: PLACE_PARAMS,
                body: Some(Shape::QueuePlace),
                success: 200,
                answer: Answer::Json(Shape::PrintJob),
                problems: CHANGE_PROBLEMS,
            },
            Self::LoadSpool => Operation {
                method: Method::Put,
                path: "/api/v1/printers/{id}/spool",
                summary: "Say which spool is on a printer",
                description: "The queue then sends it jobs of that spool, or of its material \
                    and colour. A spool is on one printer at a time (`409` while on \
                    another).",
                access: OPERATOR,
                params: CONNECTION_PARAMS,
                body: Some(Shape::LoadSpool),
                success: 200,
                answer: Answer::Json(Shape::Printer),
                problems: CHANGE_PROBLEMS,
            },
            Self::UnloadSpool => Operation {
                method: Method::Delete,
                path: "/api/v1/printers/{id}/spool",
                summary: "Say the printer has no spool",
                description: "",
                access: OPERATOR,
                params: CONNECTION_PARAMS,
                body: None,
                success: 200,
                answer: Answer::Json(Shape::Printer),
                problems: CHANGE_PROBLEMS,
            },
            Self::ClearBed => Operation {
                method: Method::Post,
                path: "/api/v1/printers/{id}/clear",
                summary: "Confirm a printer's bed is clear: it may take its next job",
                description: "A printer waits (`awaiting_clear`) after every job it was \
                    sent, unless its connection says it clears itself.",
                access: OPERATOR,
                params: CONNECTION_PARAMS,
                body: None,
                success: 200,
                answer: Answer::Json(Shape::Printer),
                problems: CHANGE_PROBLEMS,
            },
            Self::OpenApi => open(
                "/api/v1/openapi.json",
                "This document",
                Answer::Json(Shape::OpenApi),
            ),
            Self::Reference => open(
                "/api/v1/reference",
                "This document as a page to read",
                Answer::Html,
            ),
            Self::Metrics => open(
                "/metrics",
                "Prometheus metrics (counters and latencies, no farm data)",
                Answer::Text,
            ),
            Self::Healthz => open("/healthz", "The process is up", Answer::Text),
            Self::Readyz => Operation {
                problems: &[421, 503],
                ..open(
                    "/readyz",
                    "A member of a cluster with a leader, its Raft core running",
                    Answer::Text,
                )
            },
        }
    }

    /// The operation answering `method` on `path` (a request path, e.g.
    /// `/api/v1/printers/p1`), if any.
    pub fn find(method: Method, path: &str) -> Option<Endpoint> {
        Self::ALL.into_iter().find(|e| {
            let op = e.operation();
            op.method == method && path_matches(op.path, path)
        })
    }

    /// The operations on `path`, whatever their method.
    pub fn on_path(path: &str) -> impl Iterator<Item = Endpoint> + '_ {
        Self::ALL
            .into_iter()
            .filter(move |e| path_matches(e.operation().path, path))
    }

    /// The operation's path with its parameters filled in, in order (each escaped as a
    /// path segment).
    pub fn url(self, segments: &[&str]) -> String {
        let mut segments = segments.iter();
        self.operation()
            .path
            .split('/')
            .map(|part| match part.starts_with('{') {
                true => path_segment(segments.next().copied().unwrap_or_default()),
                false => part.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("/")
    }
}

const fn list(
    path: &'static str,
    summary: &'static str,
    params: &'static [Param],
    item: Shape,
) -> Operation {
    Operation {
        method: Method::Get,
        path,
        summary,
        description: "",
        access: VIEWER,
        params,
        body: None,
        success: 200,
        answer: Answer::JsonList(item),
        problems: READ_PROBLEMS,
    }
}

const fn get(path: &'static str, summary: &'static str, shape: Shape) -> Operation {
    Operation {
        method: Method::Get,
        path,
        summary,
        description: "",
        access: VIEWER,
        params: OBJECT_PARAMS,
        body: None,
        success: 200,
        answer: Answer::Json(shape),
        problems: OBJECT_PROBLEMS,
    }
}

const fn create(path: &'static str, summary: &'static str, body: Shape, made: Shape) -> Operation {
    Operation {
        method: Method::Post,
        path,
        summary,
        description: "On a follower: `307` to the leader.",
        access: OPERATOR,
        params: &[IDEMPOTENCY_KEY],
        body: Some(body),
        success: 201,
        answer: Answer::Json(made),
        problems: WRITE_PROBLEMS,
    }
}

const fn open(path: &'static str, summary: &'static str, answer: Answer) -> Operation {
    Operation {
        method: Method::Get,
        path,
        summary,
        description: "",
        access: Access::Open,
        params: &[],
        body: None,
        success: 200,
        answer,
        problems: OPEN_PROBLEMS,
    }
}

/// Whether a request path fits a template: the same segments, `{...}` fitting any
/// non-empty one.
fn path_matches(template: &str, path: &str) -> bool {
    let mut want = template.split('/');
    let mut have = path.split('/');
    loop {
        match (want.next(), have.next()) {
            (None, None) => return true,
            (Some(w), Some(h)) if w.starts_with('{') => {
                if h.is_empty() {
                    return false;
                }
            }
            (Some(w), Some(h)) if w == h => {}
            _ => return false,
        }
    }
}

/// Percent-encodes `raw` as one URL path segment. Server-made ids need no escaping, but
/// an id typed by a person may hold anything.
pub fn path_segment(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte))
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_operation_has_one_method_and_path_and_a_unique_name() {
        let mut routes = HashSet::new();
        let mut names = HashSet::new();
        for endpoint in Endpoint::ALL {
            let op = endpoint.operation();
            assert!(routes.insert((op.method, op.path)), "{} twice", op.path);
            assert!(names.insert(endpoint.name()));
            assert_eq!(Endpoint::find(op.method, op.path), Some(endpoint));
            assert!(!op.problems.contains(&op.success));
            let path_params = op.params.iter().filter(|p| p.located == ParamIn::Path);
            let placeholders = op.path.matches('{').count();
            assert_eq!(path_params.count(), placeholders, "{}", op.path);
        }
    }

    #[test]
    fn requests_find_their_operation() {
        let find = |m, p| Endpoint::find(m, p);
        assert_eq!(
            find(Method::Get, "/api/v1/printers/p-1"),
            Some(Endpoint::GetPrinter)
        );
        assert_eq!(
            find(Method::Post, "/api/v1/print_jobs/j/status"),
            Some(Endpoint::SetJobStatus)
        );
        assert_eq!(find(Method::Get, "/api/v1/printers/"), None);
        assert_eq!(find(Method::Get, "/api/v1/printers/a/b"), None);
        assert_eq!(find(Method::Delete, "/api/v1/printers"), None);
        assert_eq!(
            Endpoint::on_path("/api/v1/tokens").collect::<Vec<_>>(),
            [Endpoint::ListTokens, Endpoint::CreateToken]
        );
    }

    #[test]
    fn the_status_words_are_the_statuses() {
        let words: Vec<&str> = crate::JobStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(JOB_STATUSES, words);
    }

    #[test]
    fn urls_fill_and_escape_their_segments() {
        assert_eq!(
            Endpoint::SetJobStatus.url(&["j 1/x"]),
            "/api/v1/print_jobs/j%201%2Fx/status"
        );
        assert_eq!(Endpoint::ListPrinters.url(&[]), "/api/v1/printers");
        assert_eq!(path_segment("a-Z_0.~"), "a-Z_0.~");
        assert_eq!(path_segment("é"), "%C3%A9");
    }
}
