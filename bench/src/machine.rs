//! The machine a run measured on, so that numbers can be read against it later: CPU,
//! memory, kernel, the disk and filesystem under the data directory, and the versions of
//! everything involved (etcd, raft3d, rustc, the git commit).
//!
//! Owns: reading `/proc`, `/sys` and a few `--version`s. Nothing here fails a run: what
//! cannot be read is reported as unknown.

use crate::Executables;
use serde::Serialize;
use std::path::Path;
use std::process::{Command, Stdio};

const UNKNOWN: &str = "unknown";

/// What the report says about the machine.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// `model name` of `/proc/cpuinfo`.
    pub cpu_model: String,
    /// CPUs this process may run on; every node and the load generator share them.
    pub cpus: usize,
    /// `MemTotal` of `/proc/meminfo`, in MiB.
    pub ram_mib: u64,
    /// `/proc/sys/kernel/osrelease`.
    pub kernel: String,
    pub os: &'static str,
    pub arch: &'static str,
    /// Where the nodes' data lives: path, filesystem, device and whether it spins.
    pub data_dir: DataDisk,
    /// First line of `etcd --version` (`None`: not measured).
    pub etcd_version: Option<String>,
    /// `raft3d --version`.
    pub raft3d_version: String,
    /// `rustc --version` as run from the working directory (the workspace pins its
    /// toolchain in rust-toolchain.toml).
    pub rustc_version: String,
    /// `git rev-parse HEAD`, with `-dirty` when tracked files differ from it.
    pub git_commit: String,
    /// Tracked files that differ from that commit (`git diff --name-only HEAD`): the
    /// binaries measured were built from the working tree, these changes included.
    pub git_dirty_paths: Vec<String>,
}

/// The filesystem under the data directory.
#[derive(Debug, Clone, Serialize)]
pub struct DataDisk {
    pub path: String,
    /// Mount point, filesystem type and source, from `/proc/self/mountinfo`.
    pub mount_point: String,
    pub filesystem: String,
    pub device: String,
    /// `/sys/block/<disk>/queue/rotational` (`None`: not a block device found in /sys).
    pub rotational: Option<bool>,
    /// `/sys/block/<disk>/device/model`, when the kernel names one.
    pub model: Option<String>,
}

pub fn describe(data_dir: &Path, exes: &Executables) -> Machine {
    let cpuinfo = read("/proc/cpuinfo");
    let meminfo = read("/proc/meminfo");
    Machine {
        cpu_model: field(&cpuinfo, "model name").unwrap_or_else(|| UNKNOWN.to_owned()),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        ram_mib: field(&meminfo, "MemTotal")
            .and_then(|kb| kb.trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| kib / 1024),
        kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
        os: std::env::consts::OS,
        arch: std::env::consts::ARCH,
        data_dir: data_disk(data_dir),
        etcd_version: exes.etcd.as_deref().and_then(crate::etcd::version),
        raft3d_version: output(Command::new(&exes.raft3d).arg("--version"))
            .unwrap_or_else(|| UNKNOWN.to_owned()),
        rustc_version: output(Command::new("rustc").arg("--version"))
            .unwrap_or_else(|| UNKNOWN.to_owned()),
        git_commit: git_commit().unwrap_or_else(|| UNKNOWN.to_owned()),
        git_dirty_paths: dirty_paths(),
    }
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The value of the first `name : value` line (`/proc/cpuinfo`, `/proc/meminfo`).
fn field(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == name).then(|| value.trim().to_owned())
    })
}

/// The first line of a command's stdout, if it ran and succeeded.
fn output(command: &mut Command) -> Option<String> {
    let out = command.stdin(Stdio::null()).stderr(Stdio::null()).output();
    let out = out.ok().filter(|out| out.status.success())?;
    let text = String::from_utf8_lossy(&out.stdout);
    Some(text.lines().next()?.trim().to_owned())
}

fn git_commit() -> Option<String> {
    let head = output(Command::new("git").args(["rev-parse", "HEAD"]))?;
    // `--quiet` exits 1 when tracked files differ from HEAD.
    let clean = Command::new("git")
        .args(["diff", "--quiet", "HEAD"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    Some(if clean { head } else { format!("{head}-dirty") })
}

fn dirty_paths() -> Vec<String> {
    let out = Command::new("git")
        .args(["diff", "--name-only", "HEAD"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    out.map(|out| {
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines().map(str::to_owned).collect()
    })
    .unwrap_or_default()
}

/// The mount holding `path` (the longest mount point that prefixes it).
fn data_disk(path: &Path) -> DataDisk {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mountinfo = read("/proc/self/mountinfo");
    let mount = mountinfo
        .lines()
        .filter_map(parse_mountinfo)
        .filter(|m| path.starts_with(&m.0))
        .max_by_key(|m| m.0.len());
    let (mount_point, filesystem, device) = mount.unwrap_or_default();
    let disk = block_device(&device);
    DataDisk {
        path: path.display().to_string(),
        rotational: disk.as_deref().and_then(|d| {
            let flag = std::fs::read_to_string(format!("/sys/block/{d}/queue/rotational"));
            flag.ok().map(|f| f.trim() == "1")
        }),
        model: disk.as_deref().and_then(|d| {
            let model = std::fs::read_to_string(format!("/sys/block/{d}/device/model"));
            model
                .ok()
                .map(|m| m.trim().to_owned())
                .filter(|m| !m.is_empty())
        }),
        mount_point,
        filesystem,
        device,
    }
}

/// `(mount point, fs type, source)` of one `/proc/self/mountinfo` line: fields 5, then
/// after the ` - ` separator the type and the source.
fn parse_mountinfo(line: &str) -> Option<(String, String, String)> {
    let (before, after) = line.split_once(" - ")?;
    let mount_point = before.split(' ').nth(4)?.to_owned();
    let mut after = after.split(' ');
    Some((
        mount_point,
        after.next()?.to_owned(),
        after.next()?.to_owned(),
    ))
}

/// `vda` for `/dev/vda1`, `nvme0n1` for `/dev/nvme0n1p2`: the disk in `/sys/block`.
fn block_device(source: &str) -> Option<String> {
    let name = source.strip_prefix("/dev/")?;
    let mut candidate = name.to_owned();
    while !candidate.is_empty() {
        if Path::new("/sys/block").join(&candidate).exists() {
            return Some(candidate);
        }
        candidate.pop();
        if candidate.ends_with('p') && candidate.starts_with("nvme") {
            candidate.pop();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mountinfo_line_gives_point_type_and_source() {
        let line = "29 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw";
        assert_eq!(
            parse_mountinfo(line),
            Some(("/".to_owned(), "ext4".to_owned(), "/dev/vda1".to_owned()))
        );
    }

    #[test]
    fn proc_fields_are_found_by_name() {
        let cpuinfo = "processor\t: 0\nmodel name\t: Some CPU @ 2.0GHz\n";
        assert_eq!(
            field(cpuinfo, "model name").as_deref(),
            Some("Some CPU @ 2.0GHz")
        );
        assert_eq!(field(cpuinfo, "flags"), None);
    }
}
