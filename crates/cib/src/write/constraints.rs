//! `<constraints>`: rsc_location (node/score or rules), rsc_colocation,
//! rsc_order and rsc_ticket, each between named resources or over
//! `resource_set`s, in the model's (document) order.

use super::sets::rule;
use super::xml::{boolean, El, Out};
use tandem_model::{Constraint, LocationTarget, OrderKind, ResourceSet, Role};

pub(crate) fn constraints<'a>(out: &mut Out<'a>, constraints: &'a [Constraint]) {
    out.node(El::new("constraints"), |out| {
        for c in constraints {
            constraint(out, c);
        }
    });
}

fn constraint<'a>(out: &mut Out<'a>, c: &'a Constraint) {
    match c {
        Constraint::Location(l) => {
            let mut el = El::new("rsc_location").id(&l.id);
            let mut sets: &[ResourceSet] = &[];
            match &l.target {
                LocationTarget::Resource(rsc) => el = el.attr("rsc", rsc),
                LocationTarget::Pattern { regex, negated } => {
                    let bang = if *negated { "!" } else { "" };
                    el = el.attr("rsc-pattern", format!("{bang}{regex}"));
                }
                LocationTarget::Sets(s) => sets = s,
            }
            let el = el
                .opt("role", role(l.role))
                .opt("node", l.node.as_deref())
                .opt("score", l.score.map(|s| s.to_string()))
                .opt("resource-discovery", l.resource_discovery.as_deref());
            out.node(el, |out| {
                resource_sets(out, sets);
                for r in &l.rules {
                    rule(out, r);
                }
            });
        }
        Constraint::Colocation(c) => {
            let el = El::new("rsc_colocation")
                .id(&c.id)
                .attr("score", c.score.to_string())
                .opt("rsc", c.rsc.as_deref())
                .opt("with-rsc", c.with_rsc.as_deref())
                .opt("rsc-role", role(c.rsc_role))
                .opt("with-rsc-role", role(c.with_rsc_role))
                .opt("node-attribute", c.node_attribute.as_deref())
                .opt("influence", c.influence.map(boolean));
            out.node(el, |out| resource_sets(out, &c.sets));
        }
        Constraint::Order(o) => {
            let el = El::new("rsc_order")
                .id(&o.id)
                .opt("first", o.first.as_deref())
                .opt("first-action", o.first_action.as_deref())
                .opt("then", o.then.as_deref())
                .opt("then-action", o.then_action.as_deref())
                .attr("kind", kind(o.kind))
                .opt("symmetrical", o.symmetrical.map(boolean))
                .opt("require-all", o.require_all.map(boolean));
            out.node(el, |out| resource_sets(out, &o.sets));
        }
        Constraint::Ticket(t) => {
            let el = El::new("rsc_ticket")
                .id(&t.id)
                .attr("ticket", &t.ticket)
                .opt("rsc", t.rsc.as_deref())
                .opt("rsc-role", role(t.rsc_role))
                .opt("loss-policy", t.loss_policy.as_deref());
            out.node(el, |out| resource_sets(out, &t.sets));
        }
    }
}

fn resource_sets<'a>(out: &mut Out<'a>, sets: &'a [ResourceSet]) {
    for set in sets {
        let el = El::new("resource_set")
            .id(&set.id)
            .opt("sequential", set.sequential.map(boolean))
            .opt("require-all", set.require_all.map(boolean))
            .opt("ordering", set.ordering.as_deref())
            .opt("action", set.action.as_deref())
            .opt("role", role(set.role))
            .opt("kind", set.kind.map(kind))
            .opt("score", set.score.map(|s| s.to_string()));
        out.node(el, |out| {
            for id in &set.resources {
                out.leaf(El::new("resource_ref").attr("id", id));
            }
        });
    }
}

fn role(role: Option<Role>) -> Option<&'static str> {
    role.map(Role::as_str)
}

fn kind(kind: OrderKind) -> &'static str {
    match kind {
        OrderKind::Mandatory => "Mandatory",
        OrderKind::Optional => "Optional",
        OrderKind::Serialize => "Serialize",
    }
}
