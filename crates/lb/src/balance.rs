//! Backend selection: round robin, smooth weighted round robin, least
//! connections, power-of-two-choices and Maglev consistent hashing. Pure
//! decisions over a slice of eligible [`Candidate`]s: no I/O, no clock; the
//! only state is the rotation counters and the cached Maglev table.
//! Main types: [`Balancer`], [`Candidate`]; [`maglev_table`] and
//! [`stable_hash`] are public so persistence and tests share them.

use crate::config::Algorithm;
use crate::limits::MAGLEV_TABLE_SIZE;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// One eligible backend as the balancer sees it.
#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    /// Position in the pool (stable while the pool's backend list is).
    pub slot: usize,
    /// Effective weight (after slow start), ≥ 1.
    pub weight: u32,
    /// Connections (L4) or in-flight requests (L7) right now.
    pub active: u64,
    /// `stable_hash` of the backend name: its identity on the hash ring.
    pub id_hash: u64,
}

pub struct Balancer {
    algorithm: Algorithm,
    rotation: AtomicUsize,
    rng: AtomicU64,
    /// Smooth WRR "current weight" per pool slot.
    wrr: Mutex<Vec<i64>>,
    /// Maglev table for the member set it was built from.
    maglev: Mutex<Maglev>,
}

#[derive(Default)]
struct Maglev {
    members: Vec<u64>,
    table: Vec<u16>,
}

impl Balancer {
    pub fn new(algorithm: Algorithm) -> Self {
        Balancer {
            algorithm,
            rotation: AtomicUsize::new(0),
            rng: AtomicU64::new(0x853c_49e6_748f_ea9b),
            wrr: Mutex::new(Vec::new()),
            maglev: Mutex::new(Maglev::default()),
        }
    }

    /// Index into `cands` of the chosen backend; `hash` (persistence or
    /// consistent-hash key) selects by Maglev whatever the algorithm.
    pub fn pick(&self, cands: &[Candidate], hash: Option<u64>) -> Option<usize> {
        if cands.is_empty() {
            return None;
        }
        if let Some(key) = hash {
            return Some(self.pick_hash(cands, key));
        }
        Some(match self.algorithm {
            Algorithm::RoundRobin | Algorithm::ConsistentHash => {
                self.rotation.fetch_add(1, Ordering::Relaxed) % cands.len()
            }
            Algorithm::WeightedRoundRobin => self.pick_wrr(cands),
            Algorithm::LeastConnections => self.pick_least(cands),
            Algorithm::PowerOfTwo => self.pick_p2c(cands),
        })
    }

    /// Nginx's smooth weighted round robin: even interleaving, exact shares.
    fn pick_wrr(&self, cands: &[Candidate]) -> usize {
        let mut current = self.wrr.lock().unwrap_or_else(|e| e.into_inner());
        let needed = cands.iter().map(|c| c.slot + 1).max().unwrap_or(0);
        if current.len() < needed {
            current.resize(needed, 0);
        }
        let total: i64 = cands.iter().map(|c| i64::from(c.weight)).sum();
        let mut best = 0;
        for (i, c) in cands.iter().enumerate() {
            current[c.slot] += i64::from(c.weight);
            if current[c.slot] > current[cands[best].slot] {
                best = i;
            }
        }
        current[cands[best].slot] -= total;
        best
    }

    /// Lowest active/weight; ties broken by rotation so equal backends share.
    fn pick_least(&self, cands: &[Candidate]) -> usize {
        let start = self.rotation.fetch_add(1, Ordering::Relaxed) % cands.len();
        let mut best = start;
        for k in 1..cands.len() {
            let i = (start + k) % cands.len();
            if less_loaded(&cands[i], &cands[best]) {
                best = i;
            }
        }
        best
    }

    fn pick_p2c(&self, cands: &[Candidate]) -> usize {
        if cands.len() == 1 {
            return 0;
        }
        let r = splitmix(self.rng.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed));
        let n = cands.len() as u64;
        let a = (r % n) as usize;
        let b = ((a as u64 + 1 + (r >> 32) % (n - 1)) % n) as usize;
        if less_loaded(&cands[b], &cands[a]) {
            b
        } else {
            a
        }
    }

    fn pick_hash(&self, cands: &[Candidate], key: u64) -> usize {
        let mut m = self.maglev.lock().unwrap_or_else(|e| e.into_inner());
        if m.members.len() != cands.len()
            || m.members.iter().zip(cands).any(|(a, c)| *a != c.id_hash)
        {
            m.members = cands.iter().map(|c| c.id_hash).collect();
            m.table = maglev_table(&m.members, MAGLEV_TABLE_SIZE);
        }
        usize::from(m.table[(splitmix(key) % m.table.len() as u64) as usize])
    }
}

fn less_loaded(a: &Candidate, b: &Candidate) -> bool {
    u128::from(a.active) * u128::from(b.weight) < u128::from(b.active) * u128::from(a.weight)
}

