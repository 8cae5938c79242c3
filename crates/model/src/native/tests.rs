//! Tests of the native format: round trips, every error kind, a realistic config.

use super::*;

const EXAMPLE: &str = include_str!("../../../../examples/web-cluster.toml");

fn problems(text: &str) -> Vec<String> {
    match parse_toml(text) {
        Err(NativeError::Invalid(p)) => p.iter().map(|p| p.to_string()).collect(),
        other => panic!("expected semantic errors, got {other:?}"),
    }
}

fn round_trip(text: &str) -> Cluster {
    let first = parse_toml(text).unwrap_or_else(|e| panic!("{e}"));
    let written = to_toml(&first);
    let second = parse_toml(&written).unwrap_or_else(|e| panic!("{e}\n---\n{written}"));
    assert_eq!(first, second, "round trip changed the model:\n{written}");
    assert_eq!(written, to_toml(&second), "writing is not stable");
    first
}

#[test]
fn realistic_example_parses_into_the_expected_model() {
    let c = round_trip(EXAMPLE);
    assert_eq!(c.config.option("cluster-name"), Some("web"));
    assert_eq!(c.config.option("no-quorum-policy"), Some("stop"));
    assert_eq!(c.config.nodes.len(), 3);
    let ids: Vec<&str> = c.config.resources.iter().map(|r| r.id()).collect();
    assert_eq!(ids, ["fence-xvm", "web", "ping-clone", "db-clone"]);
    let Resource::Group(g) = &c.config.resources[1] else {
        panic!("web is a group")
    };
    assert_eq!(g.members[0].agent_spec(), "ocf:heartbeat:IPaddr2");
    assert_eq!(g.members[1].operations[0].interval_ms, 30_000);
    let Resource::Clone(db) = &c.config.resources[3] else {
        panic!("db-clone is a clone")
    };
    assert!(db.promotable);
    assert_eq!(c.config.constraints.len(), 5);
    assert_eq!(c.status.execution_date, Some(1_736_942_400));
    assert_eq!(c.status.dc_uuid.as_deref(), Some("1"));
    let node3 = &c.status.nodes[2];
    assert_eq!(node3.transient[0].pairs[0].name, "standby");
    let ids: Vec<&str> = node3.history.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(ids, ["vip", "site", "ping", "db"]);
    let db_ops: Vec<&str> = node3.history[3]
        .ops
        .iter()
        .map(|o| o.operation.as_str())
        .collect();
    // One record per id, as Pacemaker keeps it: the promote is the latest
    // one-shot operation (`db_last_0`).
    assert_eq!(db_ops, ["promote"]);
}

#[test]
fn online_node_state_matches_what_pacemaker_records() {
    let c = parse_toml(EXAMPLE).unwrap();
    let n = &c.status.nodes[0];
    assert_eq!(n.in_ccm.as_deref(), Some("true"));
    assert_eq!(n.crmd.as_deref(), Some("online"));
    assert_eq!(n.join.as_deref(), Some("member"));
    assert_eq!(n.expected.as_deref(), Some("member"));
    let calls: Vec<i64> = c
        .status
        .nodes
        .iter()
        .flat_map(|n| {
            n.history
                .iter()
                .flat_map(|h| h.ops.iter().map(|o| o.call_id))
        })
        .collect();
    assert!(
        calls.windows(2).all(|w| w[0] < w[1]),
        "call ids increase: {calls:?}"
    );
}

