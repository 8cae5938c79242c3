//! The lease rule on every data node: a node that cannot hear a quorum,
//! or the DC, for `lease_ms - margin` (round trips it started; see
//! [`holds_lease`]) stops every resource it runs, all at once, unless
//! `no-quorum-policy` is `freeze` or `ignore`. The DC recovers those
//! resources only after the node has been silent for `lease_ms + margin`,
//! so the node has twice the margin to finish its stops before anything
//! starts elsewhere (measured in namespaces under load: an IPaddr2 stop
//! took up to 0.65 s). When the node hears a quorum again (or first starts), it
//! forgets its recorded history so the DC probes what really runs.
//!
//! With `watchdog` set, the node keeps a Linux watchdog device (softdog or
//! hardware) fed while it has quorum or holds nothing; a node that lost
//! quorum and could not stop its resources stops feeding it and is reset.

use crate::executor::LocalExecutor;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tandem_cluster::{ClusterNode, Command};

/// How often the node checks its quorum.
const CHECK_EVERY: Duration = Duration::from_millis(25);

/// Runs until `shutdown` resolves.
pub async fn watch(
    node: Arc<ClusterNode>,
    executor: Arc<LocalExecutor>,
    watchdog: Option<PathBuf>,
    margin_ms: u64,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut dog = watchdog.and_then(|path| match std::fs::OpenOptions::new().write(true).open(&path) {
        Ok(f) => {
            tracing::info!("feeding the watchdog {}", path.display());
            Some(f)
        }
        Err(e) => {
            tracing::error!("cannot open the watchdog {}: {e}; self-fencing falls back to stopping resources", path.display());
            None
        }
    });
    let mut forget_history = true;
    let mut stuck = false;
    let mut tick = tokio::time::interval(CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            _ = tick.tick() => {}
        }
        let view = node.view();
        if holds_lease(&view, view.lease_ms.saturating_sub(margin_ms)) {
            stuck = false;
            if forget_history && view.dc_id.is_some() {
                let me = executor.node_name().to_string();
                let forget = Command::ForgetHistory {
                    node: Some(me),
                    resource: None,
                };
                forget_history = node.propose(forget).await.is_err();
            }
        } else if executor.holds_resources() && keeps_nothing_without_quorum(&node) {
            tracing::warn!(
                votes = view.votes_alive,
                needed = view.votes_needed,
                dc = ?view.dc,
                "lease lost (a quorum or the DC not heard within {} ms): stopping every resource here",
                view.lease_ms.saturating_sub(margin_ms)
            );
            let failed = executor.stop_everything(view.term).await;
            forget_history = true;
            if failed > 0 {
                tracing::error!("{failed} resources did not stop after losing quorum");
                stuck = true;
            }
        }
        if let Some(f) = dog.as_mut() {
            if !stuck {
                let _ = f.write_all(b"\0").and_then(|_| f.flush());
            }
        }
    }
    if let Some(mut f) = dog {
        // The magic close: a clean shutdown disarms the watchdog.
        let _ = f.write_all(b"V");
    }
}

/// A node keeps its resources while it hears a quorum and the DC, by
/// round trips started within `within_ms`: the DC recovers the resources
/// of a node it has not heard for the lease plus a margin, so a node cut
/// off from the DC alone must let go too, even if it still hears other
/// nodes. With no DC known (an election) nobody can recover them, so they
/// stay.
fn holds_lease(view: &tandem_cluster::MembershipView, within_ms: u64) -> bool {
    let heard = |v: &tandem_cluster::PeerView| {
        v.id == view.node_id || v.last_heard_ms.is_some_and(|ms| ms <= within_ms)
    };
    let votes = view.voters.iter().filter(|v| heard(v)).count();
    let dc_heard = match view.dc_id {
        None => true,
        Some(dc) => view.voters.iter().any(|v| v.id == dc && heard(v)),
    };
    votes >= view.votes_needed && dc_heard
}

/// Whether `no-quorum-policy` asks for resources to go when quorum does.
fn keeps_nothing_without_quorum(node: &ClusterNode) -> bool {
    let state = node.replicated();
    let policy = tandem_model::native::parse_toml(&state.config_text)
        .ok()
        .and_then(|c| c.config.option("no-quorum-policy").map(str::to_string));
    !matches!(policy.as_deref(), Some("freeze" | "ignore"))
}
