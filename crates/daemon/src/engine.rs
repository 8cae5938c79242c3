//! The controller's decisions, without I/O: facts in (the membership view,
//! the replicated state, the configuration, the time, what the operator
//! confirmed), commands out. [`crate::controller`] carries them out
//! (commits, fences, executor calls, the scheduler run with its budget)
//! and feeds the results back; everything it decides is decided here and
//! tested by the exact commands it returns.
//!
//! One round ([`Engine::round`]), in Pacemaker's order:
//! 1. settle lost nodes ([`crate::settle`]): withdraw confirm-downs made
//!    before this loss, fence, record down, or wait (nothing is scheduled
//!    while a node is unsettled);
//! 2. resolve operations recorded as pending by a DC that is gone: forget
//!    them so the resource is probed;
//! 3. probe every resource without history on every online node;
//! 4. schedule. The scheduler's transition then goes through
//!    [`Engine::planned`] (the repeat guard, shutdown acknowledgements) and
//!    its actions through a [`Dispatch`].

use crate::executor::ExecRequest;
use crate::settle::{self, Decision, LostNode, SettledBy};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
// tokio's clock: the same in production, virtual under a paused runtime.
use tandem_cluster::{Command, MembershipView, NodeStatus, PeerView, Replicated};
use tandem_model::Cluster;
use tandem_scheduler::Action;
use tokio::time::Instant;

/// A failed fence of a lost node is tried again after this long.
pub const FENCE_RETRY: Duration = Duration::from_secs(10);
/// After this many identical transitions that all succeeded without
/// changing anything, the controller backs off (a scheduler/executor
/// disagreement must not spin).
pub const SAME_PLAN_LIMIT: u32 = 3;

/// The node attribute a node sets when it stops cleanly (Pacemaker's): the
/// scheduler moves its resources away.
pub const SHUTDOWN: &str = "shutdown";

/// The transient attribute the DC sets on a node that announced its
/// shutdown once the node runs nothing and the transition that moved its
/// resources is complete (Pacemaker's DC acknowledges a shutdown the same
/// way): the node may exit.
pub const SHUTDOWN_DONE: &str = "#shutdown-done";

/// What one round is decided from.
pub struct Facts<'a> {
    pub view: &'a MembershipView,
    pub state: &'a Replicated,
    pub cluster: &'a Cluster,
    /// Which operator confirmations count ([`ConfirmWatch`]).
    pub confirmations: &'a ConfirmWatch,
    /// The monotonic clock (fence retries).
    pub now: Instant,
    /// Wall-clock milliseconds, for the records it writes.
    pub wall_ms: i64,
}

/// What the controller does this round.
#[derive(Clone, Debug, PartialEq)]
pub enum Round {
    /// Commit these, then decide again: the state they change is what the
    /// next round decides from.
    Commit {
        commands: Vec<Command>,
        why: Vec<String>,
    },
    /// Settle lost nodes: commit `record` (nodes recorded down), fence each
    /// of `fence` (a fence that succeeds records the node down). While
    /// `waiting` is not empty (or a fence fails) nothing is scheduled;
    /// otherwise decide again.
    Settle {
        fence: Vec<String>,
        record: Vec<Command>,
        waiting: Vec<(String, String)>,
        why: Vec<String>,
    },
    /// Probe each `(node, resource)` (a one-shot monitor), record the
    /// results; the next round decides again.
    Probe(Vec<(String, String)>),
    /// Nothing to do until the state changes, for these reasons.
    Wait(Vec<String>),
    /// Run the scheduler and hand its transition to [`Engine::planned`].
    Schedule,
}

/// What to do with a transition the scheduler produced.
#[derive(Clone, Debug, PartialEq)]
pub enum Planned {
    /// Nothing to do; commit these acknowledgements of finished shutdowns
    /// (if any).
    Idle { acknowledge: Vec<Command> },
    /// The same transition ran [`SAME_PLAN_LIMIT`] times and changed
    /// nothing: back off before planning again.
    BackOff { repeated: u32 },
    /// Execute it ([`Dispatch`]).
    Execute,
}

