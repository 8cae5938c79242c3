//! A deterministic generator of large synthetic CIBs for scale benchmarks.
//!
//! [`generate_cib`] writes Pacemaker CIB XML (not our model types, so the
//! generator stays valid while the model evolves, and the same file can be
//! fed to `crm_simulate`): `nodes` online nodes, `primitives` Dummy
//! primitives, location preferences and bans, colocation chains with
//! matching orders, and a status section where part of the resources are
//! already running. The same [`SynthSpec`] always yields the same text.

use std::fmt::Write as _;

/// What to generate. `seed` drives every random choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SynthSpec {
    pub nodes: usize,
    pub primitives: usize,
    /// Anonymous clones (one instance per node), half of them running.
    pub clones: usize,
    /// Promotable clones with promotion scores; one promoted instance each.
    pub promotable: usize,
    pub seed: u64,
}

/// How many of each thing [`generate_cib`] wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SynthCounts {
    pub locations: usize,
    pub colocations: usize,
    pub orders: usize,
    /// Primitives with a start recorded in the status section.
    pub running: usize,
    /// Clone and promotable instances recorded as running.
    pub running_instances: usize,
}

/// Length of a colocation/order chain (each member follows the previous).
const CHAIN_LENGTH: usize = 4;
/// Per mille of primitives with a positive location preference.
const PREFER_PER_MILLE: u64 = 300;
/// Per mille of primitives banned from one node.
const BAN_PER_MILLE: u64 = 100;
/// Per mille of primitives already running in the status section.
const RUNNING_PER_MILLE: u64 = 500;

/// Generates the CIB text and the counts of what it holds.
pub fn generate_cib(spec: SynthSpec) -> (String, SynthCounts) {
    let mut rng = SplitMix64(spec.seed);
    let mut counts = SynthCounts::default();
    let nodes = spec.nodes.max(1);
    let node = |i: usize| format!("node-{:03}", i + 1);
    let rsc = |i: usize| format!("rsc-{:05}", i + 1);
    let mut xml = String::with_capacity(spec.primitives * 700);

    xml.push_str(
        "<cib validate-with=\"pacemaker-3.7\" epoch=\"1\" \
         num_updates=\"0\" admin_epoch=\"0\" have-quorum=\"1\" dc-uuid=\"1\">\n<configuration>\n\
         <crm_config><cluster_property_set id=\"cib-bootstrap-options\">\
         <nvpair id=\"opt-fencing-enabled\" name=\"fencing-enabled\" value=\"false\"/>\
         </cluster_property_set></crm_config>\n<nodes>\n",
    );
    for n in 0..nodes {
        let _ = writeln!(xml, "<node id=\"{}\" uname=\"{}\"/>", n + 1, node(n));
    }
    xml.push_str("</nodes>\n<resources>\n");
    for r in 0..spec.primitives {
        let id = rsc(r);
        let _ = writeln!(
            xml,
            "<primitive id=\"{id}\" class=\"ocf\" provider=\"heartbeat\" type=\"Dummy\">\
             <meta_attributes id=\"{id}-meta\"><nvpair id=\"{id}-stickiness\" \
             name=\"resource-stickiness\" value=\"{}\"/></meta_attributes>\
             <operations><op id=\"{id}-monitor-10s\" name=\"monitor\" interval=\"10s\"/>\
             </operations></primitive>",
            rng.below(3) * 50
        );
    }
    for c in 0..spec.clones {
        let _ = writeln!(
            xml,
            "<clone id=\"clone-{c:04}\"><primitive id=\"{}\" class=\"ocf\" provider=\"heartbeat\" \
             type=\"Dummy\"/></clone>",
            clone_child(c)
        );
    }
    for m in 0..spec.promotable {
        let _ = writeln!(
            xml,
            "<clone id=\"ms-{m:04}\"><meta_attributes id=\"ms-{m:04}-meta\">\
             <nvpair id=\"ms-{m:04}-promotable\" name=\"promotable\" value=\"true\"/>\
             </meta_attributes><primitive id=\"{}\" class=\"ocf\" provider=\"pacemaker\" \
             type=\"Stateful\"/></clone>",
            promotable_child(m)
        );
    }
    xml.push_str("</resources>\n<constraints>\n");
    for r in 0..spec.primitives {
        let id = rsc(r);
        if rng.below(1000) < PREFER_PER_MILLE {
            let score = match rng.below(10) {
                0 => "INFINITY".to_string(),
                s => (s * 100).to_string(),
            };
            let _ = writeln!(
                xml,
                "<rsc_location id=\"loc-{id}\" rsc=\"{id}\" node=\"{}\" score=\"{score}\"/>",
                node(rng.below(nodes as u64) as usize)
            );
            counts.locations += 1;
        }
        if rng.below(1000) < BAN_PER_MILLE {
            let _ = writeln!(
                xml,
                "<rsc_location id=\"ban-{id}\" rsc=\"{id}\" node=\"{}\" score=\"-INFINITY\"/>",
                node(rng.below(nodes as u64) as usize)
            );
            counts.locations += 1;
        }
        if r % CHAIN_LENGTH != 0 {
            let previous = rsc(r - 1);
            let _ = writeln!(
                xml,
                "<rsc_colocation id=\"col-{id}\" rsc=\"{id}\" with-rsc=\"{previous}\" score=\"INFINITY\"/>\n\
                 <rsc_order id=\"ord-{id}\" first=\"{previous}\" then=\"{id}\" kind=\"Mandatory\"/>"
            );
            counts.colocations += 1;
            counts.orders += 1;
        }
    }
    for m in 0..spec.promotable.min(spec.primitives / CHAIN_LENGTH) {
        let id = rsc(m * CHAIN_LENGTH);
        let _ = writeln!(
            xml,
            "<rsc_colocation id=\"col-{id}-promoted\" rsc=\"{id}\" with-rsc=\"ms-{m:04}\" \
             with-rsc-role=\"Promoted\" score=\"INFINITY\"/>"
        );
        counts.colocations += 1;
    }
    xml.push_str("</constraints>\n</configuration>\n<status>\n");
    let mut running_on: Vec<Vec<usize>> = vec![Vec::new(); nodes];
    for r in 0..spec.primitives {
        if rng.below(1000) < RUNNING_PER_MILLE {
            running_on[rng.below(nodes as u64) as usize].push(r);
            counts.running += 1;
        }
    }
    for (n, running) in running_on.iter().enumerate() {
        let _ = writeln!(
            xml,
            "<node_state id=\"{}\" uname=\"{}\" in_ccm=\"true\" crmd=\"online\" join=\"member\" \
             expected=\"member\">\n<lrm id=\"{}\"><lrm_resources>",
            n + 1,
            node(n),
            n + 1
        );
        let mut call = 0;
        for &r in running {
            write_running_history(&mut xml, &rsc(r), &node(n), call);
            call += 1;
        }
        for c in (0..spec.clones).filter(|c| c % 2 == 0) {
            write_running_history(&mut xml, &clone_child(c), &node(n), call);
            call += 1;
            counts.running_instances += 1;
        }
        for m in 0..spec.promotable {
            write_running_history(&mut xml, &promotable_child(m), &node(n), call);
            call += 1;
            counts.running_instances += 1;
        }
        xml.push_str("</lrm_resources></lrm>\n");
        if spec.promotable > 0 {
            let _ = write!(
                xml,
                "<transient_attributes id=\"{}\"><instance_attributes id=\"status-{}\">",
                n + 1,
                n + 1
            );
            for m in 0..spec.promotable {
                let child = promotable_child(m);
                let _ = write!(
                    xml,
                    "<nvpair id=\"status-{}-master-{child}\" name=\"master-{child}\" value=\"{}\"/>",
                    n + 1,
                    rng.below(10) * 10
                );
            }
            xml.push_str("</instance_attributes></transient_attributes>\n");
        }
        xml.push_str("</node_state>\n");
    }
    xml.push_str("</status>\n</cib>\n");
    (xml, counts)
}

