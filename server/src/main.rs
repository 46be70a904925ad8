//! `raft3d`: run a node, a local cluster, membership changes or the benchmark.

use clap::{Parser, Subcommand};
use raft3d::{admin, bench, local_cluster, NodeConfig};
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
        default_value = "info,openraft=warn"
    )]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one node.
    Serve(NodeConfig),
    /// Start a local cluster of N nodes as child processes (Ctrl-C stops them all).
    Cluster(local_cluster::LocalClusterArgs),
    /// Add a node (started with `serve` and no --peers) to a running cluster.
    AddNode(admin::AddNodeArgs),
    /// Remove a node from a running cluster.
    RemoveNode(admin::RemoveNodeArgs),
    /// Benchmark: start a local cluster, drive concurrent creates and reads, print numbers.
    Bench(bench::BenchArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log).unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result: Result<(), String> = match cli.command {
        Command::Serve(config) => serve(config).await,
        Command::Cluster(args) => local_cluster::run(args).await.map_err(|e| e.to_string()),
        Command::AddNode(args) => admin::add_node(args)
            .await
            .map(print_view)
            .map_err(|e| e.to_string()),
        Command::Bench(args) => bench::run(args)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Command::RemoveNode(args) => admin::remove_node(args)
            .await
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

async fn serve(config: NodeConfig) -> Result<(), String> {
    let node = raft3d::start(config).await.map_err(|e| e.to_string())?;
    node.run_until(raft3d::node::shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

fn print_view(view: app::api::ClusterView) {
    println!(
        "{}",
        serde_json::to_string_pretty(&view).unwrap_or_default()
    );
}
