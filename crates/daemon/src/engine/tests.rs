//! The engine's decisions, asserted as the exact commands it returns.

use super::*;
use tandem_cluster::{FenceRecord, HistoryOp, PeerView, ResourceOps};

const T0_MS: i64 = 1_700_000_000_000;

/// A 3-node view from the DC n1; `offline` nodes are unheard, with every
/// lease expired `expired_ms` ago (`None`: may still hold one).
fn view(offline: &[&str], expired_ms: Option<u64>) -> MembershipView {
    let peer = |id: u64| {
        let name = format!("n{id}");
        let lost = offline.contains(&name.as_str());
        PeerView {
            id,
            name,
            addr: String::new(),
            api: String::new(),
            witness: false,
            last_heard_ms: Some(if lost { 5000 } else { 0 }),
            alive: !lost,
            lease_expired_ms: if lost { expired_ms } else { None },
        }
    };
    MembershipView {
        node_id: 1,
        node_name: "n1".into(),
        state: "Leader".into(),
        term: 4,
        dc: Some("n1".into()),
        dc_id: Some(1),
        quorum: true,
        votes_alive: 3 - offline.len(),
        votes_needed: 2,
        voters: (1..=3).map(peer).collect(),
        learners: Vec::new(),
        committed_index: Some(10),
        lease_ms: 1000,
        dc_lease: true,
        lease_left_ms: 900,
    }
}

/// `web` (and a fence device when `fencing`), three nodes.
fn cluster(fencing: bool) -> Cluster {
    let mut text = String::from("[cluster]\n");
    if !fencing {
        text.push_str("options = { fencing-enabled = false }\n");
    }
    for n in 1..=3 {
        text.push_str(&format!("[[node]]\nname = \"n{n}\"\n"));
    }
    text.push_str("[[resource]]\nid = \"web\"\nagent = \"ocf:heartbeat:Dummy\"\n");
    if fencing {
        text.push_str("[[resource]]\nid = \"fence\"\nagent = \"stonith:fence_dummy\"\n");
    }
    text.push_str("[status]\n");
    tandem_model::native::parse_toml(&text).unwrap()
}

fn op(rsc: &str, operation: &str, rc: i32, status: i32) -> HistoryOp {
    HistoryOp {
        id: format!("{rsc}_last_0"),
        operation: operation.into(),
        rc_code: rc,
        op_status: status,
        ..Default::default()
    }
}

/// Every node probed `web` (not running) except where `last` says.
fn state(last: &[(&str, HistoryOp)], transient: &[(&str, &str)]) -> Replicated {
    let mut s = Replicated::default();
    for n in ["n1", "n2", "n3"] {
        let status = s.status.entry(n.into()).or_default();
        status.rejoin = Some(1);
        let probed = ("", op("web", "monitor", 7, 0));
        let ops = std::iter::once(&probed).chain(last.iter().filter(|(node, _)| *node == n));
        for (_, o) in ops {
            status.resources.insert(
                o.id.trim_end_matches("_last_0").into(),
                ResourceOps {
                    ops: BTreeMap::from([(o.id.clone(), o.clone())]),
                    ..Default::default()
                },
            );
        }
    }
    for (node, name) in transient {
        s.status
            .get_mut(*node)
            .unwrap()
            .transient
            .insert(name.to_string(), "1".into());
    }
    s
}

fn round(engine: &mut Engine, v: &MembershipView, s: &Replicated, c: &Cluster) -> Round {
    round_at(engine, v, s, c, &ConfirmWatch::default(), Instant::now())
}

fn round_at(
    engine: &mut Engine,
    v: &MembershipView,
    s: &Replicated,
    c: &Cluster,
    confirmations: &ConfirmWatch,
    now: Instant,
) -> Round {
    engine.round(&Facts {
        view: v,
        state: s,
        cluster: c,
        confirmations,
        now,
        wall_ms: T0_MS,
    })
}

fn running_on_n2() -> Vec<(&'static str, HistoryOp)> {
    vec![("n2", op("web", "start", 0, 0))]
}

