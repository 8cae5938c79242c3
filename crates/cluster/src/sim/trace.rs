//! The run's fingerprint: every delivered message and every observed node
//! state folded, in order, into one FNV-1a hash. Two runs of one seed must
//! end with the same hash and count, which is what "replays exactly" means.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trace {
    pub hash: u64,
    pub events: u64,
}

impl Default for Trace {
    fn default() -> Self {
        Trace {
            hash: 0xcbf2_9ce4_8422_2325,
            events: 0,
        }
    }
}

impl Trace {
    /// Folds one event, given as its parts, into the trace.
    pub fn record(&mut self, parts: &[&[u8]]) {
        for part in parts {
            for byte in (part.len() as u64).to_le_bytes().iter().chain(part.iter()) {
                self.hash ^= u64::from(*byte);
                self.hash = self.hash.wrapping_mul(0x0100_0000_01b3);
            }
        }
        self.events += 1;
    }
}

/// A fixed, seedless hash of some bytes (for states and message bodies).
pub fn digest(bytes: &[u8]) -> u64 {
    let mut t = Trace::default();
    t.record(&[bytes]);
    t.hash
}
