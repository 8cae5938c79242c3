//! Resource unpacking: the model's resource tree → the arena of working
//! resources (clones expanded into instances), with meta-attributes
//! resolved by Pacemaker's precedence.

use crate::options::Options;
use crate::rules::{rule_matches, RuleContext};
use crate::working::{Requires, Rsc, RscIdx, Variant};
use std::collections::BTreeMap;
use tandem_model::{parse_bool, Configuration, NvSet, Primitive, Resource, Role, Score};

/// Upper bound on the instances of one clone (far above any real cluster:
/// tandem targets 100+ nodes).
pub const MAX_CLONE_INSTANCES: usize = 10_000;

pub struct ResourceArena {
    pub rscs: Vec<Rsc>,
    /// Top-level resources in document order.
    pub top: Vec<RscIdx>,
    pub by_id: BTreeMap<String, RscIdx>,
}

struct Builder<'a> {
    config: &'a Configuration,
    opts: &'a Options,
    now: i64,
    node_count: usize,
    arena: ResourceArena,
}

pub fn unpack_resources(
    config: &Configuration,
    opts: &Options,
    now: i64,
    node_count: usize,
) -> ResourceArena {
    let mut b = Builder {
        config,
        opts,
        now,
        node_count,
        arena: ResourceArena {
            rscs: Vec::new(),
            top: Vec::new(),
            by_id: BTreeMap::new(),
        },
    };
    for r in &config.resources {
        let idx = b.add_resource(r, None, &[], None);
        b.arena.top.push(idx);
    }
    b.arena
}