#[test]
fn a_quiet_cluster_is_scheduled() {
    let mut e = Engine::default();
    let r = round(&mut e, &view(&[], None), &state(&[], &[]), &cluster(false));
    assert_eq!(r, Round::Schedule);
}

#[test]
fn nothing_is_probed_or_scheduled_until_every_online_node_joined() {
    let mut e = Engine::default();
    let mut s = state(&[], &[]);
    s.status.get_mut("n3").unwrap().resources.clear();
    s.status.remove("n2");
    // n2's rejoin is not recorded yet: its results would be dropped, and
    // it may run what its previous daemon left.
    let r = round(&mut e, &view(&[], None), &s, &cluster(true));
    assert_eq!(
        r,
        Round::Wait(vec![
            "n2: online but its rejoin is not recorded yet: scheduling waits for it".into()
        ])
    );
    // The fence device too: its executor answers from its registration.
    s.apply(&Command::Rejoined {
        node: "n2".into(),
        id: 7,
    });
    let r = round(&mut e, &view(&[], None), &s, &cluster(true));
    assert_eq!(
        r,
        Round::Probe(vec![
            ("n1".into(), "fence".into()),
            ("n2".into(), "web".into()),
            ("n2".into(), "fence".into()),
            ("n3".into(), "web".into()),
            ("n3".into(), "fence".into())
        ])
    );
}

#[test]
fn a_lost_node_with_a_fence_device_is_fenced_once_per_retry_period() {
    let mut e = Engine::default();
    let (v, s, c) = (
        view(&["n2"], None),
        state(&running_on_n2(), &[]),
        cluster(true),
    );
    let t = Instant::now();
    let fence = Round::Settle {
        fence: vec!["n2".into()],
        record: vec![],
        waiting: vec![],
        why: vec![],
    };
    let cw = ConfirmWatch::default();
    assert_eq!(round_at(&mut e, &v, &s, &c, &cw, t), fence);
    let Round::Settle {
        waiting, fence: f, ..
    } = round_at(&mut e, &v, &s, &c, &cw, t + Duration::from_secs(1))
    else {
        panic!("still settling")
    };
    assert!(f.is_empty() && waiting.len() == 1 && waiting[0].0 == "n2");
    assert_eq!(round_at(&mut e, &v, &s, &c, &cw, t + FENCE_RETRY), fence);
}

#[test]
fn a_lost_node_that_comes_back_is_fenced_at_once_on_its_next_loss() {
    let mut e = Engine::default();
    let (s, c, cw) = (
        state(&running_on_n2(), &[]),
        cluster(true),
        ConfirmWatch::default(),
    );
    let t = Instant::now();
    let lost = view(&["n2"], None);
    assert!(
        matches!(round_at(&mut e, &lost, &s, &c, &cw, t), Round::Settle { ref fence, .. } if fence == &["n2"])
    );
    round_at(&mut e, &view(&[], None), &s, &c, &cw, t);
    let again = round_at(&mut e, &lost, &s, &c, &cw, t + Duration::from_secs(1));
    assert!(matches!(again, Round::Settle { ref fence, .. } if fence == &["n2"]));
}

#[test]
fn without_a_fence_device_a_lost_node_blocks_scheduling_until_confirmed_down() {
    let mut e = Engine::default();
    let (v, c) = (view(&["n2"], Some(300)), cluster(false));
    let s = state(&running_on_n2(), &[]);
    let Round::Settle {
        fence,
        record,
        waiting,
        ..
    } = round(&mut e, &v, &s, &c)
    else {
        panic!("settling")
    };
    assert!(fence.is_empty() && record.is_empty());
    assert_eq!(waiting.len(), 1);
    assert!(
        waiting[0].1.contains("tandem node confirm-down n2"),
        "{}",
        waiting[0].1
    );
}

