//! A stable 64-bit hash (FNV-1a) for fingerprints and state digests.
//!
//! `std`'s hasher is randomly seeded per process, so it cannot be compared across nodes;
//! FNV-1a is tiny, deterministic and good enough to detect divergence and to tell two
//! request bodies apart (it is not a defence against a malicious collision, which a client
//! could only use against its own idempotency key).

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a over the given byte slices, in order.
pub fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash = OFFSET;
    for part in parts {
        for byte in *part {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(PRIME);
        }
        // A separator so that ("ab", "c") and ("a", "bc") differ.
        hash ^= 0xff;
        hash = hash.wrapping_mul(PRIME);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_stable_and_separates_parts() {
        assert_eq!(fnv1a(&[b"abc"]), fnv1a(&[b"abc"]));
        assert_ne!(fnv1a(&[b"ab", b"c"]), fnv1a(&[b"a", b"bc"]));
        assert_ne!(fnv1a(&[b"a"]), fnv1a(&[b"b"]));
    }
}
