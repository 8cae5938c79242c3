//! Scheduler behaviour on small hand-written clusters (tandem's TOML
//! format): each test states one Pacemaker rule and checks where resources
//! end up and which summary lines the transition has.

use tandem_model::native::parse_toml;
use tandem_scheduler::view::collect_primitives;
use tandem_scheduler::{schedule, Transition};

const NOW: i64 = 1_767_225_600;

fn run(toml: &str) -> Transition {
    let cluster = parse_toml(toml).unwrap_or_else(|e| panic!("test config does not parse: {e}"));
    schedule(&cluster, NOW)
}

/// Where `id` runs after the transition, as "Role@node" strings.
fn placed(t: &Transition, id: &str) -> Vec<String> {
    let mut out = Vec::new();
    for r in &t.revised.resources {
        collect_primitives(r, &mut |p| {
            if tandem_scheduler::view::strip_instance(&p.id) == id {
                out.extend(p.active.iter().map(|a| format!("{}@{}", a.role, a.node)));
            }
        });
    }
    out.sort();
    out
}

fn summary(t: &Transition) -> Vec<String> {
    t.summary
        .iter()
        .map(|l| format!("{} {} ({})", l.verb, l.resource, l.detail))
        .collect()
}

const TWO_NODES: &str = r#"
[cluster]
options = { fencing-enabled = false, no-quorum-policy = "ignore" }
[[node]]
name = "node1"
[[node]]
name = "node2"
"#;

#[test]
fn stickiness_keeps_a_running_resource_against_a_weaker_location() {
    let t = run(&format!(
        r#"{TWO_NODES}
[[resource]]
id = "db"
agent = "ocf:heartbeat:Dummy"
meta = {{ resource-stickiness = 100 }}
[[location]]
id = "db-prefers-node2"
resource = "db"
node = "node2"
score = 50
[status.running]
db = "node1"
"#
    ));
    assert_eq!(placed(&t, "db"), ["Started@node1"]);
    assert!(
        t.summary.is_empty(),
        "nothing should move: {:?}",
        summary(&t)
    );
}

#[test]
fn a_stronger_location_moves_a_sticky_resource() {
    let t = run(&format!(
        r#"{TWO_NODES}
[[resource]]
id = "db"
agent = "ocf:heartbeat:Dummy"
meta = {{ resource-stickiness = 100 }}
[[location]]
id = "db-prefers-node2"
resource = "db"
node = "node2"
score = 150
[status.running]
db = "node1"
"#
    ));
    assert_eq!(placed(&t, "db"), ["Started@node2"]);
    assert_eq!(summary(&t), ["Move db (node1 -> node2)"]);
}

#[test]
fn mandatory_anti_colocation_separates_resources() {
    let t = run(&format!(
        r#"{TWO_NODES}
[[resource]]
id = "a"
agent = "ocf:heartbeat:Dummy"
[[resource]]
id = "b"
agent = "ocf:heartbeat:Dummy"
[[location]]
id = "a-on-node1"
resource = "a"
node = "node1"
score = 100
[[location]]
id = "b-on-node1"
resource = "b"
node = "node1"
score = 100
[[colocation]]
id = "b-apart-from-a"
resource = "b"
with = "a"
score = "-INFINITY"
[status]
"#
    ));
    assert_eq!(placed(&t, "a"), ["Started@node1"]);
    assert_eq!(placed(&t, "b"), ["Started@node2"]);
}

#[test]
fn group_members_follow_the_first_member_and_start_in_order() {
    let t = run(&format!(
        r#"{TWO_NODES}
[[resource]]
id = "vip"
agent = "ocf:heartbeat:IPaddr2"
[[resource]]
id = "web"
agent = "ocf:heartbeat:apache"
[[group]]
id = "site"
members = ["vip", "web"]
[[location]]
id = "site-on-node2"
resource = "site"
node = "node2"
score = 10
[status]
"#
    ));
    assert_eq!(placed(&t, "vip"), ["Started@node2"]);
    assert_eq!(placed(&t, "web"), ["Started@node2"]);
    assert_eq!(summary(&t), ["Start vip (node2)", "Start web (node2)"]);
}