#[test]
fn a_confirmation_seen_after_the_loss_records_the_node_down() {
    let mut e = Engine::default();
    let (v, c) = (view(&["n2"], Some(300)), cluster(false));
    let s = state(&running_on_n2(), &[("n2", crate::lease::CONFIRMED_DOWN)]);
    let mut cw = ConfirmWatch::default();
    cw.observe(&view(&[], None), 5, &BTreeSet::new());
    cw.observe(&v, 7, &BTreeSet::from(["n2".to_string()]));
    let r = round_at(&mut e, &v, &s, &c, &cw, Instant::now());
    let Round::Settle {
        record,
        waiting,
        fence,
        ..
    } = r
    else {
        panic!("{r:?}")
    };
    assert!(waiting.is_empty() && fence.is_empty());
    assert_eq!(
        record,
        vec![
            Command::RecordFence(FenceRecord {
                target: "n2".into(),
                action: "confirmed-down".into(),
                device: String::new(),
                executor: "n1".into(),
                ok: true,
                at_ms: T0_MS,
                detail: "an operator confirmed it down; its lease expired 300 ms ago".into(),
            }),
            Command::NodeDown { node: "n2".into() },
        ]
    );
}

#[test]
fn a_confirmation_made_before_the_node_was_last_online_is_withdrawn() {
    let mut e = Engine::default();
    let (v, c) = (view(&["n2"], Some(300)), cluster(false));
    let s = state(&running_on_n2(), &[("n2", crate::lease::CONFIRMED_DOWN)]);
    let mut cw = ConfirmWatch::default();
    cw.observe(&view(&["n2"], None), 5, &BTreeSet::from(["n2".to_string()]));
    cw.observe(&view(&[], None), 6, &BTreeSet::from(["n2".to_string()]));
    let r = round_at(&mut e, &v, &s, &c, &cw, Instant::now());
    let Round::Commit { commands, .. } = r else {
        panic!("{r:?}")
    };
    assert_eq!(
        commands,
        vec![Command::SetTransient {
            node: "n2".into(),
            name: crate::lease::CONFIRMED_DOWN.into(),
            value: None,
        }]
    );
}

#[test]
fn a_clean_shutdown_is_recorded_down_once_its_lease_expired_never_fenced() {
    let mut e = Engine::default();
    let c = cluster(true);
    let stopped = vec![
        ("n2", op("web", "stop", 0, 0)),
        ("n2", op("fence", "monitor", 7, 0)),
    ];
    let s = state(&stopped, &[("n2", SHUTDOWN)]);
    let r = round(&mut e, &view(&["n2"], None), &s, &c);
    assert!(
        matches!(r, Round::Settle { ref fence, ref record, ref waiting, .. }
        if fence.is_empty() && record.is_empty() && waiting.len() == 1)
    );
    let r = round(&mut e, &view(&["n2"], Some(10)), &s, &c);
    let Round::Settle { record, fence, .. } = r else {
        panic!("{r:?}")
    };
    assert!(fence.is_empty());
    assert_eq!(
        record.last(),
        Some(&Command::NodeDown { node: "n2".into() })
    );
    assert!(
        matches!(&record[0], Command::RecordFence(f) if f.action == "clean-shutdown"),
        "{record:?}"
    );
}

#[test]
fn a_shutdown_with_something_still_active_is_fenced() {
    let mut e = Engine::default();
    let s = state(&running_on_n2(), &[("n2", SHUTDOWN)]);
    let r = round(&mut e, &view(&["n2"], Some(10)), &s, &cluster(true));
    assert!(
        matches!(r, Round::Settle { ref fence, .. } if fence == &["n2"]),
        "{r:?}"
    );
}

#[test]
fn a_pending_operation_on_an_online_node_is_forgotten_so_it_is_probed() {
    let mut e = Engine::default();
    let pending = vec![("n3", op("web", "start", 193, crate::oprecord::PENDING))];
    let r = round(
        &mut e,
        &view(&[], None),
        &state(&pending, &[]),
        &cluster(false),
    );
    let Round::Commit { commands, .. } = r else {
        panic!("{r:?}")
    };
    assert_eq!(
        commands,
        vec![Command::ForgetHistory {
            node: Some("n3".into()),
            resource: Some("web".into()),
        }]
    );
}

