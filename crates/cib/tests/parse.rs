//! Reads small hand-written CIBs and checks the parsed values field by
//! field: resources, templates, id-ref, constraints and sets, rules,
//! status history and tickets, and the located error messages.

use tandem_cib::{parse_cib, CibError, MAX_ELEMENT_DEPTH};
use tandem_model::config::FencingTarget;
use tandem_model::{
    BoolOp, Cluster, Constraint, DateOp, Expression, LocationTarget, NodeKind, OrderKind, Resource,
    Role, Score, ValueType,
};

/// A CIB around the given `<configuration>` children and `<status>` body.
fn cib(configuration: &str, status: &str) -> String {
    format!(
        r#"<cib have-quorum="1" dc-uuid="n1" execution-date="1700000000" validate-with="pacemaker-3.10" epoch="1">
  <configuration>
    <crm_config/>
    <nodes/>
    {configuration}
  </configuration>
  <status>{status}</status>
</cib>"#
    )
}

fn parse(configuration: &str) -> Cluster {
    parse_cib(&cib(configuration, "")).unwrap_or_else(|e| panic!("{e}"))
}

fn problems(text: &str) -> Vec<String> {
    match parse_cib(text) {
        Err(e @ CibError::Invalid { .. }) => e.problems().iter().map(ToString::to_string).collect(),
        other => panic!("expected content problems, got {other:?}"),
    }
}

fn constraint(cluster: &Cluster, index: usize) -> &Constraint {
    &cluster.config.constraints[index]
}

#[test]
fn root_attributes_fill_status() {
    let text = r#"<cib have-quorum="false" no-quorum-panic="1" have-watchdog="true" execution-date="42" dc-uuid="x">
      <configuration/><status/></cib>"#;
    let status = parse_cib(text).unwrap().status;
    assert!(!status.have_quorum && status.no_quorum_panic && status.have_watchdog);
    assert_eq!(
        (status.execution_date, status.dc_uuid.as_deref()),
        (Some(42), Some("x"))
    );
}

#[test]
fn cluster_options_keep_sets_scores_and_rules() {
    let cluster = parse(
        r#"<crm_config>
          <cluster_property_set id="cib-bootstrap-options">
            <nvpair id="o1" name="stonith-enabled" value="false"/>
            <nvpair id="o2" name="no-quorum-policy" value="ignore"/>
          </cluster_property_set>
          <cluster_property_set id="night" score="10">
            <rule id="night-rule"><date_expression id="d" operation="gt" start="2020-01-01"/></rule>
            <nvpair id="o3" name="maintenance-mode" value="true"/>
          </cluster_property_set>
        </crm_config>"#,
    );
    let options = &cluster.config.options;
    assert_eq!(options.len(), 2);
    assert_eq!(cluster.config.option("stonith-enabled"), Some("false"));
    assert_eq!(options[1].score, Score::new(10));
    let rule = options[1].rule.as_ref().unwrap();
    assert_eq!(rule.id, "night-rule");
    assert!(matches!(
        rule.expressions[0],
        Expression::Date {
            operation: DateOp::Gt,
            start: Some(1_577_836_800),
            end: None,
            ..
        }
    ));
}

#[test]
fn nodes_have_kind_score_attributes_and_utilization() {
    let cluster = parse(
        r#"<nodes>
          <node id="1" uname="n1" type="normal" score="50">
            <instance_attributes id="n1-attrs"><nvpair id="a" name="site" value="east"/></instance_attributes>
            <utilization id="n1-util"><nvpair id="u" name="cpu" value="4"/></utilization>
          </node>
          <node id="r1" uname="remote1" type="remote"/>
          <node id="p" uname="pinger" type="ping"/>
          <node id="2" uname="n2"/>
        </nodes>"#,
    );
    let nodes = &cluster.config.nodes;
    let kinds: Vec<NodeKind> = nodes.iter().map(|n| n.kind).collect();
    assert_eq!(
        kinds,
        [
            NodeKind::Member,
            NodeKind::Remote,
            NodeKind::Ping,
            NodeKind::Member
        ]
    );
    assert_eq!(
        (nodes[0].uname.as_str(), nodes[0].score),
        ("n1", Score::new(50))
    );
    assert_eq!(
        nodes[0].attributes[0].pairs[0].value.as_deref(),
        Some("east")
    );
    assert_eq!(nodes[0].utilization[0].pairs[0].name, "cpu");
}

