//! The policy engine never panics on input that parses: every corpus CIB
//! with attribute values replaced by hostile ones (negative and huge
//! numbers, INFINITY, garbage, empty strings, other ids) is parsed and,
//! when it parses, scheduled. A fixed seed makes any failure replayable.

use std::panic::{catch_unwind, AssertUnwindSafe};
use tandem_tests::corpus::Corpus;
use tandem_tests::workspace_root;

/// Replacement values that have broken schedulers: numbers at and past the
/// limits, Pacemaker's special words, ids of other things, nothing at all.
const HOSTILE: &[&str] = &[
    "",
    "0",
    "-1",
    "1",
    "INFINITY",
    "-INFINITY",
    "+INFINITY",
    "99999999999999999999",
    "-99999999999999999999",
    "Promoted",
    "Stopped",
    "Unpromoted",
    "false",
    "true",
    "abc",
    "node1",
    "rsc1",
    "#uname",
    "10s",
    "P1D",
    "-5s",
];

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Replaces the value of about one attribute in `rate` with a hostile one.
fn mutate(xml: &str, rng: &mut Rng, rate: usize) -> String {
    let mut out = String::with_capacity(xml.len());
    let mut rest = xml;
    while let Some(pos) = rest.find("=\"") {
        let (head, tail) = rest.split_at(pos + 2);
        out.push_str(head);
        let Some(end) = tail.find('"') else {
            rest = tail;
            break;
        };
        if rng.below(rate) == 0 {
            out.push_str(HOSTILE[rng.below(HOSTILE.len())]);
        } else {
            out.push_str(&tail[..end]);
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn scheduler_survives_hostile_attribute_values_in_every_corpus_case() {
    let corpus = Corpus::locate(&workspace_root()).unwrap_or_else(|e| panic!("{e}"));
    let cases = corpus.cases().unwrap_or_else(|e| panic!("{e}"));
    let mut rng = Rng(0x7A4D_E5EE_D001);
    let (mut scheduled, mut rejected) = (0, 0);
    let mut panics = Vec::new();
    for case in &cases {
        let xml = std::fs::read_to_string(corpus.xml_path(case)).expect("corpus case readable");
        for round in 0..3 {
            let mutated = mutate(&xml, &mut rng, if round == 0 { 8 } else { 60 });
            let Ok(cluster) = tandem_cib::parse_cib(&mutated) else {
                rejected += 1;
                continue;
            };
            scheduled += 1;
            let result = catch_unwind(AssertUnwindSafe(|| {
                tandem_scheduler::schedule(&cluster, 1_782_864_000)
            }));
            if result.is_err() {
                panics.push(format!("{} (round {round})", case.name));
            }
        }
    }
    println!("hostile inputs: {scheduled} scheduled, {rejected} rejected by the parser");
    assert!(
        scheduled > 100,
        "too few mutated inputs parsed ({scheduled}) for the test to mean anything"
    );
    assert!(
        panics.is_empty(),
        "the scheduler panicked on: {}",
        panics.join(", ")
    );
}