impl Builder<'_> {
    /// Adds `r` under `parent`. `inherited` holds the explicit meta sets of
    /// ancestors, nearest first. `instance` is the clone instance number.
    fn add_resource(
        &mut self,
        r: &Resource,
        parent: Option<RscIdx>,
        inherited: &[&[NvSet]],
        instance: Option<usize>,
    ) -> RscIdx {
        let suffix = instance.map(|n| format!(":{n}")).unwrap_or_default();
        let id = format!("{}{}", r.id(), suffix);
        let variant = match r {
            Resource::Primitive(_) => Variant::Primitive,
            Resource::Group(_) => Variant::Group,
            Resource::Clone(_) => Variant::Clone,
        };
        let mut rsc = Rsc::new(id.clone(), variant, self.node_count);
        rsc.history_id = r.id().to_string();
        rsc.parent = parent;
        if let Resource::Primitive(p) = r {
            fill_agent(&mut rsc, p);
        }
        rsc.meta = self.resolve_meta(r, inherited, &rsc);
        let idx = self.arena.rscs.len();
        self.arena.rscs.push(rsc);
        self.arena.by_id.entry(id).or_insert(idx);
        let mut chain: Vec<&[NvSet]> = vec![r.meta()];
        chain.extend_from_slice(inherited);
        match r {
            Resource::Primitive(_) => {}
            Resource::Group(g) => {
                for m in &g.members {
                    let child = Resource::Primitive(m.clone());
                    let c = self.add_resource(&child, Some(idx), &chain, instance);
                    self.arena.rscs[idx].children.push(c);
                }
            }
            Resource::Clone(c) => {
                self.apply_clone_meta(idx, c.promotable);
                let max = self.arena.rscs[idx].clone_max;
                for n in 0..max {
                    let child = self.add_resource(&c.child, Some(idx), &chain, Some(n));
                    self.arena.rscs[idx].children.push(child);
                }
            }
        }
        self.apply_common_meta(idx);
        idx
    }

    fn resolve_meta(
        &self,
        r: &Resource,
        inherited: &[&[NvSet]],
        rsc: &Rsc,
    ) -> BTreeMap<String, String> {
        let ctx = RuleContext {
            now: self.now,
            resource: Some((
                rsc.class.as_str(),
                rsc.provider.as_deref(),
                rsc.agent.as_str(),
            )),
            ..Default::default()
        };
        let mut meta = BTreeMap::new();
        fill_from_sets(&mut meta, r.meta(), &ctx);
        for sets in inherited {
            fill_from_sets(&mut meta, sets, &ctx);
        }
        fill_from_sets(&mut meta, &self.config.rsc_defaults, &ctx);
        meta
    }

    fn apply_clone_meta(&mut self, idx: RscIdx, promotable: bool) {
        let node_count = self.node_count;
        let rsc = &mut self.arena.rscs[idx];
        let get_usize = |names: &[&str], default: usize| {
            names
                .iter()
                .find_map(|n| rsc.meta.get(*n))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(default)
        };
        // Bounded: a typo such as clone-max=1000000000 must not exhaust memory.
        let clone_max = get_usize(&["clone-max"], node_count).min(MAX_CLONE_INSTANCES);
        let clone_node_max = get_usize(&["clone-node-max"], 1);
        let promoted_max = get_usize(&["promoted-max", "master-max"], 1);
        let promoted_node_max = get_usize(&["promoted-node-max", "master-node-max"], 1);
        rsc.promotable = promotable
            || rsc
                .meta
                .get("promotable")
                .and_then(|v| parse_bool(v))
                .unwrap_or(false);
        rsc.unique = rsc
            .meta
            .get("globally-unique")
            .and_then(|v| parse_bool(v))
            .unwrap_or(clone_node_max > 1);
        rsc.clone_max = clone_max;
        rsc.clone_node_max = if rsc.unique { clone_node_max } else { 1 };
        rsc.promoted_max = promoted_max;
        rsc.promoted_node_max = promoted_node_max;
        rsc.interleave = rsc
            .meta
            .get("interleave")
            .and_then(|v| parse_bool(v))
            .unwrap_or(false);
        // Clones default to stickiness 1 unless configured anywhere.
        if !rsc.meta.contains_key("resource-stickiness") && self.opts.default_stickiness.is_none() {
            rsc.meta.insert("resource-stickiness".into(), "1".into());
        }
    }

    fn apply_common_meta(&mut self, idx: RscIdx) {
        let opts = self.opts;
        let parent_meta = self.arena.rscs[idx]
            .parent
            .map(|p| self.arena.rscs[p].meta.clone())
            .unwrap_or_default();
        let rsc = &mut self.arena.rscs[idx];
        // Computed meta of ancestors is the last resort (clone stickiness 1).
        for (k, v) in &parent_meta {
            rsc.meta.entry(k.clone()).or_insert_with(|| v.clone());
        }
        let meta = &rsc.meta;
        let score = |name: &str| meta.get(name).and_then(|v| opts.parse_score(v));
        rsc.priority = score("priority").map_or(0, Score::value);
        rsc.stickiness = score("resource-stickiness")
            .or_else(|| {
                opts.default_stickiness
                    .as_deref()
                    .and_then(|v| opts.parse_score(v))
            })
            .unwrap_or(Score::ZERO);
        rsc.migration_threshold =
            score("migration-threshold").map_or(tandem_model::INFINITY, Score::value);
        rsc.failure_timeout_s = meta
            .get("failure-timeout")
            .and_then(|v| tandem_model::parse_duration_ms(v))
            .map_or(0, |ms| (ms / 1000) as i64);
        rsc.managed = meta
            .get("is-managed")
            .and_then(|v| parse_bool(v))
            .or(opts.is_managed_default)
            .unwrap_or(true)
            && !opts.maintenance_mode
            && !meta
                .get("maintenance")
                .and_then(|v| parse_bool(v))
                .unwrap_or(false);
        rsc.target_role = meta.get("target-role").and_then(|v| Role::parse(v));
        rsc.critical = meta
            .get("critical")
            .and_then(|v| parse_bool(v))
            .unwrap_or(true);
        rsc.multiple_active = meta
            .get("multiple-active")
            .cloned()
            .unwrap_or_else(|| "stop_start".into());
        rsc.allow_migrate = meta
            .get("allow-migrate")
            .and_then(|v| parse_bool(v))
            .unwrap_or(false);
        rsc.requires = match meta.get("requires").map(String::as_str) {
            Some("nothing") => Requires::Nothing,
            Some("quorum") => Requires::Quorum,
            Some("fencing") => Requires::Fencing,
            Some("unfencing") => Requires::Unfencing,
            _ if rsc.class == "stonith" => Requires::Quorum,
            _ if opts.fencing_enabled => Requires::Fencing,
            _ if opts.no_quorum_policy == crate::options::NoQuorumPolicy::Ignore => {
                Requires::Nothing
            }
            _ => Requires::Quorum,
        };
        if rsc.class == "stonith" && rsc.requires != Requires::Nothing {
            rsc.requires = Requires::Quorum;
        }
    }
}

fn fill_agent(rsc: &mut Rsc, p: &Primitive) {
    rsc.class = p.class.clone();
    rsc.provider = p.provider.clone();
    rsc.agent = p.agent.clone();
    rsc.operations = p.operations.clone();
    rsc.params_digest = Some(tandem_model::params_digest(&p.params()));
    let mut util = BTreeMap::new();
    let ctx = RuleContext::default();
    fill_from_sets(&mut util, &p.utilization, &ctx);
    rsc.utilization = util
        .iter()
        .map(|(k, v)| (k.clone(), Score::parse(v).map_or(0, Score::value)))
        .collect();
}

/// Adds the first value of each name from `sets` (by descending set score,
/// rule-filtered) to `meta`, keeping values already present.
pub fn fill_from_sets(meta: &mut BTreeMap<String, String>, sets: &[NvSet], ctx: &RuleContext) {
    let mut ordered: Vec<&NvSet> = sets.iter().collect();
    ordered.sort_by_key(|s| std::cmp::Reverse(s.score));
    for set in ordered {
        if set.rule.as_ref().is_some_and(|r| !rule_matches(r, ctx)) {
            continue;
        }
        for pair in &set.pairs {
            if let Some(v) = &pair.value {
                meta.entry(pair.name.clone()).or_insert_with(|| v.clone());
            }
        }
    }
}