/// What the engine remembers between rounds.
#[derive(Default)]
pub struct Engine {
    /// When each lost node was last fenced (or tried), this loss.
    fence_tried: BTreeMap<String, Instant>,
    /// The last transition's work and how many times in a row it came.
    last_plan: Vec<(String, String, Option<String>, u64)>,
    repeated: u32,
}

impl Engine {
    /// Decides this round.
    pub fn round(&mut self, facts: &Facts) -> Round {
        let lost = self.lost_nodes(facts.view);
        let stale = stale_confirmations(facts, &lost);
        if !stale.is_empty() {
            let why = stale
                .iter()
                .map(|n| format!("{n}: withdrawing an operator's confirm-down made before this loss (or the node is back)"))
                .collect();
            let commands = stale
                .into_iter()
                .map(|node| Command::SetTransient {
                    node,
                    name: crate::lease::CONFIRMED_DOWN.to_string(),
                    value: None,
                })
                .collect();
            return Round::Commit { commands, why };
        }
        if let Some(settle) = self.settle(facts, &lost) {
            return settle;
        }
        let joining = joining_nodes(facts);
        if !joining.is_empty() {
            let why = joining
                .iter()
                .map(|node| format!("{node}: online but its rejoin is not recorded yet: scheduling waits for it"))
                .collect();
            return Round::Wait(why);
        }
        let pending = pending_on_online_nodes(facts);
        if !pending.is_empty() {
            return forget_histories(pending, |node, rsc| {
                format!("{node}: an operation of {rsc} recorded as pending never reported back (its DC is gone): probing the resource again")
            });
        }
        let orphans = stopped_orphans(facts);
        if !orphans.is_empty() {
            return forget_histories(orphans, |node, rsc| {
                format!(
                    "{node}: {rsc} is no longer configured and stopped there: clearing its history"
                )
            });
        }
        let probes = missing_probes(facts);
        if !probes.is_empty() {
            return Round::Probe(probes);
        }
        Round::Schedule
    }

    /// Decides what to do with the scheduler's transition.
    pub fn planned(
        &mut self,
        actions: &[Action],
        state: &Replicated,
        cluster: &Cluster,
        now_s: i64,
    ) -> Planned {
        let work: Vec<_> = actions
            .iter()
            .filter(|a| !a.pseudo)
            .map(|a| {
                (
                    a.target.clone(),
                    a.task.clone(),
                    a.node.clone(),
                    a.interval_ms,
                )
            })
            .collect();
        if work.is_empty() {
            self.repeated = 0;
            return Planned::Idle {
                acknowledge: shutdowns_done(state, cluster, now_s, |_| true),
            };
        }
        if work == self.last_plan {
            self.repeated += 1;
            if self.repeated >= SAME_PLAN_LIMIT {
                let repeated = self.repeated;
                self.repeated = 0;
                return Planned::BackOff { repeated };
            }
        } else {
            self.last_plan = work;
            self.repeated = 1;
        }
        Planned::Execute
    }

    /// Whether a fence of `node` may be tried now (at most once per
    /// [`FENCE_RETRY`] for the same node); if so, it counts as tried.
    /// Also used for fences a transition asks for.
    pub fn fence_due(&mut self, node: &str, now: Instant) -> bool {
        match self.fence_tried.get(node) {
            Some(at) if now.saturating_duration_since(*at) < FENCE_RETRY => false,
            _ => {
                self.fence_tried.insert(node.to_string(), now);
                true
            }
        }
    }

    /// The data nodes whose loss must be settled: not online
    /// ([`MembershipView::online`]: unheard, or heard but without a lease
    /// for a whole lease, so it can record nothing). A node back online
    /// starts a new episode: its next loss is fenced at once.
    fn lost_nodes(&mut self, view: &MembershipView) -> BTreeSet<String> {
        let mut lost = BTreeSet::new();
        for v in view.peers().filter(|v| !v.witness) {
            if view.online(v) {
                self.fence_tried.remove(&v.name);
            } else {
                lost.insert(v.name.clone());
            }
        }
        lost
    }

