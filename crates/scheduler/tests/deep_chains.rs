//! Long constraint chains are scheduled on an ordinary 2 MiB thread: no
//! walk in the scheduler recurses once per link, so the length of a
//! colocation, order or tag chain in the input cannot overflow the stack
//! of the thread that schedules it (issue 12: an 8,000-link chain used to
//! abort the daemon).

use std::fmt::Write as _;
use tandem_model::native::parse_toml;
use tandem_scheduler::view::collect_primitives;
use tandem_scheduler::{schedule, Transition};

const NOW: i64 = 1_767_225_600;

/// The links in the chains below, as in the attack that found the bug.
const LINKS: usize = 8_000;

/// Links of the chains whose scheduling is quadratic (each placement
/// merges the preferences of the rest of the chain, as Pacemaker does):
/// 8,000 take 100 s in a debug build, so a debug build walks 2,000 (still
/// far deeper than the recursion a 2 MiB stack held) and a release build
/// the full 8,000.
const MERGED_LINKS: usize = if cfg!(debug_assertions) { 2_000 } else { LINKS };

/// The default stack of a spawned thread (and of a tokio worker).
const STACK_BYTES: usize = 2 << 20;

/// How consecutive resources of a chain are linked.
#[derive(Clone, Copy)]
enum Link {
    /// `r{i}` with `r{i-1}`: each resource is the primary of the next.
    ColocationForward,
    /// `r{i-1}` with `r{i}`: assigning `r0` must first place all others.
    ColocationBackward,
    /// The same, `influence = false`, and every resource already running
    /// on node2: only the placement walk is deep, no preferences merge.
    ColocationBackwardRunning,
    /// first `r{i-1}` then `r{i}`.
    Order,
}

/// Three nodes and `count` primitives linked pairwise by `link`.
fn chain(count: usize, link: Link) -> String {
    let mut toml = String::from(
        "[cluster]\noptions = { fencing-enabled = false, no-quorum-policy = \"ignore\" }\n\
         [[node]]\nname = \"node1\"\n[[node]]\nname = \"node2\"\n[[node]]\nname = \"node3\"\n",
    );
    for i in 0..count {
        let _ = writeln!(
            toml,
            "[[resource]]\nid = \"r{i}\"\nagent = \"ocf:heartbeat:Dummy\""
        );
    }
    let _ = writeln!(
        toml,
        "[[location]]\nid = \"r0-prefers-node2\"\nresource = \"r0\"\nnode = \"node2\"\nscore = 100"
    );
    for i in 1..count {
        let (kind, a, b, c) = match link {
            Link::ColocationForward => ("colocation", "resource", "with", (i, i - 1)),
            Link::ColocationBackward | Link::ColocationBackwardRunning => {
                ("colocation", "resource", "with", (i - 1, i))
            }
            Link::Order => ("order", "first", "then", (i - 1, i)),
        };
        let score = match link {
            Link::Order => "",
            Link::ColocationBackwardRunning => "score = \"INFINITY\"\ninfluence = false\n",
            _ => "score = \"INFINITY\"\n",
        };
        let _ = writeln!(
            toml,
            "[[{kind}]]\nid = \"link{i}\"\n{a} = \"r{}\"\n{b} = \"r{}\"\n{score}",
            c.0, c.1
        );
    }
    toml.push_str("[status]\n");
    if let Link::ColocationBackwardRunning = link {
        toml.push_str("[status.running]\n");
        for i in 0..count {
            let _ = writeln!(toml, "r{i} = \"node2\"");
        }
    }
    toml
}

/// Schedules `toml` on a thread with the default 2 MiB stack.
fn schedule_on_small_stack(toml: String) -> Transition {
    let cluster = parse_toml(&toml).unwrap_or_else(|e| panic!("chain does not parse: {e}"));
    std::thread::Builder::new()
        .stack_size(STACK_BYTES)
        .spawn(move || {
            let t0 = std::time::Instant::now();
            let t = schedule(&cluster, NOW);
            eprintln!("schedule {:?}", t0.elapsed());
            t
        })
        .expect("spawn a scheduling thread")
        .join()
        .expect("the scheduler finished without overflowing its stack")
}

