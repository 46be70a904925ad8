//! The farm's nouns and their rules. Each type is built only through a validating
//! constructor at the edge ([`crate::api`]); once built, nothing checks it again.

pub mod filament;
pub mod file;
pub mod gcode;
pub mod job;
pub mod printer;
pub mod queue;
pub mod time;
pub mod token;

pub use filament::{Filament, FilamentType};
pub use file::{GcodeFile, Quantity};
pub use job::{Dispatch, JobStatus, PrintJob};
pub use printer::{
    BedWait, Connection, ConnectionKind, Printer, PrinterLive, PrinterState, PrinterStatus,
    SealedSecret, Temperature,
};
pub use queue::{Material, QueuePlace};
pub use time::Timestamp;
pub use token::{AccessRole, ApiToken, TokenView, BOOTSTRAP_TOKEN_ID};

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// Longest id we accept; ids travel in URLs and log entries.
pub const MAX_ID_LEN: usize = 128;
/// Longest free-text field (company, model, colour, file path).
pub const MAX_TEXT_LEN: usize = 1024;
/// Largest weight in grams we accept: a tonne of filament is already absurd; the cap keeps
/// every sum of weights far away from overflow.
pub const MAX_WEIGHT_GRAMS: u64 = 1_000_000_000_000;

/// The id of a printer, filament or print job: 1–128 URL-safe characters
/// (`A–Z a–z 0–9 - _ . ~`), so it can stand in a path segment unescaped.
///
/// Shared text (`Arc<str>`): a farm holds each id many times (map keys, every job's
/// printer and spool), and a clone is a reference count, not a copy. Serialised as a
/// plain string; deserialising validates it as [`Id::parse`] does, so an id read from the
/// log, a snapshot, a peer or an API answer holds the same promise as one from a request.
/// (Request bodies do not come this way: `crate::api` parses them field by field, to name
/// the field in its errors.) Hence the rules may only ever be loosened: a stricter parse
/// would refuse logs and snapshots already written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct Id(Arc<str>);

impl Serialize for Id {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl TryFrom<String> for Id {
    type Error = IdError;

    fn try_from(raw: String) -> Result<Self, IdError> {
        Self::parse(&raw)
    }
}

/// Why a string is not an acceptable id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {MAX_ID_LEN} characters")]
    TooLong,
    #[error("may only contain letters, digits, '-', '_', '.' and '~'")]
    BadCharacter,
}

impl Id {
    /// Validates a client-supplied or server-generated id.
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        if raw.is_empty() {
            return Err(IdError::Empty);
        }
        if raw.len() > MAX_ID_LEN {
            return Err(IdError::TooLong);
        }
        let url_safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~');
        if !raw.chars().all(url_safe) || raw == "." || raw == ".." {
            return Err(IdError::BadCharacter);
        }
        Ok(Self(raw.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Control characters, and the bidirectional embeddings, overrides and isolates
/// (U+202A-U+202E, U+2066-U+2069).
fn is_forbidden_in_text(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A trimmed, non-empty, bounded piece of text (company, model, colour, file path).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Text(String);

/// Why a string is not acceptable text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {MAX_TEXT_LEN} bytes")]
    TooLong,
    /// A control character (a line break, an escape) or a bidirectional override or
    /// isolate: they let stored text rewrite what a terminal or a page shows next to it
    /// ("Trojan source": `U+202E` prints the rest of a line backwards).
    #[error("must not contain control or bidirectional-override characters (found U+{0:04X})")]
    ForbiddenCharacter(u32),
}

impl Text {
    /// Trims surrounding white space; what is left must be non-empty and bounded.
    pub fn parse(raw: &str) -> Result<Self, TextError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(TextError::Empty);
        }
        if trimmed.len() > MAX_TEXT_LEN {
            return Err(TextError::TooLong);
        }
        if let Some(c) = trimmed.chars().find(|&c| is_forbidden_in_text(c)) {
            return Err(TextError::ForbiddenCharacter(u32::from(c)));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_refuses_control_and_bidi_override_characters() {
        for bad in [
            "a\nb",
            "bell\u{7}",
            "esc\u{1b}[31m",
            "abc\u{202E}fdp.exe",
            "x\u{2066}y",
        ] {
            assert!(
                matches!(Text::parse(bad), Err(TextError::ForbiddenCharacter(_))),
                "{bad:?} should be refused"
            );
        }
        for good in [
            "Prusa MK4",
            "Bambu Lab X1-Carbon",
            "ÄÖÜ ß",
            "日本語",
            "שלום",
            "👍",
        ] {
            assert!(Text::parse(good).is_ok(), "{good:?} should be accepted");
        }
    }

    #[test]
    fn ids_must_be_url_safe_and_bounded() {
        for good in ["1", "p-1", "Prusa_MK4.2", "a~b", &"x".repeat(MAX_ID_LEN)] {
            assert!(Id::parse(good).is_ok(), "{good} should be accepted");
        }
        let cases = [
            ("", IdError::Empty),
            ("a/b", IdError::BadCharacter),
            ("a b", IdError::BadCharacter),
            ("é", IdError::BadCharacter),
            ("..", IdError::BadCharacter),
            ("?x", IdError::BadCharacter),
        ];
        for (bad, want) in cases {
            assert_eq!(Id::parse(bad), Err(want), "{bad:?}");
        }
        assert_eq!(
            Id::parse(&"x".repeat(MAX_ID_LEN + 1)),
            Err(IdError::TooLong)
        );
    }

    #[test]
    fn ids_are_validated_when_deserialised() {
        let id: Id = serde_json::from_str(r#""p-1""#).expect("valid id");
        assert_eq!(id.as_str(), "p-1");
        let cases = [
            (r#""""#, IdError::Empty),
            (r#""a/b""#, IdError::BadCharacter),
            (r#"".."""#, IdError::BadCharacter),
        ];
        for (bad, why) in cases {
            let error = serde_json::from_str::<Id>(bad).expect_err(bad);
            assert!(error.to_string().starts_with(&why.to_string()), "{error}");
        }
    }

    #[test]
    fn text_is_trimmed_and_must_not_be_blank() {
        assert_eq!(Text::parse("  Prusa ").map(|t| t.0), Ok("Prusa".to_owned()));
        assert_eq!(Text::parse("   "), Err(TextError::Empty));
        assert_eq!(Text::parse(""), Err(TextError::Empty));
        assert_eq!(
            Text::parse(&"y".repeat(MAX_TEXT_LEN + 1)),
            Err(TextError::TooLong)
        );
    }
}