#[test]
fn primitive_with_operations() {
    let cluster = parse(
        r#"<resources>
          <primitive id="ip" class="ocf" provider="heartbeat" type="IPaddr2">
            <instance_attributes id="ip-params"><nvpair id="p1" name="ip" value="10.0.0.1"/></instance_attributes>
            <meta_attributes id="ip-meta" score="5"><nvpair id="m1" name="target-role" value="Stopped"/></meta_attributes>
            <utilization id="ip-util"><nvpair id="u1" name="mem" value="2"/></utilization>
            <operations>
              <op id="ip-start" name="start" interval="0" timeout="20s"/>
              <op id="ip-mon" name="monitor" interval="10s" role="Slave" on-fail="block" enabled="false" requires="fencing" record-pending="true"/>
              <op id="ip-mon-iso" name="monitor" interval="PT1M"/>
            </operations>
          </primitive>
        </resources>"#,
    );
    let Resource::Primitive(p) = &cluster.config.resources[0] else {
        panic!("not a primitive")
    };
    assert_eq!(p.agent_spec(), "ocf:heartbeat:IPaddr2");
    assert_eq!(p.instance[0].pairs[0].value.as_deref(), Some("10.0.0.1"));
    assert_eq!(
        (p.meta[0].id.as_str(), p.meta[0].score),
        ("ip-meta", Score::new(5))
    );
    assert_eq!(p.utilization[0].pairs[0].name, "mem");
    let [start, monitor, iso] = &p.operations[..] else {
        panic!("three ops expected")
    };
    assert_eq!(
        (start.interval_ms, start.timeout_ms, start.enabled),
        (0, Some(20_000), true)
    );
    assert_eq!(
        (monitor.interval_ms, monitor.role),
        (10_000, Some(Role::Unpromoted))
    );
    assert_eq!(
        (monitor.on_fail.as_deref(), monitor.enabled),
        (Some("block"), false)
    );
    let extra = &monitor.meta[0];
    assert_eq!(extra.score, Score::INFINITY);
    let names: Vec<&str> = extra.pairs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["requires", "record-pending"]);
    assert_eq!(iso.interval_ms, 60_000);
    assert!(start.meta.is_empty());
}

#[test]
fn template_is_merged_into_primitive_and_primitive_wins() {
    let cluster = parse(
        r#"<resources>
          <template id="vm-template" class="ocf" provider="heartbeat" type="Xen">
            <meta_attributes id="t-meta"><nvpair id="t1" name="priority" value="1"/></meta_attributes>
            <operations>
              <op id="t-mon" name="monitor" interval="10s" timeout="30s"/>
              <op id="t-start" name="start" interval="0" timeout="60s"/>
            </operations>
          </template>
          <primitive id="vm1" template="vm-template" type="KVM">
            <meta_attributes id="vm1-meta"><nvpair id="v1" name="priority" value="9"/></meta_attributes>
            <operations><op id="vm1-mon" name="monitor" interval="10" timeout="5s"/></operations>
          </primitive>
        </resources>"#,
    );
    assert_eq!(cluster.config.templates, ["vm-template"]);
    let Resource::Primitive(p) = &cluster.config.resources[0] else {
        panic!("not a primitive")
    };
    assert_eq!(
        (p.template.as_deref(), p.agent_spec().as_str()),
        (Some("vm-template"), "ocf:heartbeat:KVM")
    );
    let meta_ids: Vec<&str> = p.meta.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(meta_ids, ["vm1-meta", "t-meta"]);
    let op_ids: Vec<&str> = p.operations.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(op_ids, ["vm1-mon", "t-start"]);
}

