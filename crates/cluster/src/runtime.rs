//! The async runtime openraft runs on: tokio, except for randomness. The
//! only random choices openraft makes (election timeouts, tick phase) come
//! from [`TandemRuntime::thread_rng`], which draws from a per-thread seed
//! chain: seeded from the OS in production, from the simulation's seed by
//! [`seed_thread_rng`], so one seed replays a whole simulated run.
//!
//! The other source of chance is tokio's `watch`, which wakes waiters in a
//! random order; openraft gets [`crate::watch::FifoWatch`] instead.
//! Everything else delegates to tokio.

#![allow(deprecated)] // openraft re-exports TokioRuntime under a deprecation note; it is the same type.

use openraft::async_runtime::AsyncRuntime;
use openraft::impls::TokioRuntime;
use openraft::OptionalSend;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use std::cell::Cell;
use std::future::Future;
use std::time::Duration;

thread_local! {
    /// The next seed of this thread's chain; `None` until first use, then
    /// taken from the OS unless the simulation set it.
    static SEED: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Makes every random draw openraft makes on this thread from now on a
/// function of `seed`. The simulation calls it once per run, on the thread
/// of its current-thread runtime, so all nodes draw from one chain in the
/// order the (deterministic) scheduler polls them.
pub fn seed_thread_rng(seed: u64) {
    SEED.with(|s| s.set(Some(seed)));
}

/// Returns the current seed and advances the chain (SplitMix64's mixer: a
/// bijection, so the chain never collapses).
fn next_seed() -> u64 {
    SEED.with(|s| {
        let seed = s.get().unwrap_or_else(rand::random);
        let z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        let z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        s.set(Some(z ^ (z >> 31)));
        seed
    })
}

/// A random number from this thread's chain (so the simulation replays
/// it from its seed): for ids that must differ between daemon lives.
pub fn random_u64() -> u64 {
    next_seed()
}

/// tokio with a seedable `thread_rng`; the `AsyncRuntime` of [`crate::types::TypeConfig`].
#[derive(Debug)]
pub struct TandemRuntime(TokioRuntime);

impl AsyncRuntime for TandemRuntime {
    type JoinError = <TokioRuntime as AsyncRuntime>::JoinError;
    type JoinHandle<T: OptionalSend + 'static> = <TokioRuntime as AsyncRuntime>::JoinHandle<T>;
    type Sleep = <TokioRuntime as AsyncRuntime>::Sleep;
    type Instant = <TokioRuntime as AsyncRuntime>::Instant;
    type TimeoutError = <TokioRuntime as AsyncRuntime>::TimeoutError;
    type Timeout<R, T: Future<Output = R> + OptionalSend> =
        <TokioRuntime as AsyncRuntime>::Timeout<R, T>;
    type ThreadLocalRng = SmallRng;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        TokioRuntime::spawn(future)
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        TokioRuntime::sleep(duration)
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        TokioRuntime::sleep_until(deadline)
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(
        duration: Duration,
        future: F,
    ) -> Self::Timeout<R, F> {
        TokioRuntime::timeout(duration, future)
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(
        deadline: Self::Instant,
        future: F,
    ) -> Self::Timeout<R, F> {
        TokioRuntime::timeout_at(deadline, future)
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        TokioRuntime::is_panic(join_error)
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        SmallRng::seed_from_u64(next_seed())
    }

    type Mpsc = <TokioRuntime as AsyncRuntime>::Mpsc;
    type Watch = crate::watch::FifoWatch;
    type Oneshot = <TokioRuntime as AsyncRuntime>::Oneshot;
    type Mutex<T: OptionalSend + 'static> = <TokioRuntime as AsyncRuntime>::Mutex<T>;

    fn new(threads: usize) -> Self {
        TandemRuntime(TokioRuntime::new(threads))
    }

    fn block_on<F, T>(&mut self, future: F) -> T
    where
        F: Future<Output = T>,
    {
        self.0.block_on(future)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;

    #[test]
    fn one_seed_gives_one_sequence_of_draws() {
        let draws = |seed| {
            seed_thread_rng(seed);
            (0..4)
                .map(|_| TandemRuntime::thread_rng().random_range(300..500u64))
                .collect::<Vec<_>>()
        };
        assert_eq!(draws(7), draws(7));
        assert_ne!(draws(7), draws(8));
    }
}