#[test]
fn a_banned_later_member_stops_only_itself_when_no_node_fits_the_group() {
    let t = run(&format!(
        r#"{TWO_NODES}
[[resource]]
id = "vip"
agent = "ocf:heartbeat:IPaddr2"
[[resource]]
id = "web"
agent = "ocf:heartbeat:apache"
[[group]]
id = "site"
members = ["vip", "web"]
[[location]]
id = "web-never-node1"
resource = "web"
node = "node1"
score = "-INFINITY"
[[location]]
id = "vip-never-node2"
resource = "vip"
node = "node2"
score = "-INFINITY"
[status]
"#
    ));
    assert_eq!(placed(&t, "vip"), ["Started@node1"]);
    assert!(placed(&t, "web").is_empty());
}

#[test]
fn standby_node_is_emptied() {
    let t = run(&format!(
        r#"{TWO_NODES}
[[resource]]
id = "db"
agent = "ocf:heartbeat:Dummy"
[status]
standby = ["node1"]
[status.running]
db = "node1"
"#
    ));
    assert_eq!(placed(&t, "db"), ["Started@node2"]);
}

#[test]
fn migration_threshold_bans_the_failing_node() {
    let t = run(&format!(
        r#"{TWO_NODES}
[[resource]]
id = "db"
agent = "ocf:heartbeat:Dummy"
meta = {{ migration-threshold = 2, resource-stickiness = 100 }}
op = [{{ name = "monitor", interval = "10s" }}]
[status.running]
db = "node1"
[[status.failed]]
resource = "db"
node = "node1"
count = 2
"#
    ));
    assert_eq!(placed(&t, "db"), ["Started@node2"]);
    assert_eq!(summary(&t), ["Recover db (node1 -> node2)"]);
}

#[test]
fn a_failure_below_the_threshold_is_recovered_in_place() {
    let t = run(&format!(
        r#"{TWO_NODES}
[[resource]]
id = "db"
agent = "ocf:heartbeat:Dummy"
meta = {{ migration-threshold = 3, resource-stickiness = 100 }}
op = [{{ name = "monitor", interval = "10s" }}]
[status.running]
db = "node1"
[[status.failed]]
resource = "db"
node = "node1"
count = 1
"#
    ));
    assert_eq!(placed(&t, "db"), ["Started@node1"]);
    assert_eq!(summary(&t), ["Recover db (node1)"]);
}

#[test]
fn mandatory_order_on_a_stopped_resource_stops_the_dependent() {
    let t = run(&format!(
        r#"{TWO_NODES}
[[resource]]
id = "storage"
agent = "ocf:heartbeat:Dummy"
meta = {{ target-role = "Stopped" }}
[[resource]]
id = "app"
agent = "ocf:heartbeat:Dummy"
[[order]]
id = "storage-then-app"
first = "storage"
then = "app"
[status.running]
app = "node1"
"#
    ));
    assert!(placed(&t, "app").is_empty());
    assert_eq!(summary(&t), ["Stop app (node1)"]);
}

