//! `raft3d ctl`: the farm and the cluster from a terminal or a script, through
//! [`raft3d_client`] (so it follows the leader and retries like any careful client).
//!
//! Output is a plain table for people, or the API's JSON with `--json` for scripts. The
//! exit status tells a script what happened ([`ExitStatus`]), so that `set -e` and
//! `case $?` work without parsing messages.
//!
//! Must not touch node internals: it is an HTTP client and nothing else.

use app::api::{ClusterView, Endpoint};
use app::{AccessRole, Filament, JobStatus, PrintJob, Printer, TokenView};
use clap::{Args, Subcommand};
use raft3d_client::{
    Client, ClientError, GcodeFile, ListQuery, MaterialBody, NewConnectionBody, NewCopiesBody,
    NewFilamentBody, NewPrintJobBody, NewPrinterBody, PrinterLive, QueuePlaceBody, RetryPolicy,
};
use raft3d_launcher::leader;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

/// Flags of every `raft3d ctl` command.
#[derive(Debug, Clone, Args)]
pub struct CtlArgs {
    /// Client URL(s) of members of the cluster, comma-separated; one that answers is enough.
    #[arg(
        long,
        env = "RAFT3D_CLUSTER",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:8081,http://127.0.0.1:8082,http://127.0.0.1:8083",
        global = true
    )]
    pub cluster: Vec<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// Give up (exit 4) if the cluster has not answered within this many seconds.
    #[arg(long, default_value_t = 30, global = true)]
    pub timeout_secs: u64,
    /// The Idempotency-Key of a write: to retry a write whose outcome was unknown (exit
    /// 4), run the same command with the key it printed. Default: a fresh one.
    #[arg(long, global = true)]
    pub idempotency_key: Option<String>,
    #[command(flatten)]
    pub credentials: Credentials,
    #[command(subcommand)]
    pub command: CtlCommand,
}

/// How a command reaches the cluster: the API token it sends (`Authorization: Bearer`)
/// and the CA it trusts for `https://` members.
#[derive(Debug, Clone, Args)]
pub struct Credentials {
    /// API token. Prefer --token-file or the environment: a command line is visible to
    /// every user of the machine.
    #[arg(long, env = "RAFT3D_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// File holding the API token, e.g. `raft3d init`'s `admin.token`.
    #[arg(
        long,
        env = "RAFT3D_TOKEN_FILE",
        global = true,
        conflicts_with = "token"
    )]
    pub token_file: Option<std::path::PathBuf>,
    /// CA certificate(s) to trust for `https://` members, e.g. `raft3d init`'s `ca.pem`.
    #[arg(long, env = "RAFT3D_CA_FILE", global = true, value_name = "FILE")]
    pub ca_file: Option<std::path::PathBuf>,
}

impl Credentials {
    /// A client of `urls` with `policy`, sending the token and trusting the CA given.
    pub fn client<U: Into<String>>(
        &self,
        urls: impl IntoIterator<Item = U>,
        policy: RetryPolicy,
    ) -> Result<Client, ClientError> {
        let client = Client::with_policy(urls, policy)?.with_token(self.token()?);
        match &self.ca_file {
            None => Ok(client),
            Some(path) => client.with_ca_pem(&read(path)?),
        }
    }

    /// The token to send, if any.
    fn token(&self) -> Result<Option<String>, ClientError> {
        match (&self.token, &self.token_file) {
            (Some(token), _) => Ok(Some(token.trim().to_owned())),
            (None, Some(path)) => {
                let token = String::from_utf8_lossy(&read(path)?).trim().to_owned();
                Ok(Some(token))
            }
            (None, None) => Ok(None),
        }
    }
}

#[derive(Debug, Clone, Subcommand)]
pub enum CtlCommand {
    /// Printers: list, show, create.
    #[command(subcommand)]
    Printers(PrinterCommand),
    /// Filament spools: list, show, create.
    #[command(subcommand, alias = "filaments")]
    Spools(SpoolCommand),
    /// Print jobs: list, show, create, start, finish, cancel.
    #[command(subcommand)]
    Jobs(JobCommand),
    /// Stored G-code files: list, upload.
    #[command(subcommand)]
    Files(FileCommand),
    /// The farm queue: list it in order, queue copies, move a waiting job.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// The cluster: status, add and remove nodes.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// API tokens (admin): list, create, revoke.
    #[command(subcommand)]
    Tokens(TokenCommand),
}

