//! `raft3d`: run a node, a local cluster or membership changes (the benchmark is the
//! `raft3d-bench` binary of the `bench` crate).

use clap::{Parser, Subcommand};
use raft3d::config::ServeArgs;
use raft3d::ctl::{self, AddNodeArgs, Credentials, CtlArgs};
use raft3d::{init, local_cluster};
use raft3d_client::RetryPolicy;
use std::process::ExitCode;

// glibc malloc showed up as ~12% of a loaded leader's CPU (many small allocations per
// request: JSON, HTTP, log entries); mimalloc is markedly cheaper for that pattern.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "raft3d",
    version,
    about = "Fault-tolerant 3D-print farm manager (Raft + redb)"
)]
struct Cli {
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `raft3d=debug,openraft=info`.
    #[arg(
        long,
        global = true,
        env = "RAFT3D_LOG",
        // openraft's core warns at every stale message it drops (a vote reply after the
        // election ended, ...), a normal part of every election; see vendor/README.md.
        default_value = "info,openraft=warn,openraft::core::raft_core=error"
    )]
    log: String,
    /// Log lines as coloured text on a terminal (plain when piped), or as one JSON object
    /// per line (`timestamp`, `level`, `target`, `message` and the event's fields) for a
    /// log collector.
    #[arg(long, global = true, env = "RAFT3D_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Prepare a new cluster: a certificate authority and one directory per node
    /// (certificates, settings) to copy to its host; or, with --add-node, one more node.
    Init(init::InitArgs),
    /// Run one node.
    Serve {
        #[command(flatten)]
        args: Box<ServeArgs>,
        /// Shut down when process PID exits: for supervisors and test harnesses that
        /// start nodes as children and must not leave them behind if they die.
        #[arg(long, value_name = "PID")]
        stop_with_parent: Option<u32>,
    },
    /// Start a local cluster of N nodes as child processes (Ctrl-C stops them all).
    Cluster(local_cluster::LocalClusterArgs),
    /// The farm and the cluster from a terminal: printers, spools, jobs, cluster status.
    Ctl(CtlArgs),
    /// Add a node (started with `serve` and no --peers) to a running cluster (same as
    /// `ctl cluster add-node`).
    AddNode {
        #[command(flatten)]
        node: AddNodeArgs,
        #[command(flatten)]
        credentials: Credentials,
        /// Client URL of any member of the running cluster.
        #[arg(long, default_value = "http://127.0.0.1:8081")]
        cluster: String,
    },
    /// Save a backup of the farm (admin token): the farm at one log index of the node
    /// asked, and every stored file, checked whole before it is kept.
    Backup {
        #[command(flatten)]
        credentials: Credentials,
        /// Client URL of the member to take it from (any member; writes go on).
        #[arg(long, default_value = "http://127.0.0.1:8081")]
        cluster: String,
        /// File to write (must not exist).
        #[arg(long, value_name = "FILE")]
        out: std::path::PathBuf,
    },
    /// Prepare the node directories of a new cluster (new id, certificates and admin
    /// token, as `init` makes them) holding the farm of a backup; then start its nodes as
    /// after `init`.
    Restore(raft3d::backup::RestoreArgs),
    /// Remove a node from a running cluster (same as `ctl cluster remove-node`).
    RemoveNode {
        #[arg(long)]
        id: u64,
        #[command(flatten)]
        credentials: Credentials,
        /// Client URL of any member of the running cluster.
        #[arg(long, default_value = "http://127.0.0.1:8081")]
        cluster: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log).unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => {
            use std::io::IsTerminal;
            logs.with_ansi(std::io::stderr().is_terminal()).init();
        }
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
    let result: Result<(), String> = match cli.command {
        Command::Init(args) => init::run(&args)
            .map(|dirs| print_node_dirs(&args, &dirs))
            .map_err(|e| e.to_string()),
        Command::Serve {
            args,
            stop_with_parent,
        } => match (*args).resolve() {
            Ok(config) => serve(config, stop_with_parent).await,
            Err(e) => Err(e.to_string()),
        },
        Command::Cluster(args) => local_cluster::run(args).await.map_err(|e| e.to_string()),
        Command::Ctl(args) => return ExitCode::from(ctl::run(args).await as u8),
        Command::AddNode {
            node,
            credentials,
            cluster,
        } => match credentials.client([cluster], RetryPolicy::default()) {
            Ok(client) => ctl::add_node(&client, &node).await,
            Err(e) => Err(e),
        }
        .map(print_view)
        .map_err(|e| e.to_string()),
        Command::Backup {
            credentials,
            cluster,
            out,
        } => backup(&credentials, &cluster, &out).await,
        Command::Restore(args) => restore(&args),
        Command::RemoveNode {
            id,
            credentials,
            cluster,
        } => match credentials.client([cluster], RetryPolicy::default()) {
            Ok(client) => client.remove_node(id).await,
            Err(e) => Err(e),
        }
        .map(print_view)
        .map_err(|e| e.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("raft3d: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: raft3d::NodeConfig, parent: Option<u32>) -> Result<(), String> {
    let node = raft3d::start(config).await.map_err(|e| e.to_string())?;
    let stop = async {
        match parent {
            Some(pid) => tokio::select! {
                () = raft3d::node::shutdown_signal() => {}
                () = parent_exits(pid) => {
                    tracing::info!(parent = pid, "the process that started this node is gone; shutting down");
                }
            },
            None => raft3d::node::shutdown_signal().await,
        }
    };
    node.run_until(stop).await.map_err(|e| e.to_string())
}

/// Completes once this process's parent is no longer `pid` (it exited and this process
/// was handed to init or a subreaper). Polled: there is no portable notification without
/// `unsafe` (prctl), and a quarter second is soon enough to clean up after a dead test.
async fn parent_exits(pid: u32) {
    while std::os::unix::process::parent_id() == pid {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

async fn backup(
    credentials: &Credentials,
    node: &str,
    out: &std::path::Path,
) -> Result<(), String> {
    if out.exists() {
        return Err(format!("{} exists already", out.display()));
    }
    let client = credentials
        .client([node], RetryPolicy::default())
        .map_err(|e| e.to_string())?;
    let summary = raft3d::backup::save(&client, node, out)
        .await
        .map_err(|e| e.to_string())?;
    let h = &summary.header;
    println!(
        "saved {}: cluster {}, node {}, log index {}, taken {}; {} rows, {} stored files",
        out.display(),
        h.cluster_id.as_deref().unwrap_or("(none)"),
        h.node_id,
        h.index.unwrap_or(0),
        h.taken_at,
        summary.rows,
        summary.files
    );
    Ok(())
}

fn restore(args: &raft3d::backup::RestoreArgs) -> Result<(), String> {
    let restored = raft3d::backup::restore(args).map_err(|e| e.to_string())?;
    let h = &restored.summary.header;
    println!(
        "restored the farm of cluster {} at log index {} ({} rows, {} stored files; state digest {:016x}) into a new cluster:",
        h.cluster_id.as_deref().unwrap_or("(none)"),
        h.index.unwrap_or(0),
        restored.summary.rows,
        restored.summary.files,
        restored.digest
    );
    print_node_dirs(&args.init, &restored.node_dirs);
    Ok(())
}

fn print_view(view: app::api::ClusterView) {
    println!(
        "{}",
        serde_json::to_string_pretty(&view).unwrap_or_default()
    );
}

fn print_node_dirs(args: &init::InitArgs, dirs: &[std::path::PathBuf]) {
    for dir in dirs {
        println!("{}", dir.display());
    }
    eprintln!(
        "copy each node directory to its host and start it with `raft3d serve --node-dir DIR`;\n\
         keep {} (the CA key) off the nodes: it signs the certificates of nodes added later",
        args.dir.join(raft3d::pki::CA_KEY_FILE).display()
    );
}