    /// [`settle::decide`] for every lost node with a recorded status;
    /// `None` when there is nothing to settle.
    fn settle(&mut self, facts: &Facts, lost: &BTreeSet<String>) -> Option<Round> {
        let by = settled_by(facts.cluster);
        let (mut fence, mut record, mut waiting, mut why) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for peer in facts.view.peers().filter(|v| lost.contains(&v.name)) {
            let Some(status) = facts.state.status.get(&peer.name) else {
                continue; // already recorded down, or never reported
            };
            let node = LostNode {
                name: peer.name.clone(),
                lease_expired_ms: peer.lease_expired_ms,
                confirmed_down: crate::lease::confirmed_down(status)
                    && facts.confirmations.counts(&peer.name),
                fence_due: by == SettledBy::Fencing && self.fence_due(&peer.name, facts.now),
                shutting_down: status.transient.contains_key(SHUTDOWN),
                runs_nothing: runs_nothing(status, facts.cluster),
                watchdog_ms: crate::watchdog::reported_ms(status),
            };
            match settle::decide(&node, &by) {
                Decision::Fence => fence.push(peer.name.clone()),
                Decision::Wait { why } => waiting.push((peer.name.clone(), why)),
                Decision::RecordDown { how, detail } => {
                    why.push(format!("{}: {detail}; recovering its resources", peer.name));
                    record.push(Command::RecordFence(tandem_cluster::FenceRecord {
                        target: peer.name.clone(),
                        action: how.into(),
                        device: String::new(),
                        executor: facts.view.node_name.clone(),
                        ok: true,
                        at_ms: facts.wall_ms,
                        detail,
                    }));
                    record.push(Command::NodeDown {
                        node: peer.name.clone(),
                    });
                }
            }
        }
        let nothing = fence.is_empty() && record.is_empty() && waiting.is_empty();
        (!nothing).then_some(Round::Settle {
            fence,
            record,
            waiting,
            why,
        })
    }
}

/// What settles a lost node in `cluster`: fencing when a device is
/// configured, otherwise an operator.
pub fn settled_by(cluster: &Cluster) -> SettledBy {
    if crate::fencing::configured(cluster) {
        SettledBy::Fencing
    } else {
        SettledBy::Operator
    }
}

/// Whether a node's recorded history shows nothing active or pending: the
/// latest one-shot operation of every resource recorded there, and of
/// every primitive of `cluster`, is a successful stop or a probe that
/// found it not running. Conservative: anything else (a start, a failed
/// stop, a monitor that found it running, an operation in flight) counts
/// as active, and so does a configured primitive with no such result (not
/// probed there yet, or its history forgotten), unless startup probes are
/// disabled (then, as in Pacemaker, what was never started there is taken
/// for stopped).
pub fn runs_nothing(status: &NodeStatus, cluster: &Cluster) -> bool {
    let inactive = |rsc: &str| inactive_there(status, rsc);
    let recorded = status
        .resources
        .iter()
        .all(|(rsc, r)| r.ops.is_empty() || inactive(rsc));
    let unprobed_is_stopped = cluster.config.option("enable-startup-probes") == Some("false");
    recorded
        && (unprobed_is_stopped
            || cluster
                .config
                .resources
                .iter()
                .flat_map(|r| r.primitives())
                .all(|p| inactive(&p.id)))
}

/// Forgets the history of each (node, resource) pair, saying why.
fn forget_histories(pairs: Vec<(String, String)>, why: impl Fn(&str, &str) -> String) -> Round {
    Round::Commit {
        why: pairs.iter().map(|(node, rsc)| why(node, rsc)).collect(),
        commands: pairs
            .into_iter()
            .map(|(node, rsc)| Command::ForgetHistory {
                node: Some(node),
                resource: Some(rsc),
            })
            .collect(),
    }
}

/// Whether `rsc`'s latest one-shot operation in `status` says it is not
/// active there: a successful stop, or a probe that found it not running,
/// or its agent missing or misconfigured there (the scheduler reads such
/// a probe as stopped and bans the node).
fn inactive_there(status: &NodeStatus, rsc: &str) -> bool {
    let last = status
        .resources
        .get(rsc)
        .and_then(|r| r.ops.get(&format!("{rsc}_last_0")));
    last.is_some_and(|last| {
        let stopped = last.operation == "stop" && last.rc_code == 0 && last.op_status == 0;
        let probe = last.operation == "monitor" && last.interval_ms == 0;
        let not_running = probe && last.rc_code == 7 && last.op_status == 0;
        let masked = probe && (last.rc_code == 5 || last.rc_code == 2 || last.op_status == 7);
        stopped || not_running || masked
    })
}

