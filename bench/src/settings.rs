//! The settings both systems run at, and the flags that give them.
//!
//! - `defaults`: each system as its operator gets it, no flag given. The values shown
//!   are what the executables started say of themselves: `raft3d serve --help` of the
//!   `raft3d` binary run, `etcd --help` of the installed etcd.
//! - `matched`: both at the same heartbeat, election timeout range and snapshot interval.
//!   Both draw each election timeout at random: etcd from [T, 2T) for
//!   `--election-timeout T`, Raft3D (openraft) from [min, max); so T ⇔ min T, max 2T.
//!   etcd refuses an election timeout under 5 heartbeats, so Raft3D's default range
//!   ([400, 800) ms at a 100 ms heartbeat) has no etcd equivalent; the default matched
//!   setting keeps the heartbeat (100 ms, both systems' default) and takes the shortest
//!   election timeout etcd accepts with it, 500 ms, i.e. [500, 1000) on both.
//!
//! Owns: choosing values and writing them as flags. Starts nothing.

use crate::{BenchArgs, BenchError, Executables};
use serde::Serialize;
use std::path::Path;

/// Matched heartbeat: the default of both systems.
pub const MATCHED_HEARTBEAT_MS: u64 = 100;
/// Matched election timeout T (range [T, 2T)): the shortest etcd accepts at a 100 ms
/// heartbeat.
pub const MATCHED_ELECTION_MS: u64 = 500;
/// Matched snapshot interval: Raft3D's default (etcd's is 100,000).
pub const MATCHED_SNAPSHOT_EVERY: u64 = 10_000;

/// etcd 3.4's documented defaults, used only if `etcd --help` cannot be read.
const ETCD_DOCUMENTED: (u64, u64, u64) = (100, 1000, 100_000);

/// Which settings a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SettingsName {
    /// Each system at its own defaults.
    Defaults,
    /// Both at the same timings.
    Matched,
}

impl std::fmt::Display for SettingsName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Defaults => "defaults",
            Self::Matched => "matched",
        })
    }
}

/// One system's Raft timings, as in effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Timings {
    pub heartbeat_ms: u64,
    /// Each election timeout is drawn from [min, max).
    pub election_min_ms: u64,
    pub election_max_ms: u64,
    /// Log entries (etcd: applied entries) between two snapshots.
    pub snapshot_every: u64,
}

impl Timings {
    fn describe(&self) -> String {
        format!(
            "heartbeat {} ms, election [{}, {}) ms, snapshot every {} entries",
            self.heartbeat_ms, self.election_min_ms, self.election_max_ms, self.snapshot_every
        )
    }
}

/// One settings of a run: what each system runs at and the flags that say so.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub name: SettingsName,
    pub raft3d: Timings,
    pub etcd: Timings,
    /// Flags given to every `raft3d serve` (none at defaults).
    pub raft3d_flags: Vec<String>,
    /// Flags given to every etcd member (none at defaults).
    pub etcd_flags: Vec<String>,
    /// Whether etcd's members talk over mutual TLS (`--etcd-peer-tls`), as Raft3D's do
    /// unless it runs `--insecure`.
    pub etcd_peer_tls: bool,
}

impl Settings {
    pub fn describe(&self) -> String {
        format!(
            "Raft3D {}; etcd {}",
            self.raft3d.describe(),
            self.etcd.describe()
        )
    }
}

/// The settings of `--settings`, in order.
pub fn plan(args: &BenchArgs, exes: &Executables) -> Result<Vec<Settings>, BenchError> {
    args.settings
        .iter()
        .map(|&name| match name {
            SettingsName::Defaults => Ok(defaults(&exes.raft3d, exes.etcd.as_deref())),
            SettingsName::Matched => matched(
                args.matched_heartbeat_ms,
                args.matched_election_ms,
                args.matched_snapshot_every,
            ),
        })
        .collect()
}

fn defaults(raft3d: &Path, etcd: Option<&Path>) -> Settings {
    let (heartbeat, election, snapshot) = etcd.and_then(etcd_defaults).unwrap_or(ETCD_DOCUMENTED);
    Settings {
        name: SettingsName::Defaults,
        raft3d: raft3d_defaults(raft3d).unwrap_or_else(|| {
            // The server library this bench was built with: the same source, perhaps
            // not the same build as the binary run.
            tracing::warn!("`raft3d serve --help` gave no defaults; using the bench's own");
            let node = raft3d_server::NodeConfig::new(1, std::path::PathBuf::new());
            Timings {
                heartbeat_ms: node.heartbeat_ms,
                election_min_ms: node.election_timeout_min_ms,
                election_max_ms: node.election_timeout_max_ms,
                snapshot_every: node.snapshot_threshold,
            }
        }),
        etcd: Timings {
            heartbeat_ms: heartbeat,
            election_min_ms: election,
            election_max_ms: 2 * election,
            snapshot_every: snapshot,
        },
        raft3d_flags: Vec::new(),
        etcd_flags: Vec::new(),
        etcd_peer_tls: false,
    }
}