#[test]
fn groups_and_clones_nest_and_inherit_instance_attributes() {
    let cluster = parse(
        r#"<resources>
          <group id="g">
            <instance_attributes id="g-params"><nvpair id="gp" name="dir" value="/srv"/></instance_attributes>
            <meta_attributes id="g-meta"><nvpair id="gm" name="target-role" value="Started"/></meta_attributes>
            <primitive id="a" class="ocf" provider="pacemaker" type="Dummy"/>
            <primitive id="b" class="lsb" type="httpd"/>
          </group>
          <clone id="c">
            <meta_attributes id="c-meta"><nvpair id="cm" name="clone-max" value="2"/></meta_attributes>
            <group id="cg"><primitive id="d" class="systemd" type="nginx"/></group>
          </clone>
        </resources>"#,
    );
    let Resource::Group(g) = &cluster.config.resources[0] else {
        panic!("not a group")
    };
    let ids: Vec<&str> = g.members.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(g.meta[0].id, "g-meta");
    assert_eq!(g.members[1].instance[0].id, "g-params");
    assert_eq!(g.members[1].agent_spec(), "lsb:httpd");
    let Resource::Clone(c) = &cluster.config.resources[1] else {
        panic!("not a clone")
    };
    assert!(!c.promotable);
    assert_eq!(c.child.id(), "cg");
    assert_eq!(cluster.config.resources[1].primitives()[0].id, "d");
}

#[test]
fn master_and_promotable_meta_make_promotable_clones() {
    let cluster = parse(
        r##"<resources>
          <master id="ms"><primitive id="s1" class="ocf" provider="pacemaker" type="Stateful"/></master>
          <clone id="pc">
            <meta_attributes id="pc-meta"><nvpair id="pm" name="promotable" value="true"/></meta_attributes>
            <primitive id="s2" class="ocf" provider="pacemaker" type="Stateful"/>
          </clone>
          <clone id="rc">
            <meta_attributes id="rc-meta">
              <rule id="r"><expression id="e" attribute="#uname" operation="eq" value="n1"/></rule>
              <nvpair id="rm" name="promotable" value="true"/>
            </meta_attributes>
            <primitive id="s3" class="ocf" provider="pacemaker" type="Stateful"/>
          </clone>
        </resources>"##,
    );
    let promotable: Vec<bool> = cluster
        .config
        .resources
        .iter()
        .map(|r| matches!(r, Resource::Clone(c) if c.promotable))
        .collect();
    assert_eq!(promotable, [true, true, false]);
}

#[test]
fn bundles_and_unknown_elements_are_reported_not_modelled() {
    let cluster = parse(
        r#"<resources>
          <bundle id="web-bundle"><docker image="x"/><primitive id="in" class="ocf" provider="h" type="apache"/></bundle>
          <primitive id="p" class="ocf" provider="h" type="Dummy"><frobnicate/></primitive>
        </resources>
        <alerts/>"#,
    );
    assert_eq!(cluster.config.resources.len(), 1);
    let notes = cluster.unsupported.join("\n");
    assert!(
        notes.contains("bundle 'web-bundle' is not modelled"),
        "{notes}"
    );
    assert!(
        notes.contains("/cib/configuration/resources/primitive[@id='p']/frobnicate"),
        "{notes}"
    );
    assert!(notes.contains("<alerts>"), "{notes}");
}

#[test]
fn id_refs_resolve_sets_pairs_operations_and_rules() {
    let cluster = parse(
        r#"<resources>
          <primitive id="a" class="ocf" provider="pacemaker" type="Dummy">
            <meta_attributes id="shared-meta">
              <nvpair id="shared-stickiness" name="resource-stickiness" value="100"/>
            </meta_attributes>
            <operations id="shared-ops"><op id="a-mon" name="monitor" interval="5s"/></operations>
          </primitive>
          <primitive id="b" class="ocf" provider="pacemaker" type="Dummy">
            <meta_attributes id-ref="shared-meta"/>
            <instance_attributes id="b-params"><nvpair id-ref="shared-stickiness"/></instance_attributes>
            <operations id-ref="shared-ops"/>
          </primitive>
        </resources>
        <constraints>
          <rsc_location id="l1" rsc="a">
            <rule id="common-rule" score="10"><expression id="x" attribute="site" operation="eq" value="east"/></rule>
          </rsc_location>
          <rsc_location id="l2" rsc="b"><rule id-ref="common-rule"/></rsc_location>
        </constraints>"#,
    );
    let Resource::Primitive(b) = &cluster.config.resources[1] else {
        panic!("not a primitive")
    };
    assert_eq!(b.meta[0].id, "shared-meta");
    assert_eq!(b.meta[0].pairs[0].value.as_deref(), Some("100"));
    assert_eq!(b.instance[0].pairs[0].name, "resource-stickiness");
    assert_eq!(b.operations[0].id, "a-mon");
    let Constraint::Location(l2) = constraint(&cluster, 1) else {
        panic!("not a location")
    };
    assert_eq!(
        (l2.rules[0].id.as_str(), l2.rules[0].score),
        ("common-rule", Some(Score::new(10)))
    );
}