fn clone_child(c: usize) -> String {
    format!("cl-{c:04}")
}

fn promotable_child(m: usize) -> String {
    format!("ms-rsc-{m:04}")
}

/// A successful start and a recurring monitor of `id` on `node`.
fn write_running_history(xml: &mut String, id: &str, node: &str, call: usize) {
    let _ = writeln!(
        xml,
        "<lrm_resource id=\"{id}\" class=\"ocf\" provider=\"heartbeat\" type=\"Dummy\">\
         <lrm_rsc_op id=\"{id}_last_0\" operation_key=\"{id}_start_0\" operation=\"start\" \
         crm-debug-origin=\"synth\" \
         transition-key=\"1:0:0:00000000-0000-0000-0000-000000000000\" \
         transition-magic=\"0:0;1:0:0:00000000-0000-0000-0000-000000000000\" \
         exit-reason=\"\" on_node=\"{node}\" call-id=\"{}\" rc-code=\"0\" op-status=\"0\" \
         interval=\"0\" last-rc-change=\"1700000000\" exec-time=\"10\" queue-time=\"0\" \
         op-digest=\"00000000000000000000000000000000\"/>\
         <lrm_rsc_op id=\"{id}_monitor_10000\" operation_key=\"{id}_monitor_10000\" \
         operation=\"monitor\" crm-debug-origin=\"synth\" \
         transition-key=\"2:0:0:00000000-0000-0000-0000-000000000000\" \
         transition-magic=\"0:0;2:0:0:00000000-0000-0000-0000-000000000000\" \
         exit-reason=\"\" on_node=\"{node}\" call-id=\"{}\" rc-code=\"0\" op-status=\"0\" \
         interval=\"10000\" last-rc-change=\"1700000000\" exec-time=\"5\" queue-time=\"0\" \
         op-digest=\"00000000000000000000000000000000\"/></lrm_resource>",
        2 * call + 2,
        2 * call + 3
    );
}

/// SplitMix64: a tiny, well-known, seedable generator; enough for test
/// data and free of dependencies.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (bound > 0; the tiny modulo bias is harmless here).
    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_cib_and_different_seed_differs() {
        let spec = SynthSpec {
            nodes: 4,
            primitives: 40,
            clones: 3,
            promotable: 2,
            seed: 7,
        };
        assert_eq!(generate_cib(spec), generate_cib(spec));
        assert_ne!(
            generate_cib(spec).0,
            generate_cib(SynthSpec { seed: 8, ..spec }).0
        );
    }

    #[test]
    fn counts_match_the_text() {
        let (xml, counts) = generate_cib(SynthSpec {
            nodes: 3,
            primitives: 100,
            clones: 0,
            promotable: 0,
            seed: 1,
        });
        assert_eq!(xml.matches("<primitive ").count(), 100);
        assert_eq!(xml.matches("<node id=").count(), 3);
        assert_eq!(xml.matches("<node_state ").count(), 3);
        assert_eq!(xml.matches("<rsc_location ").count(), counts.locations);
        assert_eq!(xml.matches("<rsc_colocation ").count(), 75);
        assert_eq!(counts.orders, 75);
        assert_eq!(xml.matches("<lrm_resource ").count(), counts.running);
        assert!(counts.running > 20 && counts.running < 80, "{counts:?}");
        roxmltree::Document::parse(&xml).expect("well-formed XML");
    }
}