#[derive(Debug, Clone, Subcommand)]
pub enum TokenCommand {
    List,
    /// Make a token; its secret is printed this once.
    Create {
        /// Who or what holds it, e.g. "front desk tablet".
        #[arg(long)]
        name: String,
        /// viewer (reads), operator (farm writes) or admin (membership, tokens).
        #[arg(long)]
        role: String,
    },
    Revoke {
        id: String,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum PrinterCommand {
    List,
    Show {
        id: String,
    },
    Create {
        #[arg(long)]
        company: String,
        #[arg(long)]
        model: String,
        /// Default: the cluster picks one.
        #[arg(long)]
        id: Option<String>,
    },
    /// Connect a printer to its host: the leader then drives it.
    Connect {
        id: String,
        /// octoprint or moonraker.
        #[arg(long, default_value = "octoprint")]
        kind: String,
        /// The host's base URL, e.g. `http://octopi.local`.
        #[arg(long)]
        url: String,
        /// A file holding the host's API key (kept out of the shell's history).
        #[arg(long, value_name = "FILE")]
        api_key_file: Option<PathBuf>,
        /// Do not give the printer queued jobs by itself.
        #[arg(long)]
        no_auto_dispatch: bool,
        /// The printer clears its own bed: it takes its next job without waiting for a
        /// person to confirm the bed is clear.
        #[arg(long)]
        self_clearing: bool,
    },
    /// Say which spool is on a printer (the queue sends it jobs of that spool or its
    /// material and colour).
    Load {
        id: String,
        #[arg(long)]
        spool: String,
    },
    /// Say a printer has no spool.
    Unload {
        id: String,
    },
    /// Confirm a printer's bed is clear after a print: it may take its next job.
    Clear {
        id: String,
    },
    /// Disconnect a printer: its jobs move by hand again.
    Disconnect {
        id: String,
    },
    /// What the connected printers report now: state, job, progress, temperatures.
    Live,
}

#[derive(Debug, Clone, Subcommand)]
pub enum FileCommand {
    List,
    /// Store a G-code file (its slicer's grams and time are read from it).
    Upload {
        path: PathBuf,
        /// The name people see; default: the file's own name.
        #[arg(long)]
        name: Option<String>,
    },
}

/// What a new job prints with and where, as flags (`jobs create`, `queue add`).
#[derive(Debug, Clone, Args)]
pub struct JobTarget {
    /// The printer; default: any printer that fits (needs --file-id).
    #[arg(long)]
    printer: Option<String>,
    /// The spool (its grams are reserved now).
    #[arg(
        long,
        required_unless_present = "material",
        conflicts_with = "material"
    )]
    spool: Option<String>,
    /// Instead of --spool: any spool of this material (PLA, PETG, ABS, TPU) and --color,
    /// loaded on the printer that takes the job (needs --file-id).
    #[arg(long, requires = "color")]
    material: Option<String>,
    #[arg(long, requires = "material")]
    color: Option<String>,
}

impl JobTarget {
    fn body(&self, file_id: Option<&str>) -> NewPrintJobBody {
        NewPrintJobBody {
            printer_id: self.printer.clone(),
            filament_id: self.spool.clone(),
            material: self.material.as_ref().map(|kind| MaterialBody {
                kind: kind.clone(),
                color: self.color.clone().unwrap_or_default(),
            }),
            file_id: file_id.map(str::to_owned),
            ..NewPrintJobBody::for_queue("")
        }
    }
}