#[test]
fn unresolvable_id_ref_is_an_error_with_path_and_position() {
    let text = cib(
        r#"<resources>
  <primitive id="b" class="ocf" provider="pacemaker" type="Dummy">
    <meta_attributes id-ref="nowhere"/>
  </primitive>
</resources>"#,
        "",
    );
    assert_eq!(
        problems(&text),
        [
            r#"/cib/configuration/resources/primitive[@id='b']/meta_attributes: reference "nowhere" does not match any element id (line 7, column 5)"#
        ]
    );
}

#[test]
fn location_constraints_in_all_forms() {
    let cluster = parse(
        r##"<constraints>
          <rsc_location id="simple" rsc="a" node="n1" score="-INFINITY" role="Master" resource-discovery="never"/>
          <rsc_location id="pattern" rsc-pattern="!^db" node="n2" score="INFINITY"/>
          <rsc_location id="by-rule" rsc="a">
            <rule id="r1" score-attribute="pingd" boolean-op="or" role="Promoted">
              <expression id="e1" attribute="pingd" operation="defined"/>
              <expression id="e2" attribute="#uname" operation="ne" value="n3" type="int" value-source="param"/>
            </rule>
          </rsc_location>
          <rsc_location id="sets" node="n1" score="7">
            <resource_set id="s1"><resource_ref id="a"/><resource_ref id="b"/></resource_set>
          </rsc_location>
        </constraints>"##,
    );
    let Constraint::Location(simple) = constraint(&cluster, 0) else {
        panic!()
    };
    assert_eq!(simple.target, LocationTarget::Resource("a".into()));
    assert_eq!(
        (simple.node.as_deref(), simple.score),
        (Some("n1"), Some(Score::NEG_INFINITY))
    );
    assert_eq!(
        (simple.role, simple.resource_discovery.as_deref()),
        (Some(Role::Promoted), Some("never"))
    );
    let Constraint::Location(pattern) = constraint(&cluster, 1) else {
        panic!()
    };
    assert_eq!(
        pattern.target,
        LocationTarget::Pattern {
            regex: "^db".into(),
            negated: true
        }
    );
    let Constraint::Location(by_rule) = constraint(&cluster, 2) else {
        panic!()
    };
    let rule = &by_rule.rules[0];
    assert_eq!(
        (rule.bool_op, rule.role, rule.score),
        (BoolOp::Or, Some(Role::Promoted), None)
    );
    assert_eq!(rule.score_attribute.as_deref(), Some("pingd"));
    assert_eq!(
        rule.expressions[1],
        Expression::Attribute {
            attribute: "#uname".into(),
            operation: "ne".into(),
            value: Some("n3".into()),
            value_type: Some(ValueType::Integer),
            value_source: Some("param".into()),
        }
    );
    let Constraint::Location(sets) = constraint(&cluster, 3) else {
        panic!()
    };
    let LocationTarget::Sets(s) = &sets.target else {
        panic!("not sets")
    };
    assert_eq!(s[0].resources, ["a", "b"]);
}