/// (node, resource) pairs of orphans (no longer configured) whose history
/// on an online node says they stopped there: the history is cleared, as
/// Pacemaker clears an orphan's once it is stopped, so the resource leaves
/// the status. One still active there is stopped by the transition first.
fn stopped_orphans(facts: &Facts) -> Vec<(String, String)> {
    let configured: BTreeSet<&str> = facts
        .cluster
        .config
        .resources
        .iter()
        .flat_map(|r| r.primitives())
        .map(|p| p.id.as_str())
        .collect();
    let mut orphans = Vec::new();
    for peer in online_data_nodes(facts.view) {
        let Some(status) = facts.state.status.get(&peer.name) else {
            continue;
        };
        for rsc in status.resources.keys() {
            let primitive = tandem_scheduler::view::strip_instance(rsc);
            if !configured.contains(primitive) && inactive_there(status, rsc) {
                orphans.push((peer.name.clone(), rsc.clone()));
            }
        }
    }
    orphans
}

/// Nodes whose confirm-down is left over: the node is online again, or
/// the watch saw the confirmation before the node's last time online.
fn stale_confirmations(facts: &Facts, lost: &BTreeSet<String>) -> Vec<String> {
    facts
        .view
        .peers()
        .map(|v| &v.name)
        .filter(|name| !lost.contains(*name) || facts.confirmations.stale(name))
        .filter(|name| {
            facts
                .state
                .status
                .get(*name)
                .is_some_and(crate::lease::confirmed_down)
        })
        .cloned()
        .collect()
}

/// (node, resource) pairs with an operation recorded as pending on a node
/// that is online: dispatched by a DC that is gone, or by this one with no
/// result recorded (none came back, or it was not news; this DC awaits
/// every call it makes before it plans again).
/// Whether they ran is unknown, so the resource's history there is
/// forgotten and it is probed (the probe queues behind anything still
/// running there).
fn pending_on_online_nodes(facts: &Facts) -> Vec<(String, String)> {
    let mut pending = Vec::new();
    for peer in facts.view.peers().filter(|v| facts.view.online(v)) {
        let Some(status) = facts.state.status.get(&peer.name) else {
            continue;
        };
        for (rsc, ops) in &status.resources {
            if ops
                .ops
                .values()
                .any(|o| o.op_status == crate::oprecord::PENDING)
            {
                pending.push((peer.name.clone(), rsc.clone()));
            }
        }
    }
    pending
}

/// The online nodes that may run resources (voters and learners, not
/// witnesses).
fn online_data_nodes(view: &MembershipView) -> impl Iterator<Item = &PeerView> {
    view.peers().filter(|v| !v.witness && view.online(v))
}

/// Online data nodes whose rejoin is not recorded: they may run what a
/// predecessor daemon left (or what was there before the cluster was
/// made), and cannot be probed until their results can land, so nothing
/// is scheduled meanwhile (as Pacemaker's DC waits for every member's
/// join). A node that stays online announces its rejoin again within
/// `lease::SUPERSEDED_AFTER`.
fn joining_nodes(facts: &Facts) -> Vec<String> {
    online_data_nodes(facts.view)
        .filter(|v| !crate::live::joined(facts.state, &v.name))
        .map(|v| v.name.clone())
        .collect()
}

