//! Where a node's output goes: a log file per node (tests: read after a failure), or the
//! terminal with a `[node i]` label on every line (`raft3d cluster`).

use std::io::Write;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// Which of our streams a child's stream is copied to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Sink {
    Stdout,
    Stderr,
}

/// Copies `stream` line by line to `sink`, each line prefixed with `label`.
///
/// Reads bytes, not `String` lines, and ignores write errors: if this task stopped on a
/// non-UTF-8 line or a closed terminal, the child's pipe would fill up and the node
/// would block on its next log line.
pub(crate) async fn forward_lines(stream: impl AsyncRead + Unpin, label: String, sink: Sink) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end_matches(&['\r', '\n'][..]);
                let _ = match sink {
                    Sink::Stdout => writeln!(std::io::stdout().lock(), "{label} {text}"),
                    Sink::Stderr => writeln!(std::io::stderr().lock(), "{label} {text}"),
                };
            }
        }
    }
}

/// Nodes colour their log lines (ANSI `ESC [ … m`); reports are plain text.
pub(crate) fn strip_colours(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            chars.by_ref().find(|c| *c == 'm');
        } else {
            plain.push(c);
        }
    }
    plain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_stripped() {
        assert_eq!(
            strip_colours("\x1b[2mtime\x1b[0m \x1b[33m WARN\x1b[0m x"),
            "time  WARN x"
        );
    }
}
