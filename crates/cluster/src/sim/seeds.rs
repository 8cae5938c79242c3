//! Running many seeds, and the settings of a simulated node.

use crate::{Member, NodeId, NodeSettings, Timing, TlsFiles};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// A seed's thread stack: simulations run the scheduler inline.
const STACK_BYTES: usize = 64 << 20;

/// Runs `run` for every seed on all cores (each seed on one thread, so
/// its paused runtime stays deterministic), a panic counted as a failure;
/// results in seed order.
pub fn run_seeds<T: Send>(
    seeds: &[u64],
    run: impl Fn(u64) -> Result<T, String> + Sync,
) -> Vec<(u64, Result<T, String>)> {
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..threads.min(seeds.len()) {
            std::thread::Builder::new()
                .stack_size(STACK_BYTES)
                .spawn_scoped(scope, || loop {
                    let Some(&seed) = seeds.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        return;
                    };
                    let result =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(seed)))
                            .unwrap_or_else(|panic| {
                                let text = panic
                                    .downcast_ref::<String>()
                                    .cloned()
                                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                                    .unwrap_or_default();
                                Err(format!("panicked: {text}"))
                            });
                    results
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((seed, result));
                })
                .expect("a seed thread");
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    results.sort_by_key(|(seed, _)| *seed);
    results
}

/// A simulated node's settings: no files (its disk is a `MemDisk`, its
/// network a `SimNet`).
pub fn node_settings(id: NodeId, members: &BTreeMap<NodeId, Member>) -> NodeSettings {
    let nowhere = PathBuf::from("/nonexistent/tandem-sim");
    NodeSettings {
        id,
        data_dir: nowhere.clone(),
        listen: "127.0.0.1:0".parse().expect("an address"),
        tls: TlsFiles {
            ca: nowhere.clone(),
            cert: nowhere.clone(),
            key: nowhere,
        },
        members: members.clone(),
        timing: Timing::default(),
        joining: false,
    }
}