/// (node, resource) pairs with no recorded one-shot operation: resources
/// never probed on an online data node (or whose history was forgotten).
/// Asked once every online node has joined ([`joining_nodes`]): before,
/// its results would be dropped.
fn missing_probes(facts: &Facts) -> Vec<(String, String)> {
    if facts.cluster.config.option("enable-startup-probes") == Some("false") {
        return Vec::new();
    }
    let view = facts.view;
    let mut probes = Vec::new();
    for peer in online_data_nodes(view) {
        let known = facts.state.status.get(&peer.name);
        for r in &facts.cluster.config.resources {
            for p in r.primitives() {
                // Only a one-shot operation (`_last_0`) says what runs: a
                // recurring monitor's result recorded after the history
                // was forgotten (a rejoin) says nothing about now.
                let last = format!("{}_last_0", p.id);
                let settled = known
                    .and_then(|s| s.resources.get(&p.id))
                    .is_some_and(|r| r.ops.contains_key(&last));
                if !settled {
                    probes.push((peer.name.clone(), p.id.clone()));
                }
            }
        }
    }
    probes
}

/// The acknowledgements of shutdowns while a transition still has work
/// (or keeps coming back, or nothing is configured): a leaving node that
/// runs nothing and that no action concerns may go; the DC (`dc`) stays
/// until no work is left, since it dispatches the starts of what it gave
/// up.
pub fn shutdowns_done_meanwhile(
    actions: &[Action],
    state: &Replicated,
    cluster: &Cluster,
    dc: &str,
    now_s: i64,
) -> Vec<Command> {
    let idle = actions.iter().all(|a| a.pseudo);
    shutdowns_done(state, cluster, now_s, |node| {
        (node != dc || idle)
            && !actions
                .iter()
                .any(|a| !a.pseudo && a.node.as_deref() == Some(node))
    })
}

/// The acknowledgements of shutdowns that are complete: the node announced
/// it, runs nothing, has not been acknowledged yet, and `may_leave`.
fn shutdowns_done(
    state: &Replicated,
    cluster: &Cluster,
    now_s: i64,
    may_leave: impl Fn(&str) -> bool,
) -> Vec<Command> {
    state
        .status
        .iter()
        .filter(|(node, s)| {
            s.transient.contains_key(SHUTDOWN)
                && !s.transient.contains_key(SHUTDOWN_DONE)
                && runs_nothing(s, cluster)
                && may_leave(node)
        })
        .map(|(node, _)| Command::SetTransient {
            node: node.clone(),
            name: SHUTDOWN_DONE.to_string(),
            value: Some(now_s.to_string()),
        })
        .collect()
}

/// Which operator confirmations count: one counts only if it was first
/// seen after the node was last seen online, both in log order (the
/// applied index at the look). Fed by a task of its own
/// (`controller::watch_confirmations`), so a controller busy in a long
/// transition still sees a node come back (and a node lost meanwhile).
#[derive(Default)]
pub struct ConfirmWatch {
    /// Node → applied index when it was last seen online.
    online_at: BTreeMap<String, u64>,
    /// Node → applied index when its confirm-down was first seen.
    confirmed_at: BTreeMap<String, u64>,
}

impl ConfirmWatch {
    /// One look: who is online, which nodes are confirmed down, at log
    /// position `applied`.
    pub fn observe(&mut self, view: &MembershipView, applied: u64, confirmed: &BTreeSet<String>) {
        for v in view.peers() {
            if view.online(v) {
                self.online_at.insert(v.name.clone(), applied);
            }
        }
        self.confirmed_at.retain(|name, _| confirmed.contains(name));
        for name in confirmed {
            self.confirmed_at.entry(name.clone()).or_insert(applied);
        }
    }

    /// Whether `node`'s confirm-down counts: seen after its last time
    /// online (never seen online by this DC: it counts).
    pub fn counts(&self, node: &str) -> bool {
        match self.confirmed_at.get(node) {
            None => false,
            Some(c) => self.online_at.get(node).is_none_or(|o| o < c),
        }
    }

    /// Whether `node`'s confirm-down was seen, but not after its last time
    /// online.
    pub fn stale(&self, node: &str) -> bool {
        self.confirmed_at.contains_key(node) && !self.counts(node)
    }
}

/// One transition's dispatch: which actions may start (every action they
/// come after is done), what a result means, when to stop. Nothing new
/// starts after a failure, a missing result or a change in the world; what
/// is in flight is awaited.
pub struct Dispatch {
    /// Whether each action does anything on a node (else it completes as
    /// soon as it may start: pseudo actions, actions without a node).
    runs: Vec<bool>,
    started: Vec<bool>,
    done: Vec<bool>,
    stopped: Option<String>,
}