fn action(target: &str, task: &str, node: &str, after: Vec<usize>) -> Action {
    Action {
        target: target.into(),
        task: task.into(),
        node: Some(node.into()),
        interval_ms: 0,
        pseudo: false,
        after,
    }
}

#[test]
fn the_same_transition_three_times_backs_off() {
    let mut e = Engine::default();
    let s = state(&[], &[]);
    let plan = vec![action("web", "start", "n2", vec![])];
    assert_eq!(e.planned(&plan, &s, &cluster(false), 0), Planned::Execute);
    assert_eq!(e.planned(&plan, &s, &cluster(false), 0), Planned::Execute);
    assert_eq!(
        e.planned(&plan, &s, &cluster(false), 0),
        Planned::BackOff { repeated: 3 }
    );
    assert_eq!(
        e.planned(&plan, &s, &cluster(false), 0),
        Planned::Execute,
        "counting again"
    );
    let other = vec![action("web", "start", "n3", vec![])];
    assert_eq!(e.planned(&other, &s, &cluster(false), 0), Planned::Execute);
}

#[test]
fn an_idle_plan_acknowledges_finished_shutdowns_only() {
    let mut e = Engine::default();
    let stopped = vec![
        ("n2", op("web", "stop", 0, 0)),
        ("n3", op("web", "start", 0, 0)),
    ];
    let s = state(&stopped, &[("n2", SHUTDOWN), ("n3", SHUTDOWN)]);
    assert_eq!(
        e.planned(&[], &s, &cluster(false), 42),
        Planned::Idle {
            acknowledge: vec![Command::SetTransient {
                node: "n2".into(),
                name: SHUTDOWN_DONE.into(),
                value: Some("42".into()),
            }]
        }
    );
    let mut acked = s.clone();
    acked
        .status
        .get_mut("n2")
        .unwrap()
        .transient
        .insert(SHUTDOWN_DONE.into(), "42".into());
    assert_eq!(
        e.planned(&[], &acked, &cluster(false), 43),
        Planned::Idle {
            acknowledge: vec![]
        }
    );
}

#[test]
fn while_work_remains_a_leaving_node_no_action_concerns_may_go_but_not_the_dc() {
    let last = vec![
        ("n1", op("web", "stop", 0, 0)),
        ("n2", op("web", "stop", 0, 0)),
        ("n3", op("web", "start", 0, 0)),
    ];
    let s = state(
        &last,
        &[("n1", SHUTDOWN), ("n2", SHUTDOWN), ("n3", SHUTDOWN)],
    );
    let ack = |node: &str| Command::SetTransient {
        node: node.into(),
        name: SHUTDOWN_DONE.into(),
        value: Some("7".into()),
    };
    // n1 is the DC; n3 still runs web.
    let plan = vec![action("web", "stop", "n3", vec![])];
    assert_eq!(
        crate::engine::shutdowns_done_meanwhile(&plan, &s, &cluster(false), "n1", 7),
        vec![ack("n2")]
    );
    let on_n2 = vec![action("web", "monitor", "n2", vec![])];
    assert_eq!(
        crate::engine::shutdowns_done_meanwhile(&on_n2, &s, &cluster(false), "n1", 7),
        vec![]
    );
    assert_eq!(
        crate::engine::shutdowns_done_meanwhile(&[], &s, &cluster(false), "n3", 7),
        vec![ack("n1"), ack("n2")],
        "nothing configured: every leaving node that runs nothing"
    );
    assert_eq!(
        crate::engine::shutdowns_done_meanwhile(&[], &s, &cluster(false), "n1", 7),
        vec![ack("n1"), ack("n2")],
        "with no work left the DC may go too"
    );
}