#[test]
fn failures_become_failed_ops_and_fail_counts() {
    let c = round_trip(
        r#"
[[node]]
name = "n1"
[[resource]]
id = "r"
agent = "ocf:pacemaker:Dummy"
op = [{ name = "monitor", interval = "10s" }]
[status]
execution-date = 1000
unclean = []
[[status.failed]]
resource = "r"
node = "n1"
"#,
    );
    let h = &c.status.nodes[0].history[0];
    assert_eq!(h.ops.len(), 2);
    assert_eq!(
        (
            h.ops[1].operation.as_str(),
            h.ops[1].rc_code,
            h.ops[1].interval_ms
        ),
        ("monitor", 1, 10_000)
    );
    let attrs: Vec<(&str, &str)> = c.status.nodes[0].transient[0]
        .pairs
        .iter()
        .map(|p| (p.name.as_str(), p.value.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(
        attrs,
        [
            ("fail-count-r#monitor_10000", "1"),
            ("last-failure-r#monitor_10000", "1000")
        ]
    );
}

#[test]
fn offline_and_unclean_nodes_and_unique_clones() {
    let c = round_trip(
        r#"
[[node]]
name = "a"
[[node]]
name = "b"
[[node]]
name = "c"
[[resource]]
id = "u"
agent = "ocf:pacemaker:Dummy"
[[clone]]
id = "uc"
of = "u"
meta = { globally-unique = true }
[status]
quorum = false
offline = ["b"]
unclean = ["c"]
running = { uc = ["a", "a"] }
tickets = { t1 = "granted", t2 = "standby" }
"#,
    );
    assert!(!c.status.have_quorum);
    assert_eq!(c.status.nodes[1].expected.as_deref(), Some("down"));
    assert_eq!(c.status.nodes[2].expected.as_deref(), Some("member"));
    let ids: Vec<&str> = c.status.nodes[0]
        .history
        .iter()
        .map(|h| h.id.as_str())
        .collect();
    assert_eq!(ids, ["u:0", "u:1"]);
    assert_eq!(c.status.tickets.len(), 2);
}

#[test]
fn everything_the_format_expresses_round_trips() {
    round_trip(
        r#"
[cluster]
name = "x"
options = [{ id = "opts", values = { stonith-enabled = false } }, { id = "night", score = 10, rule = { expressions = [{ date = "date_spec", spec = { hours = "0-6" } }] }, values = { placement-strategy = "balanced" } }]
templates = ["tpl"]
[[node]]
name = "n1"
id = "101"
kind = "member"
score = 5
utilization = { cpu = 8 }
[[node]]
name = "r1"
kind = "remote"
[[resource]]
id = "a"
agent = "systemd:nginx"
template = "tpl"
utilization = { cpu = 1 }
op = [{ name = "monitor", interval = "1min", timeout = "100ms", on-fail = "block", enabled = false, meta = { record-pending = true } }]
[[resource]]
id = "b"
agent = "lsb:foo"
[[group]]
id = "g"
members = ["b"]
meta = { target-role = "Stopped" }
[[clone]]
id = "gc"
of = "g"
[[location]]
id = "l1"
resource-pattern = "!^a"
rules = [{ score-attribute = "prio", role = "Started", expressions = [{ rule = { boolean-op = "or", expressions = [{ date = "in_range", start = 2024-01-01T00:00:00Z, duration = "1h" }, { resource-agent = "ocf:*:Dummy" }, { operation = "monitor", interval = "10s" }] } }] }]
resource-discovery = "never"
[[location]]
id = "l2"
sets = [{ resources = ["a", "gc"] }]
node = "n1"
score = "-INFINITY"
[[colocation]]
id = "c1"
sets = [{ id = "s1", resources = ["a"], sequential = false, role = "Started" }, { id = "s2", resources = ["gc"], require-all = true, score = 7 }]
score = -20
node-attribute = "rack"
influence = false
[[order]]
id = "o1"
sets = [{ id = "os", resources = ["a", "gc"], action = "stop", ordering = "listed", kind = "Serialize" }]
symmetrical = false
require-all = false
[[ticket]]
id = "t"
ticket = "T"
resource = "a"
role = "Started"
loss-policy = "fence"
[[tag]]
id = "both"
resources = ["a", "gc"]
[[fencing-level]]
id = "fl"
index = 2
target-attribute = { rack = "1" }
devices = ["a"]
"#,
    );
}

#[test]
fn syntax_errors_carry_line_and_column() {
    let err = parse_toml("[cluster]\nname = \"x\"\noptions = {\n").unwrap_err();
    match err {
        NativeError::Syntax { line, column, .. } => assert_eq!((line, column), (3, 12)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn all_semantic_errors_are_reported_at_once_with_table_and_field() {
    let p = problems(
        r#"
[[node]]
name = "n1"
[[node]]
name = "n1"
[[resource]]
id = "vip"
agent = "bogus:thing"
[[resource]]
id = "x"
agent = "ocf:Dummy"
[[resource]]
id = "y"
agent = "ocf:pacemaker:Dummy"
op = [{ name = "monitor", interval = "often" }]
[[resource]]
id = "y"
agent = "lsb:y"
colour = "red"
[[location]]
id = "loc-vip"
resource = "vip"
node = "n1"
score = 10
[[location]]
id = "loc-vip"
resource = "nope"
node = "n9"
score = "abc"
[[colocation]]
resource = "y"
with = "ghost"
[[order]]
first = "y"
then = "y"
kind = "Sometimes"
[[group]]
id = "g"
members = ["missing"]
[status]
standby = ["n7"]
"#,
    );
    let expect = [
        "[[node]] #2 (id \"n1\"): field \"name\": duplicate node name \"n1\"",
        "[[resource]] #1 (id \"vip\"): field \"agent\": \"bogus:thing\": unknown agent class \"bogus\"",
        "[[resource]] #2 (id \"x\"): field \"agent\": \"ocf:Dummy\" is not an agent",
        "[[resource]] #3 (id \"y\"): field \"op[0].interval\": \"often\" is not a duration",
        "[[resource]] #4 (id \"y\"): field \"colour\": unknown field",
        "[[resource]] #4 (id \"y\"): field \"id\": duplicate resource id \"y\"",
        "[[location]] #2 (id \"loc-vip\"): field \"score\": \"abc\" is not a score",
        "[[location]] #2 (id \"loc-vip\"): field \"id\": duplicate constraint id \"loc-vip\"",
        "[[location]] #1 (id \"loc-vip\"): field \"resource\": unknown resource \"vip\"",
        "[[colocation]] #1: field \"score\": is required",
        "[[colocation]] #1 (id \"colocation-y-ghost\"): field \"with\": unknown resource \"ghost\"",
        "[[order]] #1: field \"kind\": \"Sometimes\" is not an order kind",
        "[[group]] #1 (id \"g\"): field \"members\": unknown resource \"missing\"",
        "[status]: field \"standby\": unknown node \"n7\"",
    ];
    for e in expect {
        assert!(
            p.iter().any(|x| x.starts_with(e)),
            "missing {e:?} in:\n{}",
            p.join("\n")
        );
    }
}

#[test]
fn wrong_types_and_shapes_are_errors_not_panics() {
    let p = problems(
        r#"
node = 3
cluster = "x"
[[resource]]
id = 5
agent = "ocf:pacemaker:Dummy"
params = ["a"]
[[location]]
resource = "r"
[[clone]]
id = "c"
of = "r"
promotable = "maybe"
[status]
running = { r = 7 }
failed = [{ resource = "r", node = "n", rc = 0 }]
"#,
    );
    let expect = [
        "top level: field \"node\": expected an array of tables ([[node]]), found an integer",
        "top level: field \"cluster\": expected a table, found a string",
        "[[resource]] #1: field \"id\": expected a string, found an integer",
        "[[location]] #1: give \"node\" and \"score\", or \"rules\"",
        "[[clone]] #1 (id \"c\"): field \"promotable\": \"maybe\" is not a boolean",
        "[status]: field \"running.r\": unknown resource \"r\"",
        "[status]: field \"failed[0].rc\": 0 is not a failure exit code",
    ];
    for e in expect {
        assert!(
            p.iter().any(|x| x.starts_with(e)),
            "missing {e:?} in:\n{}",
            p.join("\n")
        );
    }
}

#[test]
fn dates_convert_both_ways() {
    assert_eq!(epoch_to_rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(epoch_to_rfc3339(1_736_942_400), "2025-01-15T12:00:00Z");
    let dt: toml::value::Datetime = "2024-02-29T23:59:59+01:00".parse().unwrap();
    assert_eq!(datetime_to_epoch(&dt), Some(1_709_247_599));
}

#[test]
fn scores_accept_only_whole_values() {
    assert_eq!(
        score_value(&Value::String("INFINITY".into())),
        Some(Score::INFINITY)
    );
    assert_eq!(
        score_value(&Value::String("-inf".into())),
        Some(Score::NEG_INFINITY)
    );
    assert_eq!(
        score_value(&Value::Integer(5_000_000)),
        Some(Score::INFINITY)
    );
    assert_eq!(score_value(&Value::String("100abc".into())), None);
    assert_eq!(score_value(&Value::Boolean(true)), None);
}
