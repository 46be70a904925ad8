//! Length-prefixed JSON frames: the encoding of the append stream between two nodes.
//!
//! A frame is a 4-byte big-endian length followed by that many bytes of JSON. The stream
//! carries one request frame, then its response frame, and so on (openraft sends one
//! append-entries call at a time to each follower), so no request ids are needed.
//!
//! Owns: the byte layout only. Must not touch: what the frames mean (see `network` and
//! `service`).

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest frame ever encoded or accepted, whatever the configuration (a `u32` length
/// could announce 4 GiB). Readers pass their own, usually much smaller, limit.
pub const MAX_FRAME: usize = 1 << 30;

/// Largest answer frame accepted (an append-entries response is a few hundred bytes).
pub const MAX_ANSWER_FRAME: usize = 64 * 1024;

/// Largest append-entries frame a follower accepts, given the largest client request
/// body the cluster accepts (`--max-body-bytes`). A frame of several entries is at most
/// 1 MiB (`network::MAX_APPEND_FRAME`); a single entry is at most `max_batch` proposals,
/// and a proposal's JSON is at most its request's body plus what the server adds (ids,
/// time, idempotency key and scope: under 1 KiB). So nothing a real leader sends is
/// refused, as long as every node runs with the same `--max-body-bytes`.
pub fn max_append_frame(max_body_bytes: usize, max_batch: usize) -> usize {
    let largest_entry = max_batch.saturating_mul(max_body_bytes.saturating_add(1024));
    largest_entry
        .saturating_add(64 * 1024)
        .clamp(1 << 20, MAX_FRAME)
}

/// How long the bytes of one frame may take to arrive once its length has: a peer that
/// announces a frame and then trickles (or stops) must not hold the connection and its
/// buffer forever. Generous: the largest real frames are a few MiB on a local network.
pub const FRAME_BODY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// Writes `value` as one frame (see [`encode`] and [`write_encoded`]).
pub async fn write<W, T>(io: &mut W, value: &T) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
    T: Serialize + ?Sized,
{
    write_encoded(io, &encode(value)?).await
}

/// `value` as a whole frame: length prefix and JSON.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> io::Result<Vec<u8>> {
    let mut frame = vec![0; 4];
    serde_json::to_writer(&mut frame, value).map_err(io::Error::other)?;
    let length = u32::try_from(frame.len() - 4)
        .ok()
        .filter(|&n| n as usize <= MAX_FRAME)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    frame[..4].copy_from_slice(&length.to_be_bytes());
    Ok(frame)
}

/// Writes an [`encode`]d frame in one write (so Nagle never holds half a frame back).
pub async fn write_encoded<W: AsyncWrite + Unpin>(io: &mut W, frame: &[u8]) -> io::Result<()> {
    io.write_all(frame).await?;
    io.flush().await
}

/// Reads one frame of at most `max` bytes and decodes it. A stream closed between frames
/// is `UnexpectedEof`; a longer frame is `InvalidData` (nothing of it is read); a frame
/// whose bytes stop arriving is `TimedOut` after [`FRAME_BODY_DEADLINE`].
pub async fn read<R, T>(io: &mut R, max: usize) -> io::Result<T>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    read_within(io, max, FRAME_BODY_DEADLINE).await
}

async fn read_within<R, T>(
    io: &mut R,
    max: usize,
    body_deadline: std::time::Duration,
) -> io::Result<T>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    let mut length = [0; 4];
    io.read_exact(&mut length).await?;
    let length = u32::from_be_bytes(length) as usize;
    if length > max.min(MAX_FRAME) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "frame of {length} bytes is over the {max}-byte limit (do all nodes run with \
                 the same --max-body-bytes?)"
            ),
        ));
    }
    // Grown as bytes arrive, never allocated from the announced length: a made-up length
    // of 1 GiB costs nothing until a peer really sends that much.
    let mut body = Vec::new();
    let mut limited = (&mut *io).take(length as u64);
    let received = tokio::time::timeout(body_deadline, limited.read_to_end(&mut body))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "frame body took too long"))??;
    if received < length {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("stream ended {received} bytes into a {length}-byte frame"),
        ));
    }
    serde_json::from_slice(&body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_one_after_another() -> io::Result<()> {
        let mut bytes = Vec::new();
        write(&mut bytes, &vec!["a", "b"]).await?;
        write(&mut bytes, &42u64).await?;
        assert_eq!(&bytes[..4], &9u32.to_be_bytes()); // `["a","b"]`
        let mut input = bytes.as_slice();
        assert_eq!(read::<_, Vec<String>>(&mut input, 9).await?, ["a", "b"]);
        assert_eq!(read::<_, u64>(&mut input, 9).await?, 42);
        let end = read::<_, u64>(&mut input, 9).await.err();
        assert_eq!(end.map(|e| e.kind()), Some(io::ErrorKind::UnexpectedEof));
        Ok(())
    }

    #[tokio::test]
    async fn a_length_over_the_limit_is_refused_before_allocating() {
        for (length, max) in [(MAX_FRAME + 1, MAX_FRAME + 10), (1001, 1000)] {
            let length = u32::try_from(length).unwrap_or(u32::MAX);
            let mut input: &[u8] = &length.to_be_bytes();
            let error = read::<_, u64>(&mut input, max).await.err();
            assert_eq!(error.map(|e| e.kind()), Some(io::ErrorKind::InvalidData));
        }
    }

    #[test]
    fn the_append_frame_limit_fits_the_largest_entry_and_no_more() {
        // Defaults: 64 KiB bodies, 128 proposals an entry: about 8.2 MiB.
        let limit = max_append_frame(64 * 1024, 128);
        assert!(limit >= 128 * (64 * 1024 + 1024), "{limit}");
        assert!(limit < 9 << 20, "{limit}");
        assert_eq!(
            max_append_frame(10, 1),
            1 << 20,
            "never under the 1 MiB of a batch"
        );
        assert_eq!(max_append_frame(usize::MAX, 128), MAX_FRAME);
    }

    #[tokio::test]
    async fn a_frame_that_stops_arriving_times_out() {
        // 10 bytes announced, 1 sent, and the peer keeps the connection open.
        let (mut peer, mut ours) = tokio::io::duplex(64);
        peer.write_all(&[0, 0, 0, 10, b'[']).await.expect("written");
        let deadline = std::time::Duration::from_millis(50);
        let read = read_within::<_, Vec<u64>>(&mut ours, 100, deadline);
        let outcome = tokio::time::timeout(std::time::Duration::from_secs(5), read).await;
        let kind = outcome
            .expect("the read gives up by itself")
            .err()
            .map(|e| e.kind());
        assert_eq!(kind, Some(io::ErrorKind::TimedOut));
    }

    #[tokio::test]
    async fn a_cut_or_garbled_frame_is_an_error() {
        let mut cut: &[u8] = &[0, 0, 0, 9, b'['];
        let error = read::<_, u64>(&mut cut, 100).await.err();
        assert_eq!(error.map(|e| e.kind()), Some(io::ErrorKind::UnexpectedEof));
        let mut garbled: &[u8] = &[0, 0, 0, 2, b'{', b'x'];
        let error = read::<_, u64>(&mut garbled, 100).await.err();
        assert_eq!(error.map(|e| e.kind()), Some(io::ErrorKind::InvalidData));
    }
}
