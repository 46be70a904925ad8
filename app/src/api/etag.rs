//! Entity tags (`ETag`, `If-None-Match`, `If-Match`): a strong tag is the FNV-1a hash of
//! an answer's JSON, so equal JSON always has the same tag, on every node.
//!
//! For one object the tag is [`of`] the object (what a `GET` of it answers); for a page
//! of a list it is the hash of the page's bytes. A job status change with `If-Match`
//! carries the tags it accepts into the log, and the state compares them with the job
//! as it is when the change is applied: two operators who both read the same job and
//! both move it get one success and one `412`.

use crate::digest::fnv1a;
use serde::Serialize;

/// The tag of `value`'s JSON (what the API answers for it).
pub fn of<T: Serialize>(value: &T) -> u64 {
    // Serialising the farm's plain structs cannot fail.
    of_bytes(&serde_json::to_vec(value).unwrap_or_default())
}

/// The tag of an answer's bytes.
pub fn of_bytes(json: &[u8]) -> u64 {
    fnv1a(&[json])
}

/// How a tag is written in a header: `"0123456789abcdef"`.
pub fn header_value(tag: u64) -> String {
    format!("\"{tag:016x}\"")
}

/// What an `If-Match` / `If-None-Match` header asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// `*`: any current version.
    Any,
    /// One of these strong tags (weak ones, `W/"…"`, and tags Raft3D never makes match
    /// nothing).
    OneOf(Vec<u64>),
}

impl Condition {
    /// Parses a header value: `*` or a comma-separated list of entity tags.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        if raw == "*" {
            return Some(Self::Any);
        }
        let mut tags = Vec::new();
        // Empty list elements are ignored (RFC 9110, 5.6.1): an empty header is a list of
        // no tags, which nothing matches.
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (weak, quoted) = match part.strip_prefix("W/") {
                Some(rest) => (true, rest),
                None => (false, part),
            };
            let inner = quoted.strip_prefix('"')?.strip_suffix('"')?;
            if inner.contains('"') {
                return None;
            }
            let ours = inner.len() == 16 && inner.bytes().all(|b| b.is_ascii_hexdigit());
            if let (false, true) = (weak, ours) {
                tags.push(u64::from_str_radix(inner, 16).ok()?);
            }
        }
        Some(Self::OneOf(tags))
    }

    pub fn matches(&self, tag: u64) -> bool {
        match self {
            Self::Any => true,
            Self::OneOf(tags) => tags.contains(&tag),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_parse_lists_star_and_ignore_weak_and_foreign_tags() {
        let tag = 0x0123_4567_89ab_cdef;
        let ours = header_value(tag);
        assert_eq!(ours, "\"0123456789abcdef\"");
        assert_eq!(Condition::parse(&ours), Some(Condition::OneOf(vec![tag])));
        assert_eq!(Condition::parse(" * "), Some(Condition::Any));
        let list = format!("\"xyz\", W/{ours}, {ours}");
        assert_eq!(Condition::parse(&list), Some(Condition::OneOf(vec![tag])));
        assert!(!Condition::parse(&format!("W/{ours}"))
            .expect("valid")
            .matches(tag));
        assert_eq!(Condition::parse(""), Some(Condition::OneOf(vec![])));
        assert_eq!(
            Condition::parse(&format!(", {ours},")),
            Some(Condition::OneOf(vec![tag]))
        );
        for bad in ["abc", "\"unterminated", "\"a\"b\""] {
            assert_eq!(Condition::parse(bad), None, "{bad:?}");
        }
        assert!(Condition::Any.matches(7));
    }

    #[test]
    fn equal_json_has_equal_tags() {
        assert_eq!(of(&vec![1, 2]), of_bytes(b"[1,2]"));
        assert_ne!(of(&vec![1, 2]), of(&vec![2, 1]));
    }
}