#[test]
fn a_node_whose_history_does_not_show_every_primitive_stopped_may_run_something() {
    let c = cluster(false);
    // Never probed there, or its history forgotten: unknown, not nothing.
    assert!(!runs_nothing(&NodeStatus::default(), &c));
    let stopped = state(&[("n2", op("web", "stop", 0, 0))], &[]);
    assert!(runs_nothing(&stopped.status["n2"], &c));
    let probed = state(&[("n2", op("web", "monitor", 7, 0))], &[]);
    assert!(runs_nothing(&probed.status["n2"], &c));
    let in_flight = state(&[("n2", op("web", "start", 193, -1))], &[]);
    assert!(!runs_nothing(&in_flight.status["n2"], &c));
    // A probe that found the agent missing (rc 5) or misconfigured (rc 2):
    // the scheduler reads it as stopped there, and so does this.
    for rc in [5, 2] {
        let masked = state(&[("n2", op("web", "monitor", rc, 0))], &[]);
        assert!(runs_nothing(&masked.status["n2"], &c), "rc {rc}");
    }
    // A failed stop is not stopped.
    let failed_stop = state(&[("n2", op("web", "stop", 1, 0))], &[]);
    assert!(!runs_nothing(&failed_stop.status["n2"], &c));
    // Startup probes disabled: what never ran there counts as stopped.
    let unprobed = tandem_model::native::parse_toml(
        "[cluster]\noptions = { enable-startup-probes = false }\n\
         [[resource]]\nid = \"web\"\nagent = \"ocf:heartbeat:Dummy\"\n",
    )
    .unwrap();
    assert!(runs_nothing(&NodeStatus::default(), &unprobed));
}

#[test]
fn dispatch_follows_dependencies_and_skips_what_runs_nowhere() {
    let actions = vec![
        action("web", "stop", "n2", vec![]),
        Action {
            pseudo: true,
            ..action("web", "stopped", "n2", vec![0])
        },
        action("web", "start", "n3", vec![1]),
        action("web", "monitor", "n3", vec![2]),
    ];
    let mut d = Dispatch::new(&actions, vec![true, false, true, true]);
    assert_eq!(d.ready(&actions), vec![Start::Execute(0)]);
    assert_eq!(d.ready(&actions), vec![], "each action starts once");
    d.finished(0, Finished::Ok, &actions);
    assert_eq!(
        d.ready(&actions),
        vec![Start::Execute(2)],
        "through the pseudo action"
    );
    d.finished(2, Finished::Ok, &actions);
    assert_eq!(d.ready(&actions), vec![Start::Execute(3)]);
    assert_eq!(d.stopped(), None);
}

#[test]
fn dispatch_starts_nothing_after_a_failure_or_a_missing_result() {
    let actions = vec![
        action("a", "stop", "n2", vec![]),
        action("b", "stop", "n2", vec![]),
        action("a", "start", "n3", vec![0]),
        action("b", "start", "n3", vec![1]),
    ];
    let mut d = Dispatch::new(&actions, vec![true; 4]);
    assert_eq!(
        d.ready(&actions),
        vec![Start::Execute(0), Start::Execute(1)]
    );
    d.finished(0, Finished::NoResult, &actions);
    d.finished(1, Finished::Ok, &actions);
    assert_eq!(
        d.ready(&actions),
        vec![],
        "b's start waits for the next plan"
    );
    assert_eq!(d.stopped(), Some("stop of a: no result"));
    d.finished(1, Finished::Failed("later".into()), &actions);
    assert_eq!(
        d.stopped(),
        Some("stop of a: no result"),
        "the first reason stays"
    );
}

#[test]
fn a_fence_action_is_started_as_a_fence() {
    let actions = vec![Action {
        node: None,
        ..action("n2", "fence", "n1", vec![])
    }];
    let mut d = Dispatch::new(&actions, vec![false]);
    assert_eq!(d.ready(&actions), vec![Start::Fence(0)]);
}

