//! Ordering constraints expanded into pairwise "first → then" rules over
//! primitives, including group-internal ordering and resource sets.

use crate::working::RscIdx;
use crate::Sched;
use tandem_model::{Constraint, Order, OrderKind};

#[derive(Clone, Debug)]
pub struct OrderRule {
    /// Primitives whose action comes first (all must be runnable unless
    /// `require_all` is false, then one suffices).
    pub first: Vec<RscIdx>,
    pub first_action: String,
    pub then: Vec<RscIdx>,
    pub then_action: String,
    pub mandatory: bool,
    pub symmetrical: bool,
    pub require_all: bool,
}

impl Sched<'_> {
    pub(crate) fn unpack_orders(&mut self) {
        let cluster = self.cluster;
        for c in &cluster.config.constraints {
            if let Constraint::Order(o) = c {
                if o.sets.is_empty() {
                    self.order_pair(o);
                } else {
                    self.order_sets(o);
                }
            }
        }
        for (before, after) in self.group_member_pairs("ordered") {
            self.orders.push(OrderRule {
                first: vec![before],
                first_action: "start".into(),
                then: vec![after],
                then_action: "start".into(),
                mandatory: true,
                symmetrical: true,
                require_all: true,
            });
        }
    }

    fn order_pair(&mut self, o: &Order) {
        let (Some(f), Some(t)) = (o.first.as_deref(), o.then.as_deref()) else {
            return;
        };
        let first: Vec<RscIdx> = self.expand_reference(f);
        let then: Vec<RscIdx> = self.expand_reference(t);
        if first.is_empty() || then.is_empty() {
            self.warnings
                .push(format!("order {}: unknown resource", o.id));
            return;
        }
        let fa = o.first_action.clone().unwrap_or_else(|| "start".into());
        let ta = o.then_action.clone().unwrap_or_else(|| fa.clone());
        self.push_order(o, first, fa, then, ta, o.require_all.unwrap_or(true));
    }

    fn order_sets(&mut self, o: &Order) {
        let sets = self.expand_sets(&o.sets);
        for (members, set) in &sets {
            if set.sequential == Some(false) {
                continue;
            }
            let action = set.action.clone().unwrap_or_else(|| "start".into());
            for pair in members.windows(2) {
                self.push_order(
                    o,
                    vec![pair[0]],
                    action.clone(),
                    vec![pair[1]],
                    action.clone(),
                    true,
                );
            }
        }
        for pair in sets.windows(2) {
            let ((a, sa), (b, sb)) = (&pair[0], &pair[1]);
            if a.is_empty() || b.is_empty() {
                continue;
            }
            let first = if sa.sequential == Some(true) {
                vec![*a.last().unwrap_or(&a[0])]
            } else {
                a.clone()
            };
            let then = if sb.sequential == Some(true) {
                vec![b[0]]
            } else {
                b.clone()
            };
            let fa = sa.action.clone().unwrap_or_else(|| "start".into());
            let ta = sb.action.clone().unwrap_or_else(|| "start".into());
            let require_all = sa.require_all.unwrap_or(true);
            self.push_order(o, first, fa, then, ta, require_all);
        }
    }

    fn push_order(
        &mut self,
        o: &Order,
        first: Vec<RscIdx>,
        fa: String,
        then: Vec<RscIdx>,
        ta: String,
        require_all: bool,
    ) {
        let mandatory = o.kind == OrderKind::Mandatory;
        let symmetrical = o.symmetrical.unwrap_or(o.kind != OrderKind::Serialize);
        self.orders.push(OrderRule {
            first,
            first_action: fa,
            then,
            then_action: ta,
            mandatory,
            symmetrical,
            require_all,
        });
    }
}