#[test]
fn lost_node_is_fenced_before_its_resources_move() {
    let t = run(r#"
[cluster]
options = { fencing-enabled = true }
[[node]]
name = "node1"
[[node]]
name = "node2"
[[node]]
name = "node3"
[[resource]]
id = "fence"
agent = "stonith:fence_dummy"
[[resource]]
id = "db"
agent = "ocf:heartbeat:Dummy"
[status]
unclean = ["node1"]
[status.running]
fence = "node2"
db = "node1"
"#);
    assert_eq!(t.summary[0].verb, "Fence");
    assert_eq!(t.summary[0].resource, "node1");
    assert_eq!(placed(&t, "db").len(), 1);
    assert!(!placed(&t, "db")[0].ends_with("node1"));
    let node1 = t
        .revised
        .nodes
        .iter()
        .find(|n| n.name == "node1")
        .expect("node1 listed");
    assert!(
        !node1.online && !node1.unclean,
        "a fenced node is cleanly offline"
    );
}

#[test]
fn without_quorum_policy_stop_stops_everything() {
    let t = run(r#"
[cluster]
options = { fencing-enabled = false, no-quorum-policy = "stop" }
[[node]]
name = "node1"
[[node]]
name = "node2"
[[resource]]
id = "db"
agent = "ocf:heartbeat:Dummy"
[status]
quorum = false
[status.running]
db = "node1"
"#);
    assert!(placed(&t, "db").is_empty());
}

#[test]
fn one_instance_of_a_promotable_clone_is_promoted_where_preferred() {
    let t = run(&format!(
        r##"{TWO_NODES}
[[resource]]
id = "db"
agent = "ocf:pacemaker:Stateful"
[[clone]]
id = "db-clone"
of = "db"
promotable = true
[[location]]
id = "promote-on-node2"
resource = "db-clone"
role = "Promoted"
rules = [{{ score = 100, expressions = [{{ attribute = "#uname", op = "eq", value = "node2" }}] }}]
[status]
"##
    ));
    assert_eq!(placed(&t, "db"), ["Promoted@node2", "Unpromoted@node1"]);
}

#[test]
fn same_input_gives_identical_output() {
    let config = format!(
        r#"{TWO_NODES}
[[resource]]
id = "a"
agent = "ocf:heartbeat:Dummy"
[[resource]]
id = "b"
agent = "ocf:heartbeat:Dummy"
[[colocation]]
id = "b-with-a"
resource = "b"
with = "a"
score = 50
[status]
"#
    );
    let first = serde_json::to_string(&run(&config)).expect("serializable");
    for _ in 0..5 {
        assert_eq!(
            serde_json::to_string(&run(&config)).expect("serializable"),
            first
        );
    }
}

#[test]
fn clone_notifications_surround_the_instance_that_starts() {
    let t = run(&format!(
        r#"{TWO_NODES}
[[resource]]
id = "fs"
agent = "ocf:heartbeat:Dummy"
[[clone]]
id = "fs-clone"
of = "fs"
meta = {{ notify = true }}
[status]
[status.running]
fs-clone = ["node1"]
"#
    ));
    let tasks: Vec<String> = t
        .actions
        .iter()
        .map(|a| {
            format!(
                "{} {} {}",
                a.target,
                a.task,
                a.node.as_deref().unwrap_or("-")
            )
        })
        .collect();
    let at = |needle: &str| {
        tasks
            .iter()
            .position(|t| t == needle)
            .unwrap_or_else(|| panic!("no {needle:?} in {tasks:?}"))
    };
    let start = tasks
        .iter()
        .position(|t| t.ends_with("start node2"))
        .expect("an instance starts on node2");
    assert!(at("fs-clone pre_notify_start -") < start);
    let post = at("fs-clone post_notify_running -");
    assert!(post > start);
    let notified_after: Vec<&String> = tasks[post..]
        .iter()
        .filter(|t| t.contains(" notify "))
        .collect();
    assert_eq!(
        notified_after.len(),
        2,
        "both instances hear about the start: {tasks:?}"
    );
}

#[test]
fn an_ordered_clone_stops_its_instances_in_reverse_order() {
    let config = |ordered: bool| {
        format!(
            r#"{TWO_NODES}
[[resource]]
id = "fs"
agent = "ocf:heartbeat:Dummy"
[[clone]]
id = "fs-clone"
of = "fs"
meta = {{ ordered = {ordered}, target-role = "Stopped" }}
[status]
[status.running]
fs-clone = ["node1", "node2"]
"#
        )
    };
    let stops = |t: &Transition| -> Vec<String> {
        t.actions
            .iter()
            .filter(|a| a.task == "stop")
            .map(|a| a.target.clone())
            .collect()
    };
    assert_eq!(stops(&run(&config(false))), ["fs:0", "fs:1"]);
    assert_eq!(stops(&run(&config(true))), ["fs:1", "fs:0"]);
}

#[test]
fn a_changed_parameter_restarts_the_instance_where_it_runs() {
    let mut cluster = parse_toml(&format!(
        r#"{TWO_NODES}
[[resource]]
id = "web"
agent = "ocf:heartbeat:Dummy"
params = {{ port = "8080" }}
meta = {{ resource-stickiness = 100 }}
[status.running]
web = "node1"
"#
    ))
    .unwrap();
    let mut recorded = |digest: &str| {
        for op in cluster
            .status
            .nodes
            .iter_mut()
            .flat_map(|n| &mut n.history)
            .flat_map(|h| &mut h.ops)
        {
            op.op_digest = Some(digest.to_string());
        }
        summary(&schedule(&cluster, NOW))
    };
    let port = |p: &str| {
        tandem_model::params_digest(&std::collections::BTreeMap::from([(
            "port".to_string(),
            p.to_string(),
        )]))
    };
    // Running with the configured parameters: nothing to do.
    assert!(recorded(&port("8080")).is_empty());
    // Started before the port changed: restarted where it runs.
    assert_eq!(recorded(&port("8081")), ["Restart web (node1)"]);
    // Pacemaker's own digests are not comparable and never compared.
    assert!(recorded("1f3b0c9a8e7d6c5b4a39281706f5e4d3").is_empty());
}