/// Maglev lookup table (Eisenbud et al., NSDI 2016): each member fills
/// slots in its own permutation order, so removing one member moves only
/// (about) the keys that were on it. Entries index `members`.
pub fn maglev_table(members: &[u64], size: usize) -> Vec<u16> {
    const EMPTY: u16 = u16::MAX;
    let mut table = vec![EMPTY; size];
    if members.is_empty() {
        return Vec::new();
    }
    let m = size as u64;
    let perms: Vec<(u64, u64)> = members
        .iter()
        .map(|&h| {
            let offset = splitmix(h) % m;
            let skip = splitmix(h ^ 0x5851_f42d_4c95_7f2d) % (m - 1) + 1;
            (offset, skip)
        })
        .collect();
    let mut next = vec![0u64; members.len()];
    let mut filled = 0;
    'outer: loop {
        for (i, &(offset, skip)) in perms.iter().enumerate() {
            loop {
                let c = ((offset + next[i] * skip) % m) as usize;
                next[i] += 1;
                if table[c] == EMPTY {
                    table[c] = i as u16;
                    filled += 1;
                    break;
                }
            }
            if filled == size {
                break 'outer;
            }
        }
    }
    table
}

/// FNV-1a: stable across processes and releases (unlike `DefaultHasher`),
/// so persistence survives restarts of the lb itself.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    splitmix(h)
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cands(weights: &[u32]) -> Vec<Candidate> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| Candidate {
                slot: i,
                weight: w,
                active: 0,
                id_hash: stable_hash(format!("backend-{i}").as_bytes()),
            })
            .collect()
    }

    fn counts(b: &Balancer, c: &[Candidate], n: usize) -> Vec<usize> {
        let mut out = vec![0; c.len()];
        for _ in 0..n {
            out[b.pick(c, None).unwrap()] += 1;
        }
        out
    }

    #[test]
    fn round_robin_is_even() {
        let b = Balancer::new(Algorithm::RoundRobin);
        assert_eq!(counts(&b, &cands(&[1, 5, 1]), 300), vec![100, 100, 100]);
    }

    #[test]
    fn weighted_round_robin_is_exact_and_interleaved() {
        let b = Balancer::new(Algorithm::WeightedRoundRobin);
        let c = cands(&[5, 1, 1]);
        let seq: Vec<usize> = (0..7).map(|_| b.pick(&c, None).unwrap()).collect();
        assert_eq!(seq, vec![0, 0, 1, 0, 2, 0, 0]);
        assert_eq!(counts(&b, &c, 700), vec![500, 100, 100]);
    }

    #[test]
    fn least_connections_prefers_idle_per_weight() {
        let b = Balancer::new(Algorithm::LeastConnections);
        let mut c = cands(&[1, 1, 2]);
        c[0].active = 3;
        c[1].active = 1;
        c[2].active = 3; // 1.5 per weight
        for _ in 0..10 {
            assert_eq!(b.pick(&c, None), Some(1));
        }
    }

    #[test]
    fn power_of_two_never_picks_the_most_loaded_of_two() {
        let b = Balancer::new(Algorithm::PowerOfTwo);
        let mut c = cands(&[1, 1]);
        c[0].active = 10;
        for _ in 0..50 {
            assert_eq!(b.pick(&c, None), Some(1));
        }
        let c = cands(&[1, 1, 1, 1]);
        let n = counts(&b, &c, 4000);
        assert!(n.iter().all(|&x| x > 700), "{n:?}");
    }

    #[test]
    fn empty_pool_picks_nothing() {
        let b = Balancer::new(Algorithm::PowerOfTwo);
        assert_eq!(b.pick(&[], None), None);
        assert_eq!(b.pick(&[], Some(3)), None);
    }

    /// Fraction of keys that move when one of `n` backends leaves: the ideal
    /// is 1/n (only its own keys); Maglev adds a little extra churn.
    fn remapped_fraction(n: usize) -> f64 {
        let members: Vec<u64> = (0..n)
            .map(|i| stable_hash(format!("b{i}").as_bytes()))
            .collect();
        let before = maglev_table(&members, MAGLEV_TABLE_SIZE);
        let gone = n / 2;
        let rest: Vec<u64> = members
            .iter()
            .copied()
            .enumerate()
            .filter(|(i, _)| *i != gone)
            .map(|(_, h)| h)
            .collect();
        let after = maglev_table(&rest, MAGLEV_TABLE_SIZE);
        let keys = 100_000u64;
        let moved = (0..keys)
            .filter(|k| {
                let slot = (splitmix(*k) % MAGLEV_TABLE_SIZE as u64) as usize;
                let old = members[usize::from(before[slot])];
                let new = rest[usize::from(after[slot])];
                old != new
            })
            .count();
        moved as f64 / keys as f64
    }

    #[test]
    fn maglev_remaps_about_one_nth_of_keys_when_a_backend_leaves() {
        for n in [3usize, 5, 10, 20] {
            let f = remapped_fraction(n);
            let ideal = 1.0 / n as f64;
            eprintln!("maglev n={n}: remapped {f:.4} of keys (ideal {ideal:.4})");
            assert!(
                f >= ideal * 0.9 && f <= ideal * 1.35,
                "n={n}: {f} vs {ideal}"
            );
        }
    }

    #[test]
    fn maglev_spreads_keys_evenly() {
        let b = Balancer::new(Algorithm::ConsistentHash);
        let c = cands(&[1; 8]);
        let mut n = [0usize; 8];
        for k in 0..80_000u64 {
            n[b.pick(&c, Some(stable_hash(&k.to_le_bytes()))).unwrap()] += 1;
        }
        assert!(n.iter().all(|&x| (9_000..11_000).contains(&x)), "{n:?}");
    }
}
