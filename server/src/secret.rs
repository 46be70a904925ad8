//! The cluster secret, and sealing printers' API keys with it.
//!
//! A printer's API key must reach whichever node drives the printer after any failover,
//! so it is replicated, and hence in every log entry, snapshot and state file that holds
//! the connection. It is never stored in the clear: the node that receives it seals it
//! with ChaCha20-Poly1305 under the *cluster secret*, 256 random bits that `raft3d init`
//! writes into every node directory (`cluster.secret`, mode 0600) and nowhere else in the
//! cluster's data. A copy of a data directory, a snapshot or a backup without the node
//! directory reveals nothing; the printer's id is the associated data, so a sealed key
//! cannot be moved to another printer.
//!
//! Owns: the file's format and the sealing. Must not touch: the farm (callers store the
//! sealed value), or any log line (neither the secret nor an opened key is ever printed).

use app::domain::SealedSecret;
use app::Id;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use std::path::Path;

/// The cluster secret's file in a node directory (and in `raft3d init`'s directory).
pub const SECRET_FILE: &str = "cluster.secret";

const KEY_LEN: usize = 32;

/// Why a secret could not be made, read, sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{0} does not hold a cluster secret (64 hex digits)")]
    Malformed(std::path::PathBuf),
    #[error("no random bytes from the system")]
    Random,
    /// Sealed under another secret, for another printer, or damaged.
    #[error("the stored key cannot be opened with this node's cluster secret (another cluster's secret, or damaged)")]
    Open,
}

/// What the fingerprint key is derived with: a key of its own, so no tag it makes can
/// ever be related to what the sealing key does.
const FINGERPRINT_LABEL: &[u8] = b"raft3d idempotency fingerprint v1";

/// The cluster secret, ready to seal and open. Its `Debug` shows nothing of it.
pub struct ClusterSecret {
    key: LessSafeKey,
    /// HMAC-SHA256 key derived from the secret, for [`Self::fingerprint_tag`].
    fingerprint: hmac::Key,
}

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterSecret(..)")
    }
}