#[test]
fn a_confirmation_counts_only_if_seen_after_the_node_was_last_online() {
    let mut w = ConfirmWatch::default();
    w.online_at.insert("n2".into(), 10);
    // Confirmed while lost (index 12): counts, not stale.
    w.confirmed_at.insert("n2".into(), 12);
    assert!(w.counts("n2") && !w.stale("n2"));
    // Then seen online again at 15: stale, no longer counts.
    w.online_at.insert("n2".into(), 15);
    assert!(!w.counts("n2") && w.stale("n2"));
    // Withdrawn (gone from the state): forgotten.
    let view_less: BTreeSet<String> = BTreeSet::new();
    w.confirmed_at.retain(|n, _| view_less.contains(n));
    assert!(!w.counts("n2") && !w.stale("n2"));
    // Never seen online by this DC: a confirmation counts.
    w.confirmed_at.insert("n3".into(), 20);
    assert!(w.counts("n3"));
}

#[test]
fn a_node_heard_before_its_rejoin_is_recorded_is_pending_and_given_nothing() {
    // Nothing probed, nothing running; only n3 has rejoined.
    let mut s = Replicated::default();
    s.apply(&Command::Rejoined {
        node: "n3".into(),
        id: 9,
    });
    let mut c = cluster(false);
    crate::live::apply_live_state(&mut c, &view(&[], None), &s);
    let joins: Vec<_> = c
        .status
        .nodes
        .iter()
        .map(|n| n.join.clone().unwrap_or_default())
        .collect();
    assert_eq!(joins, ["pending", "pending", "member"]);
    let t = tandem_scheduler::schedule(&c, T0_MS / 1000);
    let work: Vec<_> = t
        .actions
        .iter()
        .filter(|a| !a.pseudo)
        .map(|a| (a.task.as_str(), a.node.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(work, [("start", "n3")]);
}

#[test]
fn a_stopped_orphan_leaves_the_history_and_an_active_one_stays_to_be_stopped() {
    let mut e = Engine::default();
    let mut s = state(&[], &[]);
    let mut orphan = |node: &str, rsc: &str, o: HistoryOp| {
        s.status.get_mut(node).unwrap().resources.insert(
            rsc.into(),
            ResourceOps {
                ops: BTreeMap::from([(o.id.clone(), o)]),
                ..Default::default()
            },
        );
    };
    orphan("n2", "old", op("old", "stop", 0, 0));
    orphan("n3", "old", op("old", "start", 0, 0));
    orphan("n3", "gone:1", op("gone:1", "monitor", 7, 0));
    let r = round(&mut e, &view(&[], None), &s, &cluster(false));
    let Round::Commit { commands, .. } = r else {
        panic!("expected a commit, got {r:?}");
    };
    let forget = |node: &str, rsc: &str| Command::ForgetHistory {
        node: Some(node.into()),
        resource: Some(rsc.into()),
    };
    assert_eq!(commands, [forget("n2", "old"), forget("n3", "gone:1")]);
}

#[test]
fn an_orphan_is_stopped_with_the_agent_of_its_history() {
    let mut s = state(&[], &[]);
    s.status.get_mut("n3").unwrap().resources.insert(
        "old".into(),
        ResourceOps {
            agent: tandem_cluster::ResourceAgent {
                id: "old".into(),
                class: Some("ocf".into()),
                provider: Some("heartbeat".into()),
                agent: Some("IPaddr2".into()),
            },
            ops: BTreeMap::from([("old_last_0".into(), op("old", "start", 0, 0))]),
        },
    );
    let mut c = cluster(false);
    crate::live::apply_live_state(&mut c, &view(&[], None), &s);
    let stop = action("old", "stop", "n3", Vec::new());
    let (node, request) = request_for(&c, &[stop], 0, 4).expect("an orphan's stop is sent");
    assert_eq!(node, "n3");
    assert_eq!(request.resource.agent.as_deref(), Some("IPaddr2"));
    assert_eq!(
        (request.instance.as_str(), request.action.as_str()),
        ("old", "stop")
    );
    assert!(
        request.params.is_empty(),
        "the executor stops it as it started it"
    );
    // Nothing but a stop or demote is made of an orphan.
    let start = action("old", "start", "n3", Vec::new());
    assert!(request_for(&c, &[start], 0, 4).is_none());
}