#[test]
fn colocation_order_and_ticket_constraints() {
    let cluster = parse(
        r#"<constraints>
          <rsc_colocation id="c1" rsc="a" with-rsc="b" score="500" rsc-role="Slave" with-rsc-role="Master" node-attribute="site" influence="false"/>
          <rsc_order id="o1" first="a" then="b" first-action="promote" then-action="start" symmetrical="false"/>
          <rsc_order id="o2" first="a" then="b" score="0"/>
          <rsc_order id="o3" first="a" then="b" score="10"/>
          <rsc_order id="o4" first="a" then="b" kind="Serialize" require-all="no"/>
          <rsc_ticket id="t1" ticket="ticketA" rsc="a" rsc-role="Master" loss-policy="demote"/>
        </constraints>"#,
    );
    let Constraint::Colocation(c) = constraint(&cluster, 0) else {
        panic!()
    };
    assert_eq!(
        (c.rsc.as_deref(), c.with_rsc.as_deref(), c.score),
        (Some("a"), Some("b"), Score::new(500))
    );
    assert_eq!(
        (c.rsc_role, c.with_rsc_role),
        (Some(Role::Unpromoted), Some(Role::Promoted))
    );
    assert_eq!(
        (c.node_attribute.as_deref(), c.influence),
        (Some("site"), Some(false))
    );
    let kinds: Vec<OrderKind> = (1..5)
        .map(|i| match constraint(&cluster, i) {
            Constraint::Order(o) => o.kind,
            _ => panic!("not an order"),
        })
        .collect();
    use OrderKind::*;
    assert_eq!(kinds, [Mandatory, Optional, Mandatory, Serialize]);
    let Constraint::Order(o1) = constraint(&cluster, 1) else {
        panic!()
    };
    assert_eq!(
        (o1.first_action.as_deref(), o1.symmetrical),
        (Some("promote"), Some(false))
    );
    let Constraint::Order(o4) = constraint(&cluster, 4) else {
        panic!()
    };
    assert_eq!(o4.require_all, Some(false));
    let Constraint::Ticket(t) = constraint(&cluster, 5) else {
        panic!()
    };
    assert_eq!(
        (t.ticket.as_str(), t.rsc_role, t.loss_policy.as_deref()),
        ("ticketA", Some(Role::Promoted), Some("demote"))
    );
}

#[test]
fn resource_sets_keep_all_their_attributes() {
    let cluster = parse(
        r#"<constraints>
          <rsc_order id="o" kind="Optional">
            <resource_set id="s1" sequential="false" require-all="false" action="promote" role="Master">
              <resource_ref id="a"/><resource_ref id="b"/>
            </resource_set>
            <resource_set id="s2" ordering="listed" kind="Mandatory" score="-INFINITY"><resource_ref id="c"/></resource_set>
          </rsc_order>
          <rsc_colocation id="c" score="INFINITY">
            <resource_set id="s3"><resource_ref id="x"/></resource_set>
          </rsc_colocation>
          <rsc_ticket id="t" ticket="T"><resource_set id="s4" role="Started"><resource_ref id="y"/></resource_set></rsc_ticket>
        </constraints>"#,
    );
    let Constraint::Order(o) = constraint(&cluster, 0) else {
        panic!()
    };
    let [s1, s2] = &o.sets[..] else {
        panic!("two sets expected")
    };
    assert_eq!((s1.sequential, s1.require_all), (Some(false), Some(false)));
    assert_eq!(
        (s1.action.as_deref(), s1.role, s1.resources.len()),
        (Some("promote"), Some(Role::Promoted), 2)
    );
    assert_eq!(
        (s2.ordering.as_deref(), s2.kind, s2.score),
        (
            Some("listed"),
            Some(OrderKind::Mandatory),
            Some(Score::NEG_INFINITY)
        )
    );
    assert_eq!((s2.sequential, s2.role), (None, None));
    let Constraint::Colocation(c) = constraint(&cluster, 1) else {
        panic!()
    };
    assert_eq!(
        (c.score, c.rsc.as_deref(), c.sets[0].id.as_str()),
        (Score::INFINITY, None, "s3")
    );
    let Constraint::Ticket(t) = constraint(&cluster, 2) else {
        panic!()
    };
    assert_eq!(
        (t.rsc.as_deref(), t.sets[0].role),
        (None, Some(Role::Started))
    );
}

