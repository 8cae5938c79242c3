//! Status unpacking: replays each resource's operation history on each node
//! to find where it is active, in which role, whether it failed and how the
//! failure must be handled; then fail counts and migration-threshold bans.

use crate::working::{NodeIdx, OnFail, Rsc, RscIdx, Variant};
use crate::Sched;
use std::collections::BTreeMap;
use tandem_model::{HistoryOp, ResourceHistory, Role, Score};

/// An operation's outcome once rc, op-status and expectations are combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Done,
    Pending,
    Error,
    /// Hard error: the resource is banned from this node.
    ErrorHard,
    /// Fatal error: the resource is banned from every node.
    ErrorFatal,
}

const RELEVANT_TASKS: &[&str] = &[
    "start",
    "stop",
    "monitor",
    "promote",
    "demote",
    "migrate_to",
    "migrate_from",
    "asyncmon",
];

impl Sched<'_> {
    pub(crate) fn unpack_history(&mut self) {
        self.index_fail_counts();
        self.index_anonymous_instances();
        let cluster = self.cluster;
        let mut remote_states = Vec::new();
        for state in &cluster.status.nodes {
            let Some(node) = self.node_for_state(&state.id, state.uname.as_deref()) else {
                continue;
            };
            // A remote node's history counts only once its connection is
            // known to run, so cluster nodes come first.
            if self.nodes[node].connection.is_some() {
                remote_states.push((node, state));
                continue;
            }
            let skip_offline = !self.opts.fencing_enabled && !self.opts.shutdown_lock;
            if skip_offline && !self.nodes[node].online {
                continue;
            }
            self.unpack_node_history(node, state);
        }
        self.connect_remote_nodes();
        for (node, state) in remote_states {
            if self.nodes[node].online {
                self.unpack_node_history(node, state);
            }
        }
        self.resolve_migrations();
        for r in 0..self.rscs.len() {
            if self.rscs[r].variant == Variant::Primitive {
                self.apply_fail_counts(r);
                self.handle_multiple_active(r);
            }
        }
    }

    fn unpack_node_history(&mut self, node: NodeIdx, state: &tandem_model::NodeState) {
        for hist in &state.history {
            let rsc = match self.resource_for_history(&hist.id, node) {
                Some(r) => r,
                None => self.add_orphan(hist),
            };
            self.unpack_rsc_on_node(rsc, node, hist);
        }
    }

    /// A remote or guest node is online while its connection resource (or
    /// container) runs, unfailed, on an online cluster node.
    fn connect_remote_nodes(&mut self) {
        for n in 0..self.nodes.len() {
            let Some(conn) = self.nodes[n].connection.clone() else {
                continue;
            };
            let Some(&c) = self.by_id.get(&conn) else {
                continue;
            };
            let rsc = &self.rscs[c];
            let up = !rsc.failed
                && rsc
                    .running_on
                    .iter()
                    .any(|&(h, _)| self.nodes[h].online && !self.nodes[h].remote);
            let node = &mut self.nodes[n];
            node.online = up;
            // Resources may be placed there if the connection can run.
            node.base = Score::ZERO;
        }
    }

    fn node_for_state(&self, id: &str, uname: Option<&str>) -> Option<NodeIdx> {
        self.nodes
            .iter()
            .position(|n| n.id == id)
            .or_else(|| uname.and_then(|u| self.nodes.iter().position(|n| n.name == u)))
    }

    /// Maps a history id to a primitive, choosing an anonymous clone
    /// instance: the one already active on this node, else the first one
    /// with no history anywhere yet.
    fn resource_for_history(&self, id: &str, node: NodeIdx) -> Option<RscIdx> {
        if let Some(&r) = self.by_id.get(id) {
            if self.rscs[r].variant == Variant::Primitive && !self.is_anonymous_instance(r) {
                return Some(r);
            }
        }
        let base = crate::view::strip_instance(id);
        let candidates = self.anonymous_instances.get(base)?;
        if candidates.is_empty() {
            return None;
        }
        // Only activity counts: a history that found the resource stopped
        // does not claim an instance number.
        let used_here = |p: RscIdx| {
            self.rscs[p].running_on.iter().any(|&(n, _)| n == node)
                || self.rscs[p].pending_on.contains(&node)
        };
        let unused =
            |p: RscIdx| self.rscs[p].running_on.is_empty() && self.rscs[p].pending_on.is_empty();
        // For cloned groups the whole instance (every member) counts.
        let instance_any = |r: RscIdx, test: &dyn Fn(RscIdx) -> bool| match self.instance_root(r) {
            top if top == r => test(r),
            top => self.primitives_of(top).into_iter().any(test),
        };
        if let Some(&r) = candidates.iter().find(|&&r| instance_any(r, &used_here)) {
            return Some(r);
        }
        let instance_unused = |r: RscIdx| !instance_any(r, &|p| !unused(p));
        candidates.iter().copied().find(|&r| instance_unused(r))
    }

    /// Anonymous clone instances by the id their history uses (the child's
    /// id without `:N`), in instance order.
    fn index_anonymous_instances(&mut self) {
        let mut index: BTreeMap<String, Vec<RscIdx>> = BTreeMap::new();
        for r in 0..self.rscs.len() {
            if self.rscs[r].variant == Variant::Primitive && self.is_anonymous_instance(r) {
                index
                    .entry(self.rscs[r].history_id.clone())
                    .or_default()
                    .push(r);
            }
        }
        self.anonymous_instances = index;
    }

    fn is_anonymous_instance(&self, r: RscIdx) -> bool {
        self.clone_of(r).is_some_and(|c| !self.rscs[c].unique)
    }

    fn add_orphan(&mut self, hist: &ResourceHistory) -> RscIdx {
        let mut rsc = Rsc::new(hist.id.clone(), Variant::Primitive, self.nodes.len());
        rsc.class = hist.class.clone().unwrap_or_default();
        rsc.provider = hist.provider.clone();
        rsc.agent = hist.agent.clone().unwrap_or_default();
        rsc.orphan = true;
        rsc.managed = self.opts.stop_removed_resources && !self.opts.maintenance_mode;
        rsc.requires = crate::working::Requires::Quorum;
        let idx = self.rscs.len();
        self.rscs.push(rsc);
        self.by_id.insert(hist.id.clone(), idx);
        self.top.push(idx);
        if self.opts.stop_removed_resources {
            for n in 0..self.nodes.len() {
                self.ban(idx, n, "removed from the configuration");
            }
        }
        idx
    }

    fn unpack_rsc_on_node(&mut self, r: RscIdx, node: NodeIdx, hist: &ResourceHistory) {
        let mut ops: Vec<&HistoryOp> = hist
            .ops
            .iter()
            .filter(|op| RELEVANT_TASKS.contains(&op.operation.as_str()) && op.op_status != 1)
            .collect();
        ops.sort_by_key(|op| (op.call_id < 0, op.call_id, op.last_rc_change.unwrap_or(0)));
        if !ops.is_empty() && !self.rscs[r].seen_on.contains(&node) {
            self.rscs[r].seen_on.push(node);
        }
        let mut st = NodeReplay {
            role: Role::Unknown,
            on_fail: OnFail::Ignore,
            last_failure: None,
        };
        for op in ops {
            self.replay_op(r, node, op, &mut st);
        }
        self.settle_node_state(r, node, st);
        let active_here = self.rscs[r].running_on.iter().any(|&(n, _)| n == node);
        if active_here
            && self.definition_changed(r, hist)
            && !self.rscs[r].force_stop_on.contains(&node)
        {
            self.rscs[r].force_stop_on.push(node);
        }
        if active_here {
            self.rscs[r].history_names.push((node, hist.id.clone()));
        }
        self.apply_shutdown_lock(r, node, hist.shutdown_lock, active_here);
    }

    /// Whether the parameters `r` runs with (as its latest one-shot
    /// operation recorded them) differ from the configured ones: Pacemaker
    /// restarts it ("resource definition change"). Only tandem's own
    /// digests are compared.
    fn definition_changed(&self, r: RscIdx, hist: &ResourceHistory) -> bool {
        let last = format!("{}_last_0", hist.id);
        let recorded = hist
            .ops
            .iter()
            .find(|op| op.id == last)
            .and_then(|op| op.op_digest.as_deref())
            .filter(|d| d.starts_with(tandem_model::DIGEST_PREFIX));
        match (recorded, &self.rscs[r].params_digest) {
            (Some(recorded), Some(configured)) => recorded != configured,
            _ => false,
        }
    }

    /// shutdown-lock: a resource stopped by (or running on) a node that
    /// shuts down cleanly stays with that node, until the limit passes.
    fn apply_shutdown_lock(
        &mut self,
        r: RscIdx,
        node: NodeIdx,
        locked_since: Option<i64>,
        active_here: bool,
    ) {
        if !self.opts.shutdown_lock || self.rscs[r].locked_to.is_some() {
            return;
        }
        let since = match locked_since {
            Some(t) => t,
            None if active_here && self.nodes[node].shutdown && self.nodes[node].online => self.now,
            None => return,
        };
        let limit = self.opts.shutdown_lock_limit_s;
        if limit > 0 && self.now >= since.saturating_add(limit) {
            return;
        }
        self.rscs[r].locked_to = Some(node);
        for n in (0..self.nodes.len()).filter(|&n| n != node) {
            self.ban(r, n, "shutdown-lock");
        }
    }

    fn replay_op<'h>(
        &mut self,
        r: RscIdx,
        node: NodeIdx,
        op: &'h HistoryOp,
        st: &mut NodeReplay<'h>,
    ) {
        let task = op.operation.as_str();
        let is_probe = task == "monitor" && op.interval_ms == 0;
        let promotable = self.clone_of(r).is_some_and(|c| self.rscs[c].promotable);
        let started = if promotable {
            Role::Unpromoted
        } else {
            Role::Started
        };
        let outcome = self.remap(r, op, is_probe);
        if outcome != Outcome::Done
            && outcome != Outcome::Pending
            && self.failure_expired(r, node, op, is_probe)
        {
            return;
        }
        // A probe that found the agent missing or misconfigured is masked:
        // the resource is stopped there and may not run there.
        let masked = is_probe && (op.rc_code == 5 || op.rc_code == 2 || op.op_status == 7);
        if masked && outcome != Outcome::Done {
            st.role = Role::Stopped;
            self.ban_for_probe(r, node);
            return;
        }
        match outcome {
            Outcome::Pending => match task {
                _ if !self.rscs[r].pending_on.contains(&node) && task != "monitor" && {
                    self.rscs[r].pending_on.push(node);
                    false
                } => {}
                "start" => {
                    st.role = st.role.max(started);
                    self.rscs[r].pending_task = Some("Starting".into());
                }
                "promote" => {
                    st.role = Role::Promoted;
                    self.rscs[r].pending_task = Some("Promoting".into());
                }
                "stop" => self.rscs[r].pending_task = Some("Stopping".into()),
                "migrate_to" | "migrate_from" => {
                    st.role = st.role.max(started);
                    self.rscs[r].pending_task = Some("Migrating".into());
                }
                "demote" => self.rscs[r].pending_task = Some("Demoting".into()),
                _ => {}
            },
            Outcome::Done => self.replay_success(r, op, st, started),
            // on-fail=ignore: the failure counts as the expected result.
            _ if self.configured_on_fail(r, task, op.interval_ms) == OnFail::Ignore => {
                self.rscs[r].failure_ignored = true;
                self.replay_success(r, op, st, started);
            }
            Outcome::Error | Outcome::ErrorHard | Outcome::ErrorFatal => {
                self.replay_failure(r, node, op, st, started, outcome)
            }
        }
    }

    fn remap(&self, r: RscIdx, op: &HistoryOp, is_probe: bool) -> Outcome {
        match op.op_status {
            -1 => return Outcome::Pending,
            0 | 4 => {}
            2 => return Outcome::Error,
            6 => return Outcome::ErrorFatal,
            _ => return Outcome::ErrorHard,
        }
        let expected = op.expected_rc();
        let as_expected = if expected.is_some_and(|e| e != op.rc_code) {
            Outcome::Error
        } else {
            Outcome::Done
        };
        match op.rc_code {
            0 | 190 if is_probe => Outcome::Done,
            0 | 190 => as_expected,
            7 if is_probe || expected == Some(7) || !self.rscs[r].managed => Outcome::Done,
            8 | 191 if is_probe || expected == Some(8) => Outcome::Done,
            3 if op.interval_ms > 0 => Outcome::Error,
            2..=5 => Outcome::ErrorHard,
            6 => Outcome::ErrorFatal,
            _ => Outcome::Error,
        }
    }

    fn replay_success<'h>(
        &mut self,
        r: RscIdx,
        op: &'h HistoryOp,
        st: &mut NodeReplay<'h>,
        started: Role,
    ) {
        let same_key =
            |f: &HistoryOp| f.operation == op.operation && f.interval_ms == op.interval_ms;
        let mut clear = false;
        if op.rc_code == 7 {
            st.role = Role::Stopped;
            clear = true;
        } else {
            match op.operation.as_str() {
                "monitor" | "asyncmon" => {
                    clear = st.last_failure.is_some_and(same_key);
                    if op.rc_code == 8 || op.rc_code == 191 {
                        st.role = Role::Promoted;
                    } else if st.role < started
                        || (st.role == Role::Promoted && op.interval_ms == 0)
                    {
                        st.role = started;
                    }
                }
                "start" | "migrate_from" => {
                    st.role = started;
                    clear = true;
                }
                "stop" => {
                    st.role = Role::Stopped;
                    clear = true;
                }
                "promote" => {
                    st.role = Role::Promoted;
                    clear = true;
                }
                "demote" => {
                    clear = st.on_fail == OnFail::Demote;
                    st.role = Role::Unpromoted;
                }
                "migrate_to" => {
                    st.role = started;
                    self.rscs[r]
                        .migrate_to
                        .push(op.migrate_target.clone().unwrap_or_default());
                }
                _ => st.role = st.role.max(started),
            }
        }
        if clear && st.on_fail <= OnFail::Block && st.on_fail != OnFail::Ban {
            st.on_fail = OnFail::Ignore;
        }
    }

    fn replay_failure<'h>(
        &mut self,
        r: RscIdx,
        node: NodeIdx,
        op: &'h HistoryOp,
        st: &mut NodeReplay<'h>,
        started: Role,
        outcome: Outcome,
    ) {
        st.last_failure = Some(op);
        let configured = self.configured_on_fail(r, &op.operation, op.interval_ms);
        if configured == OnFail::Ignore {
            self.rscs[r].failure_ignored = true;
        }
        st.on_fail = st.on_fail.max(configured);
        match op.operation.as_str() {
            "stop" => self.ban(r, node, "__stop_fail__"),
            "promote" => st.role = Role::Promoted,
            "demote" => {
                st.role = if configured == OnFail::Block {
                    self.rscs[r].next_role = Some(Role::Stopped);
                    Role::Promoted
                } else if op.rc_code == 7 {
                    Role::Stopped
                } else {
                    Role::Unpromoted
                };
            }
            _ => {}
        }
        if op.rc_code == 8 || op.rc_code == 9 {
            st.role = Role::Promoted;
        }
        match outcome {
            Outcome::ErrorHard => self.ban(r, node, "hard-error"),
            Outcome::ErrorFatal => {
                for n in 0..self.nodes.len() {
                    self.ban(r, n, "fatal-error");
                }
            }
            _ => {}
        }
        let demote_to_stopped = op.operation == "demote" && op.rc_code == 7;
        if st.role < started && !demote_to_stopped {
            st.role = started;
        }
    }

    /// Applies the node's final role and failure handling to the resource.
    fn settle_node_state(&mut self, r: RscIdx, node: NodeIdx, st: NodeReplay) {
        let active = st.role > Role::Stopped;
        if active {
            self.rscs[r].running_on.push((node, st.role));
            self.rscs[r].role = self.rscs[r].role.max(st.role);
            let n = &self.nodes[node];
            if n.maintenance {
                self.rscs[r].managed = false;
            } else if self.rscs[r].managed && !n.online && self.opts.fencing_enabled && !n.unclean {
                let reason = format!("{} is thought to be active there", self.rscs[r].id);
                self.fence_node(node, &reason);
            }
        }
        // Resources on a node about to be fenced need no failure handling:
        // fencing stops them.
        let on_fail = if self.nodes[node].unclean {
            OnFail::Ignore
        } else {
            st.on_fail
        };
        match on_fail {
            OnFail::Ignore | OnFail::ResetRemote => {}
            OnFail::Demote => {
                self.rscs[r].failed = true;
            }
            OnFail::Fence => {
                let reason = format!("{} failed there", self.rscs[r].id);
                self.fence_node(node, &reason);
            }
            OnFail::Standby => {
                self.nodes[node].standby = true;
                self.nodes[node].standby_onfail = true;
            }
            OnFail::Block => {
                self.rscs[r].managed = false;
                self.rscs[r].blocked = true;
                if active {
                    self.rscs[r].failed = true;
                }
            }
            OnFail::Ban => self.ban(r, node, "__action_migration_auto__"),
            OnFail::Stop => {
                self.rscs[r].next_role = Some(Role::Stopped);
                for n in 0..self.nodes.len() {
                    self.ban(r, n, "__stop_fail__");
                }
                if active {
                    self.rscs[r].failed = true;
                }
            }
            OnFail::Restart | OnFail::RestartContainer => {
                if active {
                    self.rscs[r].failed = true;
                    self.rscs[r].failed_on.push(node);
                }
            }
        }
    }

    pub(crate) fn fence_node(&mut self, node: NodeIdx, reason: &str) {
        let n = &mut self.nodes[node];
        if !n.unclean {
            n.unclean = true;
            n.fence_reason = Some(reason.to_string());
        }
    }

    /// The on-fail handling configured for an operation, with defaults.
    fn configured_on_fail(&self, r: RscIdx, task: &str, interval_ms: u64) -> OnFail {
        let rsc = &self.rscs[r];
        let name = match task {
            "migrate_to" | "migrate_from" => "migrate",
            t => t,
        };
        let configured = rsc
            .operations
            .iter()
            .find(|o| o.name == task && o.interval_ms == interval_ms)
            .or_else(|| {
                rsc.operations
                    .iter()
                    .find(|o| o.name == name && o.interval_ms == interval_ms)
            })
            .and_then(|o| {
                o.on_fail.clone().or_else(|| {
                    tandem_model::config::first_value(&o.meta, "on-fail").map(str::to_string)
                })
            })
            .or_else(|| {
                self.cluster.config.op_defaults.iter().find_map(|s| {
                    s.pairs
                        .iter()
                        .find(|p| p.name == "on-fail")
                        .and_then(|p| p.value.clone())
                })
            })
            .and_then(|v| OnFail::parse(&v));
        let on_fail = configured.unwrap_or(if task == "stop" {
            if self.opts.fencing_enabled {
                OnFail::Fence
            } else {
                OnFail::Block
            }
        } else {
            OnFail::Restart
        });
        match on_fail {
            OnFail::Fence if !self.opts.fencing_enabled => OnFail::Stop,
            OnFail::Demote if !self.clone_of(r).is_some_and(|c| self.rscs[c].promotable) => {
                OnFail::Restart
            }
            other => other,
        }
    }

    /// Whether a failed history entry has expired through failure-timeout.
    fn failure_expired(&self, r: RscIdx, node: NodeIdx, op: &HistoryOp, is_probe: bool) -> bool {
        let timeout = self.rscs[r].failure_timeout_s;
        let blocks = self.rscs[r]
            .operations
            .iter()
            .any(|o| o.on_fail.as_deref() == Some("block"));
        if timeout <= 0 || op.op_status == 7 || blocks {
            return false;
        }
        if is_probe && matches!(op.rc_code, 0 | 7 | 8 | 190 | 191) {
            return false;
        }
        let Some(changed) = op.last_rc_change.or(op.last_run) else {
            return false;
        };
        self.now >= changed.saturating_add(timeout) && self.fail_count(r, node).0 == 0
    }

    /// Bans `r` (the whole clone for anonymous instances) from `node` after a
    /// masked probe failure.
    fn ban_for_probe(&mut self, r: RscIdx, node: NodeIdx) {
        let target = if self.is_anonymous_instance(r) {
            self.clone_of(r).unwrap_or(r)
        } else {
            r
        };
        self.ban(target, node, "masked-probe");
    }

    /// -INFINITY for `r` on `node`, recorded for `explain`.
    pub(crate) fn ban(&mut self, r: RscIdx, node: NodeIdx, why: &str) {
        self.bans.push((r, node, why.to_string()));
    }

    /// (fail count, last failure) of `r` on `node`, honouring failure-timeout.
    pub(crate) fn fail_count(&self, r: RscIdx, node: NodeIdx) -> (i64, i64) {
        let Some(&(count, last)) = self
            .fail_counts_of(r)
            .and_then(|per_node| per_node.get(&node))
        else {
            return (0, 0);
        };
        let timeout = self.rscs[r].failure_timeout_s;
        if timeout > 0 && last > 0 && self.now > last.saturating_add(timeout) {
            return (0, last);
        }
        (count.value(), last)
    }

    /// Recorded failures of `r` per node (the history id for anonymous
    /// clone instances, which share their fail counts).
    fn fail_counts_of(&self, r: RscIdx) -> Option<&BTreeMap<NodeIdx, (Score, i64)>> {
        let rsc = &self.rscs[r];
        let name = if self.is_anonymous_instance(r) {
            &rsc.history_id
        } else {
            &rsc.id
        };
        self.fail_counts.get(name)
    }

    /// Indexes `fail-count-RSC#OP_INTERVAL` and `last-failure-RSC#...` node
    /// attributes by RSC and node: summed counts, latest failure. A legacy
    /// `fail-count-RSC` without `#` is not counted (as in Pacemaker 3).
    pub(crate) fn index_fail_counts(&mut self) {
        let mut index: BTreeMap<String, BTreeMap<NodeIdx, (Score, i64)>> = BTreeMap::new();
        for (n, node) in self.nodes.iter().enumerate() {
            for (k, v) in &node.attrs {
                let count = k
                    .strip_prefix("fail-count-")
                    .and_then(|x| x.rsplit_once('#'));
                let last = k
                    .strip_prefix("last-failure-")
                    .and_then(|x| x.rsplit_once('#'));
                let Some((rsc, _op)) = count.or(last) else {
                    continue;
                };
                let e = index
                    .entry(rsc.to_string())
                    .or_default()
                    .entry(n)
                    .or_insert((Score::ZERO, 0));
                if count.is_some() {
                    e.0 = e.0.plus(Score::parse(v).unwrap_or(Score::ZERO));
                } else {
                    e.1 = e.1.max(v.parse().unwrap_or(0));
                }
            }
        }
        self.fail_counts = index;
    }

    fn apply_fail_counts(&mut self, r: RscIdx) {
        let threshold = self.rscs[r].migration_threshold;
        if threshold <= 0 || self.rscs[r].failure_ignored {
            return;
        }
        let failing: Vec<NodeIdx> = self
            .fail_counts_of(r)
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default();
        for node in failing {
            let (count, _) = self.fail_count(r, node);
            if count >= threshold {
                let target = if self.is_anonymous_instance(r) {
                    self.clone_of(r).unwrap_or(r)
                } else {
                    r
                };
                self.ban(target, node, "migration-threshold");
                if self.rscs[r].running_on.iter().any(|&(n, _)| n == node) {
                    self.rscs[r].failed = self.rscs[r].failed || count > 0;
                }
            }
        }
    }

    /// Dangling migrations: a source whose target already finished
    /// migrate_from must be stopped on the source.
    fn resolve_migrations(&mut self) {
        for r in 0..self.rscs.len() {
            if self.rscs[r].migrate_to.is_empty() || self.rscs[r].running_on.len() < 2 {
                continue;
            }
            let targets: Vec<NodeIdx> = self.rscs[r]
                .migrate_to
                .iter()
                .filter_map(|t| self.nodes.iter().position(|n| &n.name == t))
                .collect();
            let rsc = &mut self.rscs[r];
            if let Some(&(src, _)) = rsc.running_on.iter().find(|(n, _)| !targets.contains(n)) {
                if rsc.running_on.iter().any(|(n, _)| targets.contains(n)) {
                    rsc.running_on.retain(|&(n, _)| n != src);
                    rsc.force_stop_on.push(src);
                }
            }
        }
    }

    fn handle_multiple_active(&mut self, r: RscIdx) {
        if self.rscs[r].running_on.len() < 2 {
            return;
        }
        match self.rscs[r].multiple_active.as_str() {
            "block" => {
                // A group that blocks on multiple activity blocks as a whole.
                let group = self.rscs[r].parent.filter(|&g| {
                    self.rscs[g].variant == Variant::Group
                        && self.rscs[g].meta.get("multiple-active").map(String::as_str)
                            == Some("block")
                });
                let blocked = match group {
                    Some(g) => self.rscs[g].children.clone(),
                    None => vec![r],
                };
                for b in blocked {
                    self.rscs[b].managed = false;
                    self.rscs[b].blocked = true;
                }
            }
            "stop_only" => {
                self.rscs[r].next_role = Some(Role::Stopped);
                for n in 0..self.nodes.len() {
                    self.ban(r, n, "multiple-active");
                }
            }
            "stop_unexpected" => {
                let keep = self.rscs[r].running_on[0].0;
                let others: Vec<NodeIdx> = self.rscs[r]
                    .running_on
                    .iter()
                    .map(|&(n, _)| n)
                    .filter(|&n| n != keep)
                    .collect();
                self.rscs[r].force_stop_on.extend(others);
            }
            _ => self.rscs[r].multiply_active = true,
        }
    }
}

/// Replay state of one resource on one node.
struct NodeReplay<'h> {
    role: Role,
    on_fail: OnFail,
    last_failure: Option<&'h HistoryOp>,
}
