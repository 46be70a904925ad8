//! Fault points on Raft links: one TCP proxy in front of each node's Raft port. Nodes
//! bind their outgoing peer connections to `127.0.0.(10 + id)`, so a proxy knows which
//! node is talking; every chunk is checked against the current rule for its direction,
//! so a fault also hits keep-alive connections that are already open.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// What happens to bytes going from one node to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Pass,
    /// Bytes vanish; connections stay open (a silent network).
    Blackhole,
    /// Connections are closed and new ones refused (a network that answers "no").
    Reset,
    /// Each chunk waits this long.
    Delay(Duration),
}

/// The rules for every directed link, shared by all proxies, and how many bytes each
/// directed link has carried (a fault can tell a snapshot transfer from heartbeats).
#[derive(Debug, Clone, Default)]
pub struct Links(Arc<Mutex<LinkTable>>);

#[derive(Debug, Default)]
struct LinkTable {
    rules: HashMap<(u64, u64), Link>,
    sent: HashMap<(u64, u64), u64>,
}

impl Links {
    pub fn set(&self, from: u64, to: u64, link: Link) {
        self.0.lock().expect("links").rules.insert((from, to), link);
    }
    pub fn get(&self, from: u64, to: u64) -> Link {
        self.0
            .lock()
            .expect("links")
            .rules
            .get(&(from, to))
            .copied()
            .unwrap_or(Link::Pass)
    }
    /// Records `bytes` sent from `from` to `to` and returns the rule they are subject to.
    fn carry(&self, from: u64, to: u64, bytes: usize) -> Link {
        let mut table = self.0.lock().expect("links");
        *table.sent.entry((from, to)).or_insert(0) += bytes as u64;
        table.rules.get(&(from, to)).copied().unwrap_or(Link::Pass)
    }
    /// Bytes `from` has sent to `to` so far (whatever the rule did with them).
    pub fn sent(&self, from: u64, to: u64) -> u64 {
        let table = self.0.lock().expect("links");
        table.sent.get(&(from, to)).copied().unwrap_or(0)
    }
    pub fn heal(&self) {
        self.0.lock().expect("links").rules.clear();
    }
}

pub fn source_ip(id: u64) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + id as u8))
}

fn node_of(ip: IpAddr) -> Option<u64> {
    match ip {
        IpAddr::V4(v4) if v4.octets()[0] == 127 && v4.octets()[3] > 10 => {
            Some(u64::from(v4.octets()[3] - 10))
        }
        _ => None,
    }
}

/// Serves `listener` (the address peers dial for node `to`), forwarding to `target`.
pub async fn run(listener: TcpListener, to: u64, target: SocketAddr, links: Links) {
    loop {
        let Ok((inbound, peer)) = listener.accept().await else {
            continue;
        };
        let Some(from) = node_of(peer.ip()) else {
            continue;
        };
        if links.get(from, to) == Link::Reset {
            continue; // dropping `inbound` closes it
        }
        let links = links.clone();
        tokio::spawn(async move {
            let Ok(outbound) = TcpStream::connect(target).await else {
                return;
            };
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            let (in_read, in_write) = inbound.into_split();
            let (out_read, out_write) = outbound.into_split();
            // Requests flow from -> to; responses to -> from.
            tokio::select! {
                _ = pump(in_read, out_write, links.clone(), from, to) => {}
                _ = pump(out_read, in_write, links, to, from) => {}
            }
        });
    }
}

async fn pump(
    mut read: OwnedReadHalf,
    mut write: OwnedWriteHalf,
    links: Links,
    from: u64,
    to: u64,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match read.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        match links.carry(from, to, n) {
            Link::Pass => {}
            Link::Blackhole => continue,
            Link::Reset => return,
            Link::Delay(d) => tokio::time::sleep(d).await,
        }
        if write.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