#[test]
fn rules_with_dates_durations_specs_and_nesting() {
    let cluster = parse(
        r#"<rsc_defaults>
          <meta_attributes id="d">
            <rule id="outer" boolean-op="and">
              <date_expression id="r1" operation="in_range" start="2005-001"><duration id="du" days="1" hours="2"/></date_expression>
              <date_expression id="r2" operation="date_spec"><date_spec id="ds" hours="9-17" weekdays="1-5"/></date_expression>
              <date_expression id="r3" operation="lt" end="2008-05-01T00:00:00Z"/>
              <rsc_expression id="r4" class="ocf" provider="heartbeat" type="IPaddr2"/>
              <op_expression id="r5" name="monitor" interval="10s"/>
              <rule id="inner" boolean-op="or"><expression id="r6" attribute="a" operation="gt" value="1.2" type="version"/></rule>
            </rule>
            <nvpair id="d1" name="resource-stickiness" value="1"/>
          </meta_attributes>
        </rsc_defaults>
        <op_defaults><meta_attributes id="od"><nvpair id="od1" name="timeout" value="30s"/></meta_attributes></op_defaults>"#,
    );
    assert_eq!(
        cluster.config.op_defaults[0].pairs[0].value.as_deref(),
        Some("30s")
    );
    let rule = cluster.config.rsc_defaults[0].rule.as_ref().unwrap();
    let e = &rule.expressions;
    assert_eq!(
        e[0],
        Expression::Date {
            operation: DateOp::InRange,
            start: Some(1_104_537_600),
            end: None,
            duration_s: Some(93_600),
            spec: None
        }
    );
    let Expression::Date {
        operation: DateOp::DateSpec,
        spec: Some(spec),
        ..
    } = &e[1]
    else {
        panic!()
    };
    assert_eq!(
        spec.fields,
        [
            ("hours".to_string(), "9-17".to_string()),
            ("weekdays".into(), "1-5".into())
        ]
    );
    assert!(matches!(
        e[2],
        Expression::Date {
            end: Some(1_209_600_000),
            ..
        }
    ));
    assert_eq!(
        e[3],
        Expression::Resource {
            class: Some("ocf".into()),
            provider: Some("heartbeat".into()),
            agent: Some("IPaddr2".into())
        }
    );
    assert_eq!(
        e[4],
        Expression::Operation {
            name: "monitor".into(),
            interval_ms: Some(10_000)
        }
    );
    let Expression::Rule(inner) = &e[5] else {
        panic!("nested rule")
    };
    assert_eq!(inner.bool_op, BoolOp::Or);
    assert!(matches!(
        inner.expressions[0],
        Expression::Attribute {
            value_type: Some(ValueType::Version),
            ..
        }
    ));
}

#[test]
fn tags_and_fencing_topology() {
    let cluster = parse(
        r#"<tags><tag id="web"><obj_ref id="ip"/><obj_ref id="apache"/></tag></tags>
        <fencing-topology>
          <fencing-level id="f1" index="1" target="n1" devices="ipmi-1,pdu-1"/>
          <fencing-level id="f2" index="2" target-pattern="n.*" devices="sbd"/>
          <fencing-level id="f3" index="1" target-attribute="rack" target-value="r1" devices="pdu-r1"/>
        </fencing-topology>"#,
    );
    assert_eq!(cluster.config.tags[0].refs, ["ip", "apache"]);
    let levels = &cluster.config.fencing_topology;
    assert_eq!(
        (levels[0].index, levels[0].devices.clone()),
        (1, vec!["ipmi-1".to_string(), "pdu-1".into()])
    );
    assert_eq!(levels[1].target, FencingTarget::Pattern("n.*".into()));
    assert_eq!(
        levels[2].target,
        FencingTarget::Attribute {
            name: "rack".into(),
            value: "r1".into()
        }
    );
}