/// Node of every started primitive, by id.
fn nodes(t: &Transition) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    for r in &t.revised.resources {
        collect_primitives(r, &mut |p| {
            if let Some(a) = p.active.first() {
                out.insert(p.id.clone(), a.node.clone());
            }
        });
    }
    out
}

/// Schedules a chain of [`MERGED_LINKS`] and checks every link started
/// where `r0` prefers to run.
fn all_follow_r0(link: Link) {
    let t = schedule_on_small_stack(chain(MERGED_LINKS, link));
    let placed = nodes(&t);
    assert_eq!(placed.len(), MERGED_LINKS, "every link is started");
    assert!(placed.values().all(|n| n == "node2"), "all follow r0");
}

#[test]
fn a_long_colocation_chain_runs_together_where_its_head_prefers() {
    all_follow_r0(Link::ColocationForward);
}

#[test]
fn a_long_backward_colocation_chain_runs_together_where_its_tail_prefers() {
    all_follow_r0(Link::ColocationBackward);
}

#[test]
fn an_8000_link_chain_placed_primary_first_stays_where_it_runs() {
    let t = schedule_on_small_stack(chain(LINKS, Link::ColocationBackwardRunning));
    let placed = nodes(&t);
    assert_eq!(placed.len(), LINKS, "every link keeps running");
    assert!(placed.values().all(|n| n == "node2"));
    assert!(t.summary.is_empty(), "nothing moves: {:?}", &t.summary[..1]);
}

#[test]
fn a_long_order_chain_starts_each_link_after_the_one_before() {
    let t = schedule_on_small_stack(chain(LINKS, Link::Order));
    let starts: Vec<&tandem_scheduler::Action> =
        t.actions.iter().filter(|a| a.task == "start").collect();
    assert_eq!(starts.len(), LINKS);
    let position = |id: &str| {
        t.actions
            .iter()
            .position(|a| a.target == id && a.task == "start")
    };
    for i in 1..LINKS {
        let (before, after) = (position(&format!("r{}", i - 1)), position(&format!("r{i}")));
        assert!(before < after, "r{} starts before r{i}", i - 1);
    }
}

#[test]
fn a_tag_that_names_itself_expands_once() {
    let toml = format!(
        "{}[[tag]]\nid = \"loop\"\nresources = [\"loop\", \"r1\", \"loop\"]\n\
         [[location]]\nid = \"loop-avoids-node2\"\nresource = \"loop\"\nnode = \"node2\"\n\
         score = \"-INFINITY\"\n",
        chain(2, Link::Order)
    );
    let t = schedule_on_small_stack(toml);
    let placed = nodes(&t);
    assert_eq!(placed["r0"], "node2", "r0 prefers node2");
    assert_ne!(placed["r1"], "node2", "the tag names r1: {placed:?}");
}

/// `r{i}` with `r{i-1}` and with `r{i-2}`: the paths through the graph,
/// which merging preferences follows, double every two links.
fn lattice(count: usize) -> String {
    let mut toml = chain(count, Link::ColocationForward);
    for i in 2..count {
        let _ = writeln!(
            toml,
            "[[colocation]]\nid = \"skip{i}\"\nresource = \"r{i}\"\nwith = \"r{}\"\nscore = 10",
            i - 2
        );
    }
    toml.replace("[status]\n", "") + "[status]\n"
}

#[test]
fn a_run_over_its_work_limit_ends_with_an_error() {
    let cluster = parse_toml(&lattice(200)).unwrap();
    let err = tandem_scheduler::schedule_with_limit(&cluster, NOW, 1_000_000).unwrap_err();
    assert_eq!(
        err,
        tandem_scheduler::ScheduleError::TooMuchWork { limit: 1_000_000 }
    );
    assert!(err.to_string().contains("colocation"), "{err}");
}

#[test]
fn a_run_within_its_work_limit_is_the_unlimited_run() {
    let cluster = parse_toml(&lattice(12)).unwrap();
    let limited = tandem_scheduler::schedule_with_limit(&cluster, NOW, 1_000_000).unwrap();
    let unlimited = schedule(&cluster, NOW);
    assert_eq!(nodes(&limited), nodes(&unlimited));
    assert_eq!(limited.actions, unlimited.actions);
    assert_eq!(nodes(&limited).len(), 12);
}