impl ClusterSecret {
    /// A new secret, as the hex text of its file.
    pub fn generate() -> Result<String, SecretError> {
        let mut bytes = [0u8; KEY_LEN];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| SecretError::Random)?;
        Ok(hex(&bytes))
    }

    /// Reads `dir/cluster.secret`; `None` when the directory has none (made by a release
    /// before it existed).
    pub fn load(dir: &Path) -> Result<Option<Self>, SecretError> {
        let path = dir.join(SECRET_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(SecretError::Read { path, source }),
        };
        Self::from_hex(text.trim())
            .map(Some)
            .ok_or(SecretError::Malformed(path))
    }

    /// A secret from its 64 hex digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = unhex(text).filter(|b| b.len() == KEY_LEN)?;
        let key = UnboundKey::new(&CHACHA20_POLY1305, &bytes).ok()?;
        let derived = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, &bytes),
            FINGERPRINT_LABEL,
        );
        Some(Self {
            key: LessSafeKey::new(key),
            fingerprint: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()),
        })
    }

    /// A tag that tells two API keys for `printer_id` apart, for a request's idempotency
    /// fingerprint, without the key: an HMAC under a key derived from the secret, so
    /// nobody without the secret can test guesses of the key against a stored
    /// fingerprint.
    pub fn fingerprint_tag(&self, printer_id: &Id, plaintext: &str) -> String {
        let mut context = hmac::Context::with_key(&self.fingerprint);
        // Length-prefixed, so no (id, key) pair runs into another.
        context.update(&(printer_id.as_str().len() as u64).to_be_bytes());
        context.update(printer_id.as_str().as_bytes());
        context.update(plaintext.as_bytes());
        hex(context.sign().as_ref())
    }

    /// Seals `plaintext` (an API key) for printer `printer_id`, under a fresh random
    /// nonce (96 bits: no reuse in any number of keys a farm will ever store).
    pub fn seal(&self, printer_id: &Id, plaintext: &str) -> Result<SealedSecret, SecretError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SecretError::Random)?;
        let mut data = plaintext.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(printer_id.as_str().as_bytes()),
                &mut data,
            )
            .map_err(|_| SecretError::Random)?;
        Ok(SealedSecret {
            nonce: hex(&nonce),
            ciphertext: hex(&data),
        })
    }

    /// Opens what [`Self::seal`] sealed for `printer_id`.
    pub fn open(&self, printer_id: &Id, sealed: &SealedSecret) -> Result<String, SecretError> {
        let nonce: [u8; NONCE_LEN] = unhex(&sealed.nonce)
            .and_then(|n| n.try_into().ok())
            .ok_or(SecretError::Open)?;
        let mut data = unhex(&sealed.ciphertext).ok_or(SecretError::Open)?;
        let plain = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(printer_id.as_str().as_bytes()),
                &mut data,
            )
            .map_err(|_| SecretError::Open)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SecretError::Open)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> ClusterSecret {
        let text = ClusterSecret::generate().expect("random bytes");
        ClusterSecret::from_hex(&text).expect("a secret")
    }

    fn id(raw: &str) -> Id {
        Id::parse(raw).expect("id")
    }

    #[test]
    fn a_sealed_key_opens_only_with_its_secret_and_for_its_printer() {
        let secret = secret();
        let sealed = secret.seal(&id("p1"), "SOMEKEY0123456789").expect("sealed");
        assert!(!sealed.ciphertext.contains("SOMEKEY"));
        assert!(!format!("{sealed:?}{secret:?}").contains("SOMEKEY"));
        assert_eq!(
            secret.open(&id("p1"), &sealed).expect("opens"),
            "SOMEKEY0123456789"
        );
        assert!(matches!(
            secret.open(&id("p2"), &sealed),
            Err(SecretError::Open)
        ));
        assert!(matches!(
            self::secret().open(&id("p1"), &sealed),
            Err(SecretError::Open)
        ));
        let mut damaged = sealed.clone();
        damaged.ciphertext.replace_range(0..2, "00");
        damaged.ciphertext.replace_range(2..4, "11");
        assert!(secret.open(&id("p1"), &damaged).is_err());
        let again = secret.seal(&id("p1"), "SOMEKEY0123456789").expect("sealed");
        assert_ne!(again.nonce, sealed.nonce, "a fresh nonce every time");
    }

    #[test]
    fn a_fingerprint_tag_tells_keys_printers_and_secrets_apart() {
        let secret = secret();
        let tag = secret.fingerprint_tag(&id("p1"), "SOMEKEY0123456789");
        assert_eq!(tag, secret.fingerprint_tag(&id("p1"), "SOMEKEY0123456789"));
        assert!(!tag.contains("SOMEKEY"));
        for other in [
            secret.fingerprint_tag(&id("p1"), "SOMEKEY012345678"),
            secret.fingerprint_tag(&id("p2"), "SOMEKEY0123456789"),
            // The id's length is part of the tag: "p1" + "1KEY" is not "p11" + "KEY".
            secret.fingerprint_tag(&id("p11"), "KEY"),
            self::secret().fingerprint_tag(&id("p1"), "SOMEKEY0123456789"),
        ] {
            assert_ne!(other, tag);
        }
        assert_ne!(
            secret.fingerprint_tag(&id("p1"), "1KEY"),
            secret.fingerprint_tag(&id("p11"), "KEY")
        );
    }

    #[test]
    fn a_secret_file_holds_64_hex_digits() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(ClusterSecret::load(dir.path()).expect("readable").is_none());
        std::fs::write(dir.path().join(SECRET_FILE), "abc\n").expect("write");
        assert!(matches!(
            ClusterSecret::load(dir.path()),
            Err(SecretError::Malformed(_))
        ));
        let text = ClusterSecret::generate().expect("random");
        assert_eq!(text.len(), 64);
        std::fs::write(dir.path().join(SECRET_FILE), format!("{text}\n")).expect("write");
        assert!(ClusterSecret::load(dir.path()).expect("readable").is_some());
    }
}