#[test]
fn status_node_states_history_and_tickets() {
    let status = r#"
      <node_state id="n1" uname="node1" in_ccm="true" crmd="online" join="member" expected="member" shutdown="0">
        <transient_attributes id="n1">
          <instance_attributes id="status-n1">
            <nvpair id="s1" name="fail-count-rsc1#monitor_10000" value="3"/>
          </instance_attributes>
        </transient_attributes>
        <lrm id="n1"><lrm_resources>
          <lrm_resource id="rsc1" class="ocf" provider="pacemaker" type="Dummy" container="vm">
            <lrm_rsc_op id="rsc1_last_0" operation="start" call-id="12" rc-code="0" op-status="0" interval="0"
              last-rc-change="1600000000" last-run="1599999999" exec-time="25" transition-key="3:1:0:abc" on_node="node1" exit-reason="ok"/>
            <lrm_rsc_op id="rsc1_monitor_10000" operation="monitor" rc-code="7" interval="10000"
              last_rc_change="1600000100" migrate_source="node1" migrate_target="node2"/>
          </lrm_resource>
        </lrm_resources></lrm>
      </node_state>
      <node_state id="r1" remote_node="true" in_ccm="1700000000"/>
      <tickets><ticket_state id="ticketA" granted="true" last-granted="1700000001"/><ticket_state id="ticketB" standby="yes"/></tickets>"#;
    let cluster = parse_cib(&cib("", status)).unwrap();
    let nodes = &cluster.status.nodes;
    assert_eq!(
        (
            nodes[0].uname.as_deref(),
            nodes[0].crmd.as_deref(),
            nodes[0].shutdown.as_deref()
        ),
        (Some("node1"), Some("online"), Some("0"))
    );
    assert_eq!(nodes[0].transient[0].pairs[0].value.as_deref(), Some("3"));
    let history = &nodes[0].history[0];
    assert_eq!(
        (history.agent.as_deref(), history.container.as_deref()),
        (Some("Dummy"), Some("vm"))
    );
    let [start, monitor] = &history.ops[..] else {
        panic!("two ops")
    };
    assert_eq!(
        (start.call_id, start.rc_code, start.interval_ms),
        (12, 0, 0)
    );
    assert_eq!(
        (start.last_rc_change, start.last_run, start.exec_time_ms),
        (Some(1_600_000_000), Some(1_599_999_999), Some(25))
    );
    assert_eq!(
        (
            start.expected_rc(),
            start.on_node.as_deref(),
            start.exit_reason.as_deref()
        ),
        (Some(0), Some("node1"), Some("ok"))
    );
    assert_eq!(
        (
            monitor.call_id,
            monitor.op_status,
            monitor.rc_code,
            monitor.interval_ms
        ),
        (-1, 0, 7, 10_000)
    );
    assert_eq!(monitor.last_rc_change, Some(1_600_000_100));
    assert_eq!(
        (
            monitor.migrate_source.as_deref(),
            monitor.migrate_target.as_deref()
        ),
        (Some("node1"), Some("node2"))
    );
    assert!(nodes[1].remote_node && nodes[1].history.is_empty());
    let tickets = &cluster.status.tickets;
    assert_eq!(
        (tickets[0].granted, tickets[0].last_granted),
        (true, Some(1_700_000_001))
    );
    assert_eq!((tickets[1].granted, tickets[1].standby), (false, true));
}

#[test]
fn malformed_status_number_names_attribute_element_and_position() {
    let text = cib("", "\n<node_state id=\"n1\"><lrm><lrm_resources><lrm_resource id=\"r\">\n  <lrm_rsc_op id=\"r_last_0\" operation=\"start\" call-id=\"x1\"/>\n</lrm_resource></lrm_resources></lrm></node_state>");
    assert_eq!(
        problems(&text),
        [
            r#"/cib/status/node_state[@id='n1']/lrm/lrm_resources/lrm_resource[@id='r']/lrm_rsc_op[@id='r_last_0']: attribute 'call-id' = "x1" is not an integer (line 9, column 3)"#
        ]
    );
}