/// An action to carry out now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// Run the fence devices against the action's target.
    Fence(usize),
    /// Send the action to its node's executor (recorded as pending first
    /// when it can make the resource active).
    Execute(usize),
}

/// How an action ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finished {
    /// It did what was asked.
    Ok,
    /// It ran and failed, or could not be recorded: `why`.
    Failed(String),
    /// No result came back (the operation may or may not have run).
    NoResult,
}

impl Dispatch {
    /// `runs[i]`: whether action `i` needs the executor (or a fence).
    pub fn new(actions: &[Action], runs: Vec<bool>) -> Dispatch {
        Dispatch {
            started: vec![false; actions.len()],
            done: vec![false; actions.len()],
            runs,
            stopped: None,
        }
    }

    /// The actions that may start now (each returned once), completing the
    /// ones that do nothing on the way. None once stopped.
    pub fn ready(&mut self, actions: &[Action]) -> Vec<Start> {
        let mut start = Vec::new();
        if self.stopped.is_some() {
            return start;
        }
        let mut progressed = true;
        while progressed {
            progressed = false;
            for (i, a) in actions.iter().enumerate() {
                if self.started[i] || !a.after.iter().all(|&d| self.done[d]) {
                    continue;
                }
                self.started[i] = true;
                if a.task == "fence" && !a.pseudo {
                    start.push(Start::Fence(i));
                } else if self.runs[i] {
                    start.push(Start::Execute(i));
                } else {
                    self.done[i] = true;
                    progressed = true;
                }
            }
        }
        start
    }

    /// Action `i` ended.
    pub fn finished(&mut self, i: usize, how: Finished, actions: &[Action]) {
        let a = &actions[i];
        match how {
            Finished::Ok => self.done[i] = true,
            Finished::Failed(why) => self.stop(why),
            Finished::NoResult => self.stop(format!("{} of {}: no result", a.task, a.target)),
        }
    }

    /// Starts nothing more (the first reason is kept).
    pub fn stop(&mut self, why: String) {
        self.stopped.get_or_insert(why);
    }

    /// Why it stopped, if it did.
    pub fn stopped(&self) -> Option<&str> {
        self.stopped.as_deref()
    }
}

/// The executor request for action `i`, or `None` when there is nothing
/// to run (pseudo actions, actions without a node).
pub fn request_for(
    cluster: &Cluster,
    actions: &[Action],
    i: usize,
    term: u64,
) -> Option<(String, ExecRequest)> {
    let a = &actions[i];
    let node = a.node.clone()?;
    if a.pseudo || a.task == "fence" || a.task == "shutdown" || a.task == "cancel" {
        return None;
    }
    let Some(located) = crate::opspec::locate(cluster, &a.target) else {
        let orphan = crate::opspec::orphan_request(cluster, &node, &a.target, &a.task, term)?;
        return Some((node, orphan));
    };
    let mut request = located.request(cluster, &a.target, &a.task, a.interval_ms, term);
    if a.task == "notify" {
        // The pseudo action before a notification names its phase.
        let phase = a
            .after
            .iter()
            .map(|&d| actions[d].task.as_str())
            .find(|t| t.contains("notify"));
        if let Some(phase) = phase {
            let (kind, op) = phase.split_once("_notify_").unwrap_or(("post", phase));
            request.meta.insert("notify_type".into(), kind.into());
            let op = match op {
                "running" => "start",
                "stopped" => "stop",
                "promoted" => "promote",
                "demoted" => "demote",
                other => other,
            };
            request.meta.insert("notify_operation".into(), op.into());
        }
    }
    if a.task == "migrate_to" || a.task == "migrate_from" {
        let target_of = |task: &str| {
            actions
                .iter()
                .find(|b| b.target == a.target && b.task == task)
                .and_then(|b| b.node.clone())
        };
        if let (Some(source), Some(dest)) = (target_of("migrate_to"), target_of("migrate_from")) {
            request.meta.insert("migrate_source".into(), source);
            request.meta.insert("migrate_target".into(), dest);
        }
    }
    Some((node, request))
}

#[cfg(test)]
mod tests;
