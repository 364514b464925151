//! The e-mails seen so far in a file, as a fixed-size Bloom filter: it flags
//! the rows that may repeat an earlier address, so the duplicate check in SQL
//! looks at those few rows instead of grouping the whole file by e-mail.

use std::hash::{BuildHasher, Hasher};

/// 2^26 bits (8 MiB) whatever the file's size, so memory stays flat: with
/// three probes, about 100 rows of a 1M-row file are flagged wrongly, about
/// 1% of a 5M-row file. A flag is only a hint: SQL decides, so a wrong flag
/// costs a little time and a missed duplicate cannot happen (a Bloom filter
/// has no false negatives).
const BITS_LOG2: u32 = 26;
const PROBES: u64 = 3;

pub struct Seen {
    bits: Vec<u64>,
    hasher: std::hash::BuildHasherDefault<std::hash::DefaultHasher>,
    flagged: u64,
}

impl Default for Seen {
    fn default() -> Self {
        Seen { bits: vec![0; 1 << (BITS_LOG2 - 6)], hasher: Default::default(), flagged: 0 }
    }
}

impl Seen {
    /// Records `email`; true if it may have been seen before.
    pub fn insert(&mut self, email: &str) -> bool {
        let mut h = self.hasher.build_hasher();
        h.write(email.as_bytes());
        let hash = h.finish();
        // Double hashing: probe i is h1 + i * h2 (Kirsch and Mitzenmacher).
        let (h1, h2) = (hash, hash.rotate_left(32) | 1);
        let mask = (1u64 << BITS_LOG2) - 1;
        let mut present = true;
        for i in 0..PROBES {
            let bit = h1.wrapping_add(i.wrapping_mul(h2)) & mask;
            let (word, offset) = ((bit >> 6) as usize, bit & 63);
            if self.bits[word] & (1 << offset) == 0 {
                present = false;
                self.bits[word] |= 1 << offset;
            }
        }
        self.flagged += u64::from(present);
        present
    }

    /// Rows flagged so far.
    pub fn flagged(&self) -> u64 {
        self.flagged
    }
}

#[cfg(test)]
mod tests {
    use super::Seen;

    #[test]
    fn a_repeated_address_is_always_flagged_and_distinct_ones_rarely() {
        let mut seen = Seen::default();
        for i in 0..100_000 {
            seen.insert(&format!("person.{i}@example.com"));
        }
        let wrong = seen.flagged();
        assert!(wrong < 20, "{wrong} distinct addresses flagged");
        for i in (0..100_000).step_by(7) {
            assert!(seen.insert(&format!("person.{i}@example.com")), "person.{i} repeated but not flagged");
        }
    }
}