#[test]
fn bad_op_interval_is_located_by_position_among_siblings() {
    let text = cib(
        r#"<resources>
<primitive id="rsc1" class="ocf" provider="pacemaker" type="Dummy"><operations>
  <op name="start" interval="0"/>
  <op name="monitor" interval="abc"/>
</operations></primitive></resources>"#,
        "",
    );
    let found = problems(&text);
    assert_eq!(
        found,
        [
            "/cib/configuration/resources/primitive[@id='rsc1']/operations/op[1]: missing required attribute 'id' (line 7, column 3)",
        ],
        "the first fault of an item is reported; the item is skipped"
    );
    let text = text.replace(
        r#"<op name="start" interval="0"/>"#,
        r#"<op id="s" name="start" interval="0"/>"#,
    );
    let text = text.replace(r#"<op name="monitor""#, r#"<op id-x="" name="monitor""#);
    assert!(
        problems(&text)[0].contains("op[2]: missing required attribute 'id' (line 8, column 3)")
    );
}

#[test]
fn every_faulty_item_is_reported_at_once() {
    let text = cib(
        r#"<resources>
          <primitive id="a" class="ocf" type="Dummy"><operations><op id="o" name="monitor" interval="abc"/></operations></primitive>
          <primitive class="ocf" type="Dummy"/>
          <clone id="empty"/>
        </resources>
        <constraints><rsc_location id="l"/><rsc_order id="o" first="a" then="b" symmetrical="maybe"/></constraints>"#,
        "",
    );
    let found = problems(&text);
    assert_eq!(found.len(), 5, "{found:#?}");
    assert!(found[0].contains("attribute 'interval' = \"abc\" is not a duration"));
    assert!(found[1].contains("missing required attribute 'id'"));
    assert!(found[2].contains("clone 'empty' has no primitive or group"));
    assert!(found[3].contains("needs 'rsc', 'rsc-pattern' or a resource_set"));
    assert!(found[4].contains("attribute 'symmetrical' = \"maybe\" is not a boolean"));
}

#[test]
fn tolerated_bad_values_are_reported_and_defaulted() {
    let cluster = parse(
        r#"<resources><primitive id="a" class="ocf" type="Dummy"><operations>
            <op id="o" name="monitor" interval="P10S" timeout="bad"/></operations></primitive></resources>
        <constraints>
          <rsc_location id="l" rsc="a" node="n1" score="red"/>
          <rsc_colocation id="c" rsc="a" with-rsc="b" score="INFINITY" influence="invalid"/>
          <rsc_order id="o" first="a" then="b" kind="foo"/>
        </constraints>"#,
    );
    let Resource::Primitive(p) = &cluster.config.resources[0] else {
        panic!()
    };
    assert_eq!(
        (p.operations[0].interval_ms, p.operations[0].timeout_ms),
        (10_000, None)
    );
    let Constraint::Location(l) = constraint(&cluster, 0) else {
        panic!()
    };
    assert_eq!(l.score, None);
    let Constraint::Colocation(c) = constraint(&cluster, 1) else {
        panic!()
    };
    assert_eq!(c.influence, None);
    let Constraint::Order(o) = constraint(&cluster, 2) else {
        panic!()
    };
    assert_eq!(o.kind, OrderKind::Mandatory);
    assert_eq!(cluster.unsupported.len(), 4, "{:#?}", cluster.unsupported);
    assert!(cluster.unsupported[1]
        .contains("'score' = \"red\" is not a numeric score; treated as unset"));
}

#[test]
fn xml_syntax_errors_carry_a_position() {
    match parse_cib("<cib>\n  <configuration>\n</cib>") {
        Err(CibError::Xml { line, message, .. }) => {
            assert_eq!(line, 3, "{message}");
        }
        other => panic!("expected a syntax error, got {other:?}"),
    }
    assert!(matches!(
        parse_cib("<!DOCTYPE cib [<!ENTITY a 'b'>]><cib/>"),
        Err(CibError::Xml { .. })
    ));
}

#[test]
fn wrong_root_or_missing_configuration_is_an_error() {
    assert!(problems("<config/>")[0].contains("root element is <config>, expected <cib>"));
    assert!(
        problems("<cib><status/></cib>")[0].contains("missing required element <configuration>")
    );
}

#[test]
fn rules_nested_too_deeply_are_refused() {
    let depth = 40;
    let open: String = (0..depth).map(|i| format!(r#"<rule id="r{i}">"#)).collect();
    let close = "</rule>".repeat(depth);
    let sets = format!(
        r#"<rsc_defaults><meta_attributes id="m">{open}{close}</meta_attributes></rsc_defaults>"#
    );
    assert!(problems(&cib(&sets, ""))[0].contains("rules nest deeper than 32 levels"));
}

#[test]
fn absurd_element_nesting_is_refused_before_parsing() {
    let depth = 100_000;
    let text = format!(
        "<cib>\n{}{}</cib>",
        "<x>".repeat(depth),
        "</x>".repeat(depth)
    );
    let column = MAX_ELEMENT_DEPTH as u32 * 3 - 2;
    assert_eq!(
        parse_cib(&text),
        Err(CibError::TooDeep {
            limit: MAX_ELEMENT_DEPTH,
            line: 2,
            column
        })
    );
}