fn matched(heartbeat: u64, election: u64, snapshot: u64) -> Result<Settings, BenchError> {
    // etcd's own check (etcdmain: "--election-timeout should be at least as 5 times as
    // --heartbeat-interval"); failing here beats three members failing to start.
    if heartbeat == 0 || election < 5 * heartbeat {
        return Err(BenchError::Settings(format!(
            "etcd needs an election timeout of at least 5 heartbeats (got {heartbeat} / {election} ms)"
        )));
    }
    let timings = Timings {
        heartbeat_ms: heartbeat,
        election_min_ms: election,
        election_max_ms: 2 * election,
        snapshot_every: snapshot,
    };
    let flags = |pairs: &[(&str, u64)]| {
        pairs
            .iter()
            .flat_map(|(flag, value)| [flag.to_string(), value.to_string()])
            .collect::<Vec<_>>()
    };
    Ok(Settings {
        name: SettingsName::Matched,
        raft3d: timings,
        etcd: timings,
        raft3d_flags: flags(&[
            ("--heartbeat-ms", heartbeat),
            ("--election-timeout-min-ms", election),
            ("--election-timeout-max-ms", 2 * election),
            ("--snapshot-threshold", snapshot),
        ]),
        etcd_flags: flags(&[
            ("--heartbeat-interval", heartbeat),
            ("--election-timeout", election),
            ("--snapshot-count", snapshot),
        ]),
        etcd_peer_tls: false,
    })
}

/// `(heartbeat ms, election timeout ms, snapshot count)` as the installed etcd's
/// `--help` states its defaults (`  --heartbeat-interval '100'`).
fn etcd_defaults(exe: &Path) -> Option<(u64, u64, u64)> {
    let output = std::process::Command::new(exe)
        .arg("--help")
        .output()
        .ok()?;
    // etcd 3.4 prints its help on stderr.
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Some((
        help_default(&text, "--heartbeat-interval")?,
        help_default(&text, "--election-timeout")?,
        help_default(&text, "--snapshot-count")?,
    ))
}

/// Raft3D's timings as `raft3d serve --help` of `exe` states their defaults (clap:
/// `[default: 100]` in the flag's description).
fn raft3d_defaults(exe: &Path) -> Option<Timings> {
    let output = std::process::Command::new(exe)
        .args(["serve", "--help"])
        .output()
        .ok()?;
    let help = String::from_utf8_lossy(&output.stdout);
    Some(Timings {
        heartbeat_ms: clap_default(&help, "--heartbeat-ms")?,
        election_min_ms: clap_default(&help, "--election-timeout-min-ms")?,
        election_max_ms: clap_default(&help, "--election-timeout-max-ms")?,
        snapshot_every: clap_default(&help, "--snapshot-threshold")?,
    })
}

/// The `[default: N]` of `flag` in clap's help: in the lines from the flag's own up to
/// the next flag.
fn clap_default(help: &str, flag: &str) -> Option<u64> {
    let mut lines = help.lines().map(str::trim);
    lines.find(|l| l.starts_with(&format!("{flag} ")) || *l == flag)?;
    let marker = "[default: ";
    lines.take_while(|l| !l.starts_with("--")).find_map(|l| {
        let start = l.find(marker)? + marker.len();
        l.get(start..)?.split(']').next()?.trim().parse().ok()
    })
}

fn help_default(help: &str, flag: &str) -> Option<u64> {
    let prefix = format!("{flag} '");
    let line = help
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(&prefix))?;
    line.get(prefix.len()..)?.split('\'').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_help_defaults_are_read() {
        let help = "  --snapshot-count '100000'\n    Number of ...\n  --heartbeat-interval '100'\n  --election-timeout '1000'\n";
        assert_eq!(help_default(help, "--heartbeat-interval"), Some(100));
        assert_eq!(help_default(help, "--election-timeout"), Some(1000));
        assert_eq!(help_default(help, "--snapshot-count"), Some(100_000));
        assert_eq!(help_default(help, "--max-txn-ops"), None);
    }

    #[test]
    fn raft3d_help_defaults_are_read() {
        let help = "      --heartbeat-ms <HEARTBEAT_MS>\n          Milliseconds [env: X=] [default: 100]\n      --election-timeout-min-ms <MS>\n          Lower\n          [default: 400]\n      --no-default <N>\n          Nothing here\n      --next <N>\n          [default: 7]\n";
        assert_eq!(clap_default(help, "--heartbeat-ms"), Some(100));
        assert_eq!(clap_default(help, "--election-timeout-min-ms"), Some(400));
        assert_eq!(clap_default(help, "--no-default"), None);
        assert_eq!(clap_default(help, "--snapshot-threshold"), None);
    }

    #[test]
    fn matched_settings_give_both_systems_the_same_range() {
        let Ok(settings) = matched(100, 500, 10_000) else {
            panic!("100 / 500 ms is a valid etcd setting");
        };
        assert_eq!(settings.raft3d, settings.etcd);
        assert_eq!(settings.raft3d.election_max_ms, 1000);
        let raft3d = settings.raft3d_flags.join(" ");
        assert!(raft3d.contains("--election-timeout-min-ms 500 --election-timeout-max-ms 1000"));
        assert!(settings
            .etcd_flags
            .join(" ")
            .contains("--election-timeout 500"));
        assert!(matched(100, 250, 10_000).is_err());
    }
}