#[derive(Debug, Clone, Subcommand)]
pub enum QueueCommand {
    /// The queued jobs in the order printers take them.
    List,
    /// Queue copies of one stored file.
    Add {
        #[arg(long)]
        file_id: String,
        #[command(flatten)]
        target: JobTarget,
        /// Grams per copy; default: the file's own.
        #[arg(long)]
        grams: Option<u64>,
        /// How many copies (1-100).
        #[arg(long, default_value_t = 1)]
        copies: u32,
    },
    /// Move a waiting job: --first, --last, --before J or --after J.
    #[command(group = clap::ArgGroup::new("place").required(true).multiple(false))]
    Move {
        id: String,
        #[arg(long, group = "place")]
        first: bool,
        #[arg(long, group = "place")]
        last: bool,
        #[arg(long, group = "place")]
        before: Option<String>,
        #[arg(long, group = "place")]
        after: Option<String>,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum SpoolCommand {
    List,
    Show {
        id: String,
    },
    Create {
        /// PLA, PETG, ABS or TPU.
        #[arg(long = "type")]
        kind: String,
        #[arg(long)]
        color: String,
        /// Weight of a full spool, in grams.
        #[arg(long)]
        total: u64,
        /// Grams left; default: all of it.
        #[arg(long)]
        remaining: Option<u64>,
        #[arg(long)]
        id: Option<String>,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum JobCommand {
    List {
        /// Only jobs in this status (queued, running, done, canceled).
        #[arg(long)]
        status: Option<JobStatus>,
        /// Only jobs of this printer.
        #[arg(long)]
        printer: Option<String>,
        /// Only jobs printing from this spool.
        #[arg(long)]
        spool: Option<String>,
        /// One page of this many (1-1000) instead of every job; the last line says how
        /// to ask for the next page.
        #[arg(long)]
        limit: Option<usize>,
        /// Start after this job id (the last of the previous page).
        #[arg(long, requires = "limit")]
        after: Option<String>,
        /// Newest first.
        #[arg(long)]
        newest_first: bool,
    },
    Show {
        id: String,
    },
    Create {
        #[command(flatten)]
        target: JobTarget,
        /// The G-code file to print (a name only: the job is moved by hand).
        #[arg(long, required_unless_present = "file_id")]
        file: Option<String>,
        /// Filament the print uses, in grams (reserved from the spool while queued);
        /// with --file-id, the file's own grams unless given.
        #[arg(long, required_unless_present = "file_id")]
        grams: Option<u64>,
        /// A stored file (`raft3d ctl files upload`): its printer's driver prints it.
        #[arg(long, conflicts_with = "file")]
        file_id: Option<String>,
        #[arg(long)]
        id: Option<String>,
    },
    /// Queued → Running.
    Start {
        id: String,
    },
    /// Running → Done (the spool's weight goes down).
    Finish {
        id: String,
    },
    /// Queued or Running → Canceled (the reservation is released).
    Cancel {
        id: String,
    },
    /// Any legal move, by status name.
    Move {
        id: String,
        status: JobStatus,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum ClusterCommand {
    /// Every member, its role and progress, as the leader sees them.
    Status,
    /// The elected leader (a node that says it leads, followed by a majority of its
    /// voters in its term, that knows every member's URL), waiting for one if needed.
    Leader {
        /// How long to wait for an election, in seconds.
        #[arg(long, default_value_t = 0)]
        wait_secs: u64,
    },
    /// Add a node (started with `raft3d serve` and no --peers).
    AddNode(AddNodeArgs),
    /// Remove a node.
    RemoveNode {
        #[arg(long)]
        id: u64,
    },
}

/// Flags of adding a node (also `raft3d add-node`).
#[derive(Debug, Clone, Args)]
pub struct AddNodeArgs {
    /// Id of the new node.
    #[arg(long)]
    pub id: u64,
    /// Raft address of the new node, as its peers should dial it.
    #[arg(long)]
    pub raft_addr: String,
}

/// What `raft3d ctl` exits with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Done.
    Success = 0,
    /// The cluster refused (validation, conflict, illegal move): nothing changed.
    Refused = 1,
    /// (clap) The command line is wrong.
    Usage = 2,
    /// No such printer, spool or job.
    NotFound = 3,
    /// No definite answer: a write may or may not have been applied; run the command
    /// again with the printed `--idempotency-key`.
    Unknown = 4,
}

impl ExitStatus {
    fn of(error: &ClientError) -> Self {
        match error.status() {
            Some(404) => Self::NotFound,
            Some(_) => Self::Refused,
            None if matches!(error, ClientError::Invalid(_)) => Self::Usage,
            None => Self::Unknown,
        }
    }
}

/// Runs one `raft3d ctl` command; prints its result on stdout and problems on stderr.
pub async fn run(args: CtlArgs) -> ExitStatus {
    match execute(&args).await {
        Ok(text) => {
            println!("{text}");
            ExitStatus::Success
        }
        Err((error, key)) => {
            eprintln!("raft3d ctl: {error}");
            let status = ExitStatus::of(&error);
            if let (ExitStatus::Unknown, Some(key)) = (status, key) {
                eprintln!(
                    "the write may or may not have been applied; to find out, run the same command with --idempotency-key {key}"
                );
            }
            status
        }
    }
}

type Failure = (ClientError, Option<String>);

fn read(path: &std::path::Path) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path)
        .map_err(|e| ClientError::Invalid(format!("cannot read {}: {e}", path.display())))
}

async fn execute(args: &CtlArgs) -> Result<String, Failure> {
    let policy = RetryPolicy {
        deadline: Duration::from_secs(args.timeout_secs),
        ..RetryPolicy::default()
    };
    let client = args
        .credentials
        .client(&args.cluster, policy)
        .map_err(|e| (e, None))?;
    let ctl = Ctl {
        client,
        json: args.json,
        key: args.idempotency_key.clone(),
    };
    match &args.command {
        CtlCommand::Printers(command) => ctl.printers(command).await,
        CtlCommand::Spools(command) => ctl.spools(command).await,
        CtlCommand::Jobs(command) => ctl.jobs(command).await,
        CtlCommand::Files(command) => ctl.files(command).await,
        CtlCommand::Queue(command) => ctl.queue(command).await,
        CtlCommand::Cluster(command) => ctl.cluster(command).await,
        CtlCommand::Tokens(command) => ctl.tokens(command).await,
    }
}

struct Ctl {
    client: Client,
    json: bool,
    key: Option<String>,
}

impl Ctl {
    async fn printers(&self, command: &PrinterCommand) -> Result<String, Failure> {
        match command {
            PrinterCommand::List => {
                let printers = self.client.printers().await.map_err(read_failure)?;
                self.show(&printers, printer_table)
            }
            PrinterCommand::Show { id } => {
                let printer = self.client.printer(id).await.map_err(read_failure)?;
                self.show_one(printer, printer_table)
            }
            PrinterCommand::Create { company, model, id } => {
                let body = NewPrinterBody {
                    id: id.clone(),
                    company: company.clone(),
                    model: model.clone(),
                };
                let printer: Printer = self.create(Endpoint::CreatePrinter, &body).await?;
                self.show_one(printer, printer_table)
            }
            PrinterCommand::Connect {
                id,
                kind,
                url,
                api_key_file,
                no_auto_dispatch,
                self_clearing,
            } => {
                let api_key = match api_key_file {
                    None => None,
                    Some(path) => {
                        let text = read(path).map_err(read_failure)?;
                        Some(String::from_utf8_lossy(&text).trim().to_owned())
                    }
                };
                let body = NewConnectionBody {
                    kind: kind.clone(),
                    url: url.clone(),
                    api_key,
                    auto_dispatch: Some(!no_auto_dispatch),
                    self_clearing: Some(*self_clearing),
                };
                let call = raft3d_client::Call::to(Endpoint::ConnectPrinter, &[id])
                    .json(&body)
                    .map_err(|e| (e, None))?;
                let printer: Printer = self.write(&self.keyed(call)).await?;
                self.show_one(printer, printer_table)
            }
            PrinterCommand::Disconnect { id } => {
                let call = raft3d_client::Call::to(Endpoint::DisconnectPrinter, &[id]);
                let printer: Printer = self.write(&self.keyed(call)).await?;
                self.show_one(printer, printer_table)
            }
            PrinterCommand::Load { id, spool } => {
                let call = raft3d_client::Call::to(Endpoint::LoadSpool, &[id])
                    .json(&app::api::LoadSpoolBody {
                        filament_id: spool.clone(),
                    })
                    .map_err(|e| (e, None))?;
                let printer: Printer = self.write(&self.keyed(call)).await?;
                self.show_one(printer, printer_table)
            }
            PrinterCommand::Unload { id } => {
                let call = raft3d_client::Call::to(Endpoint::UnloadSpool, &[id]);
                let printer: Printer = self.write(&self.keyed(call)).await?;
                self.show_one(printer, printer_table)
            }
            PrinterCommand::Clear { id } => {
                let call = raft3d_client::Call::to(Endpoint::ClearBed, &[id]);
                let printer: Printer = self.write(&self.keyed(call)).await?;
                self.show_one(printer, printer_table)
            }
            PrinterCommand::Live => {
                let live = self.client.telemetry().await.map_err(read_failure)?;
                self.show(&live, live_table)
            }
        }
    }

    async fn files(&self, command: &FileCommand) -> Result<String, Failure> {
        match command {
            FileCommand::List => {
                let files = self.client.files().await.map_err(read_failure)?;
                self.show(&files, file_table)
            }
            FileCommand::Upload { path, name } => {
                let bytes = read(path).map_err(read_failure)?;
                let name = match name {
                    Some(name) => name.clone(),
                    None => path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| "upload.gcode".to_owned()),
                };
                let file = self
                    .client
                    .upload_file(&name, bytes)
                    .await
                    .map_err(|e| (e, None))?;
                self.show_one(file, file_table)
            }
        }
    }

    async fn queue(&self, command: &QueueCommand) -> Result<String, Failure> {
        match command {
            QueueCommand::List => {
                let queue = self.client.queue().await.map_err(read_failure)?;
                self.show(&queue, job_table)
            }
            QueueCommand::Add {
                file_id,
                target,
                grams,
                copies,
            } => {
                let job = NewPrintJobBody {
                    print_weight_in_grams: *grams,
                    ..target.body(Some(file_id))
                };
                let body = NewCopiesBody::of(job, *copies);
                let jobs: Vec<PrintJob> = self.create(Endpoint::QueueCopies, &body).await?;
                self.show(&jobs, job_table)
            }
            QueueCommand::Move {
                id,
                first,
                last,
                before,
                after,
            } => {
                let place = match (first, last, before, after) {
                    (_, _, Some(job), _) => QueuePlaceBody::before(job),
                    (_, _, _, Some(job)) => QueuePlaceBody::after(job),
                    (_, true, _, _) => QueuePlaceBody::to("last"),
                    _ => QueuePlaceBody::to("first"),
                };
                let call = raft3d_client::Call::to(Endpoint::PlaceInQueue, &[id])
                    .json(&place)
                    .map_err(|e| (e, None))?;
                let job: PrintJob = self.write(&self.keyed(call)).await?;
                self.show_one(job, job_table)
            }
        }
    }

    async fn spools(&self, command: &SpoolCommand) -> Result<String, Failure> {
        match command {
            SpoolCommand::List => {
                let spools = self.client.filaments().await.map_err(read_failure)?;
                self.show(&spools, spool_table)
            }
            SpoolCommand::Show { id } => {
                let spool = self.client.filament(id).await.map_err(read_failure)?;
                self.show_one(spool, spool_table)
            }
            SpoolCommand::Create {
                kind,
                color,
                total,
                remaining,
                id,
            } => {
                let body = NewFilamentBody {
                    id: id.clone(),
                    kind: kind.clone(),
                    color: color.clone(),
                    total_weight_in_grams: *total,
                    remaining_weight_in_grams: *remaining,
                };
                let spool: Filament = self.create(Endpoint::CreateFilament, &body).await?;
                self.show_one(spool, spool_table)
            }
        }
    }

    async fn jobs(&self, command: &JobCommand) -> Result<String, Failure> {
        let (id, status) = match command {
            JobCommand::List {
                status,
                printer,
                spool,
                limit,
                after,
                newest_first,
            } => {
                let query = ListQuery {
                    limit: *limit,
                    after: after.clone(),
                    descending: *newest_first,
                    status: *status,
                    printer_id: printer.clone(),
                    filament_id: spool.clone(),
                    min_index: None,
                };
                let page = self.client.jobs_page(&query).await.map_err(read_failure)?;
                let mut out = self.show(&page.items, job_table)?;
                if let (false, Some(after)) = (self.json, page.next.and_then(|n| n.after)) {
                    out.push_str(&format!("more: --after {after}\n"));
                }
                return Ok(out);
            }
            JobCommand::Show { id } => {
                let job = self.client.job(id).await.map_err(read_failure)?;
                return self.show_one(job, job_table);
            }
            JobCommand::Create {
                target,
                file,
                grams,
                file_id,
                id,
            } => {
                let body = NewPrintJobBody {
                    id: id.clone(),
                    filepath: file.clone(),
                    print_weight_in_grams: *grams,
                    ..target.body(file_id.as_deref())
                };
                let job: PrintJob = self.create(Endpoint::CreatePrintJob, &body).await?;
                return self.show_one(job, job_table);
            }
            JobCommand::Start { id } => (id, JobStatus::Running),
            JobCommand::Finish { id } => (id, JobStatus::Done),
            JobCommand::Cancel { id } => (id, JobStatus::Canceled),
            JobCommand::Move { id, status } => (id, *status),
        };
        let call = raft3d_client::Call::to(Endpoint::SetJobStatus, &[id]);
        let call = self.keyed(call.query("status", status.as_str()));
        let job: PrintJob = self.write(&call).await?;
        self.show_one(job, job_table)
    }

    async fn cluster(&self, command: &ClusterCommand) -> Result<String, Failure> {
        let view = match command {
            ClusterCommand::Leader { wait_secs } => {
                return self.leader(Duration::from_secs(*wait_secs)).await
            }
            ClusterCommand::Status => self.client.cluster().await.map_err(read_failure)?,
            ClusterCommand::AddNode(args) => {
                add_node(&self.client, args).await.map_err(read_failure)?
            }
            ClusterCommand::RemoveNode { id } => {
                self.client.remove_node(*id).await.map_err(read_failure)?
            }
        };
        if self.json {
            return Ok(to_json(&view));
        }
        Ok(cluster_table(&view))
    }

    /// Polls every member's own view (the rule of `raft3d_launcher::leader`) until a
    /// leader is elected or `within` has passed.
    async fn leader(&self, within: Duration) -> Result<String, Failure> {
        // The members are learned again every second: given one URL right after a start,
        // the others are not published yet, and one node's view is never a majority.
        let deadline = tokio::time::Instant::now() + within;
        let leader = loop {
            let _ = self.client.refresh_members().await;
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let slice = left.min(Duration::from_secs(1));
            match leader::wait_for(&self.client.members(), slice).await {
                Ok(leader) => break leader,
                Err(e) if left <= slice => {
                    return Err(read_failure(ClientError::GaveUp {
                        attempts: 0,
                        waited_ms: within.as_millis(),
                        last: e.to_string(),
                    }))
                }
                Err(_) => {}
            }
        };
        if self.json {
            return Ok(to_json(&leader));
        }
        Ok(format!(
            "node {} ({}), term {}",
            leader.id, leader.url, leader.term
        ))
    }

    /// Creates with this command's idempotency key.
    async fn create<B: Serialize, T: serde::de::DeserializeOwned>(
        &self,
        endpoint: Endpoint,
        body: &B,
    ) -> Result<T, Failure> {
        let call = raft3d_client::Call::to(endpoint, &[])
            .json(body)
            .map_err(|e| (e, None))?;
        self.write(&self.keyed(call)).await
    }

    fn keyed(&self, call: raft3d_client::Call) -> raft3d_client::Call {
        match &self.key {
            Some(key) => call.with_idempotency_key(Some(key.clone())),
            None => call,
        }
    }

    async fn write<T: serde::de::DeserializeOwned>(
        &self,
        call: &raft3d_client::Call,
    ) -> Result<T, Failure> {
        let key = call.idempotency_key().map(str::to_owned);
        let answer = self
            .client
            .execute(call)
            .await
            .map_err(|e| (e, key.clone()))?;
        answer.json().map_err(|e| (e, key))
    }

    /// One item: the object itself as JSON, a one-row table otherwise.
    async fn tokens(&self, command: &TokenCommand) -> Result<String, Failure> {
        match command {
            TokenCommand::List => {
                let tokens = self.client.tokens().await.map_err(read_failure)?;
                self.show(&tokens, token_table)
            }
            TokenCommand::Create { name, role } => {
                let role = AccessRole::parse(role).ok_or_else(|| {
                    read_failure(ClientError::Invalid(format!(
                        "--role {role}: must be viewer, operator or admin"
                    )))
                })?;
                let created = self
                    .client
                    .create_token(name, role)
                    .await
                    .map_err(read_failure)?;
                if self.json {
                    return Ok(to_json(&created));
                }
                Ok(format!(
                    "{}\nsecret (shown once; send as `Authorization: Bearer <secret>`):\n{}",
                    token_table(std::slice::from_ref(&created.token)),
                    created.secret
                ))
            }
            TokenCommand::Revoke { id } => {
                let revoked = self.client.revoke_token(id).await.map_err(read_failure)?;
                self.show_one(revoked, token_table)
            }
        }
    }

    fn show_one<T: Serialize>(
        &self,
        item: T,
        table: fn(&[T]) -> String,
    ) -> Result<String, Failure> {
        if self.json {
            return Ok(to_json(&item));
        }
        Ok(table(&[item]))
    }

    fn show<T: Serialize>(
        &self,
        items: &[T],
        table: fn(&[T]) -> String,
    ) -> Result<String, Failure> {
        if self.json {
            return Ok(to_json(items));
        }
        Ok(table(items))
    }
}

/// `raft3d add-node` and `raft3d ctl cluster add-node`.
pub async fn add_node(client: &Client, args: &AddNodeArgs) -> Result<ClusterView, ClientError> {
    client.add_node(args.id, &args.raft_addr).await
}

fn read_failure(error: ClientError) -> Failure {
    (error, None)
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> String {
    // Serialising the API's own types to JSON cannot fail (no maps with non-string keys).
    serde_json::to_string_pretty(value).unwrap_or_default()
}

fn token_table(tokens: &[TokenView]) -> String {
    table(
        &["ID", "NAME", "ROLE"],
        tokens.iter().map(|t| {
            vec![
                t.id.to_string(),
                t.name.as_str().to_owned(),
                t.role.to_string(),
            ]
        }),
    )
}

fn printer_table(printers: &[Printer]) -> String {
    table(
        &["ID", "COMPANY", "MODEL", "HOST", "STATE", "SPOOL"],
        printers.iter().map(|p| {
            let host = p
                .connection
                .as_ref()
                .map_or("-".to_owned(), |c| format!("{} {}", c.kind.as_str(), c.url));
            let mut state = match (&p.connection, &p.status) {
                (None, _) => "not connected".to_owned(),
                (Some(_), None) => "connected, no report yet".to_owned(),
                (Some(_), Some(status)) => match &status.message {
                    Some(message) => format!("{} ({})", status.state.as_str(), message.as_str()),
                    None => status.state.as_str().to_owned(),
                },
            };
            if let Some(wait) = &p.awaiting_clear {
                state.push_str(&format!(", awaiting clear after job {}", wait.job_id));
            }
            let spool = p
                .loaded_filament_id
                .as_ref()
                .map_or("-".to_owned(), ToString::to_string);
            vec![
                p.id.to_string(),
                p.company.as_str().to_owned(),
                p.model.as_str().to_owned(),
                host,
                state,
                spool,
            ]
        }),
    )
}

fn live_table(printers: &[PrinterLive]) -> String {
    let temperature = |t: Option<app::domain::Temperature>| {
        t.map_or("-".to_owned(), |t| match t.target {
            Some(target) => format!("{:.0}/{:.0}", t.actual, target),
            None => format!("{:.0}", t.actual),
        })
    };
    table(
        &[
            "PRINTER", "STATE", "JOB", "PROGRESS", "LEFT_S", "NOZZLE_C", "BED_C",
        ],
        printers.iter().map(|p| {
            vec![
                p.printer_id.to_string(),
                p.state.as_str().to_owned(),
                p.job_id
                    .as_ref()
                    .map_or("-".to_owned(), ToString::to_string),
                p.progress.map_or("-".to_owned(), |v| format!("{v:.0}%")),
                p.seconds_left.map_or("-".to_owned(), |v| v.to_string()),
                temperature(p.nozzle),
                temperature(p.bed),
            ]
        }),
    )
}

fn file_table(files: &[GcodeFile]) -> String {
    table(
        &["ID", "NAME", "SIZE", "GRAMS", "SECONDS", "SLICER"],
        files.iter().map(|f| {
            vec![
                f.id.to_string(),
                f.name.as_str().to_owned(),
                f.size.to_string(),
                f.filament_grams
                    .map_or("-".to_owned(), |g| format!("{:.2}", g.get())),
                f.print_seconds.map_or("-".to_owned(), |s| s.to_string()),
                f.slicer
                    .as_ref()
                    .map_or("-".to_owned(), |s| s.as_str().to_owned()),
            ]
        }),
    )
}

fn spool_table(spools: &[Filament]) -> String {
    table(
        &["ID", "TYPE", "COLOR", "REMAINING_G", "TOTAL_G"],
        spools.iter().map(|s| {
            vec![
                s.id.to_string(),
                s.kind.to_string(),
                s.color.as_str().to_owned(),
                s.remaining_weight_in_grams.to_string(),
                s.total_weight_in_grams.to_string(),
            ]
        }),
    )
}

fn job_table(jobs: &[PrintJob]) -> String {
    table(
        &["ID", "STATUS", "PRINTER", "SPOOL", "GRAMS", "FILE"],
        jobs.iter().map(|j| {
            vec![
                j.id.to_string(),
                j.status.to_string(),
                j.printer_id
                    .as_ref()
                    .map_or("-".to_owned(), ToString::to_string),
                match (&j.filament_id, &j.material) {
                    (Some(spool), _) => spool.to_string(),
                    (None, Some(m)) => format!("any {} {}", m.kind, m.color.as_str()),
                    (None, None) => "-".to_owned(),
                },
                j.print_weight_in_grams.to_string(),
                j.filepath.as_str().to_owned(),
            ]
        }),
    )
}

fn cluster_table(view: &ClusterView) -> String {
    let leader = match (view.leader_id, &view.leader_url) {
        (Some(id), Some(url)) => format!("node {id} ({url})"),
        (Some(id), None) => format!("node {id}"),
        (None, _) => "none (election in progress?)".to_owned(),
    };
    let optional = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
    let members = table(
        &[
            "ID",
            "VOTER",
            "REACHABLE",
            "MATCHED",
            "CLIENT_URL",
            "RAFT_ADDR",
        ],
        view.members.iter().map(|m| {
            vec![
                m.id.to_string(),
                if m.rejoining {
                    "rejoining".to_owned()
                } else {
                    m.voter.to_string()
                },
                m.reachable
                    .map_or_else(|| "-".to_owned(), |r| r.to_string()),
                optional(m.matched_index),
                m.http_url.clone().unwrap_or_else(|| "-".to_owned()),
                m.raft_addr.clone(),
            ]
        }),
    );
    format!(
        "answered by: node {} ({}), term {}, applied {}\nleader: {leader}\n\n{members}",
        view.node_id,
        view.role,
        view.term,
        optional(view.applied_index),
    )
}

/// Left-aligned columns, two spaces apart, a header line first.
fn table(header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    let rows: Vec<Vec<String>> = std::iter::once(header.iter().map(|h| (*h).to_owned()).collect())
        .chain(rows)
        .collect();
    let mut widths = vec![0; header.len()];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    rows.iter()
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            cells.join("  ").trim_end().to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_under_their_headers() {
        let text = table(
            &["ID", "MODEL"],
            [
                vec!["p-10".to_owned(), "MK4".to_owned()],
                vec!["p".to_owned(), "X1".to_owned()],
            ]
            .into_iter(),
        );
        assert_eq!(text, "ID    MODEL\np-10  MK4\np     X1");
    }

    #[test]
    fn exit_statuses_tell_refused_from_missing_from_unknown() {
        let api = |status| ClientError::Api {
            url: String::new(),
            status,
            problem: app::api::Problem {
                kind: String::new(),
                title: String::new(),
                status,
                detail: String::new(),
                field: None,
                leader_id: None,
                leader_url: None,
                retry_after_ms: None,
            },
        };
        assert_eq!(ExitStatus::of(&api(404)), ExitStatus::NotFound);
        assert_eq!(ExitStatus::of(&api(422)), ExitStatus::Refused);
        assert_eq!(ExitStatus::of(&api(409)), ExitStatus::Refused);
        let gave_up = ClientError::GaveUp {
            attempts: 3,
            waited_ms: 10,
            last: String::new(),
        };
        assert_eq!(ExitStatus::of(&gave_up), ExitStatus::Unknown);
        assert_eq!(
            ExitStatus::of(&ClientError::Invalid(String::new())),
            ExitStatus::Usage
        );
    }
}
