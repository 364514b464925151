//! The e-mails seen so far in a file, as a fixed-size Bloom filter: it flags
//! the rows that may repeat an earlier address, so the duplicate check in SQL
//! looks at those few rows instead of grouping the whole file by e-mail.

use std::hash::{BuildHasher, Hasher};

/// 2^17 blocks of 512 bits (8 MiB) whatever the file's size, so memory
/// stays flat. Each e-mail sets three bits within one block, a cache line
/// (a "blocked" Bloom filter: one cache miss per row instead of three).
/// About 150 rows of a 1M-row file are flagged wrongly, about 2% of a
/// 5M-row file's. A flag is only a hint: SQL decides, so a wrong flag costs
/// a little time and a missed duplicate cannot happen (a Bloom filter has no
/// false negatives).
const BLOCKS_LOG2: u32 = 17;
const PROBES: u32 = 3;

pub struct Seen {
    blocks: Vec<[u64; 8]>,
    hasher: std::hash::BuildHasherDefault<std::hash::DefaultHasher>,
    flagged: u64,
}

impl Default for Seen {
    fn default() -> Self {
        Seen { blocks: vec![[0; 8]; 1 << BLOCKS_LOG2], hasher: Default::default(), flagged: 0 }
    }
}

impl Seen {
    /// Records `email`; true if it may have been seen before.
    pub fn insert(&mut self, email: &str) -> bool {
        let mut h = self.hasher.build_hasher();
        h.write(email.as_bytes());
        let hash = h.finish();
        let block = &mut self.blocks[(hash & ((1 << BLOCKS_LOG2) - 1)) as usize];
        // The bits above the block index: three 9-bit positions in the block.
        let mut rest = hash >> BLOCKS_LOG2;
        let mut present = true;
        for _ in 0..PROBES {
            let bit = (rest & 511) as usize;
            rest >>= 9;
            let (word, mask) = (bit >> 6, 1u64 << (bit & 63));
            if block[word] & mask == 0 {
                present = false;
                block[word] |= mask;
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
