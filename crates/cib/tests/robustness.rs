//! Untrusted input never panics the reader: truncated corpus CIBs, bit
//! flips, attribute values replaced by junk, and token soup all end in
//! `Ok` or `Err`. Deterministic (a fixed-seed xorshift generator), so any
//! failure replays.

mod common;

use common::corpus_case;
use tandem_cib::parse_cib;

/// Corpus cases covering templates, id-ref, sets, tickets, date rules,
/// tags, bundles and a long status section.
const CASES: &[&str] = &[
    "bug-lf-2619",
    "nvpair-id-ref",
    "location-sets-templates",
    "date-2",
    "ticket-clone-1",
    "tags-coloc-order-2",
    "rule-dbl-as-auto-number-match",
];

/// Values that stress every attribute reader.
const NASTY_VALUES: &[&str] = &[
    "",
    "-1",
    "abc",
    "99999999999999999999999",
    "-99999999999999999999",
    "INFINITY",
    "-INFINITY",
    "+INFINITY",
    "red",
    "P",
    "PT",
    "P10S",
    "1e5",
    "0x10",
    " 1 ",
    "é",
    "\u{10FFFF}",
    "2005-W53-7",
    "2019-02-29",
    "9999999-01-01",
    "+99:99",
    "#uname",
    "Master",
    "!",
    "a,b,,c",
    "&amp;",
    "&#0;",
];

/// xorshift64*: tiny, deterministic, good enough to pick positions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn truncated_cibs_never_panic() {
    for case in CASES {
        let text = corpus_case(case);
        let mut cut = 0;
        while cut < text.len() {
            let boundary = (0..=cut)
                .rev()
                .find(|i| text.is_char_boundary(*i))
                .unwrap_or(0);
            let _ = parse_cib(&text[..boundary]);
            cut += 97;
        }
        assert!(parse_cib(&text).is_ok(), "{case} parses whole");
    }
}

#[test]
fn bit_flipped_cibs_never_panic() {
    let mut rng = Rng(0x5eed_0001);
    for case in CASES {
        let original = corpus_case(case).into_bytes();
        for _ in 0..200 {
            let mut bytes = original.clone();
            for _ in 0..1 + rng.below(8) {
                let at = rng.below(bytes.len());
                bytes[at] ^= 1 << rng.below(8);
            }
            let _ = parse_cib(&String::from_utf8_lossy(&bytes));
        }
    }
}

#[test]
fn junk_attribute_values_never_panic() {
    let mut rng = Rng(0x5eed_0002);
    for case in CASES {
        let text = corpus_case(case);
        let values: Vec<(usize, usize)> = attribute_value_spans(&text);
        for _ in 0..300 {
            let (start, end) = values[rng.below(values.len())];
            let junk = NASTY_VALUES[rng.below(NASTY_VALUES.len())];
            let mutated = format!("{}{}{}", &text[..start], junk, &text[end..]);
            let _ = parse_cib(&mutated);
        }
    }
}

#[test]
fn token_soup_never_panics() {
    const TOKENS: &[&str] = &[
        "<",
        ">",
        "/>",
        "</",
        "\"",
        "'",
        "=",
        " ",
        "\n",
        "cib",
        "configuration",
        "status",
        "resources",
        "primitive",
        "group",
        "clone",
        "master",
        "op",
        "operations",
        "rule",
        "expression",
        "date_expression",
        "duration",
        "nvpair",
        "meta_attributes",
        "id",
        "id-ref",
        "template",
        "rsc_location",
        "resource_set",
        "resource_ref",
        "node_state",
        "lrm_rsc_op",
        "lrm",
        "lrm_resources",
        "lrm_resource",
        "call-id",
        "interval",
        "score",
        "x",
        "1",
        "<!--",
        "-->",
        "<![CDATA[",
        "]]>",
        "&amp;",
        "&#x1F600;",
        "<?xml version='1.0'?>",
        "é",
    ];
    let mut rng = Rng(0x5eed_0003);
    for _ in 0..3000 {
        let len = rng.below(80);
        let text: String = (0..len).map(|_| TOKENS[rng.below(TOKENS.len())]).collect();
        let _ = parse_cib(&text);
        let _ = parse_cib(&format!(
            "<cib><configuration>{text}</configuration><status>{text}</status></cib>"
        ));
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x5eed_0004);
    for _ in 0..2000 {
        let bytes: Vec<u8> = (0..rng.below(300)).map(|_| rng.next() as u8).collect();
        let _ = parse_cib(&String::from_utf8_lossy(&bytes));
    }
}

/// Byte spans of the values inside `="…"`.
fn attribute_value_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("=\"") {
        let start = from + at + 2;
        let Some(len) = text[start..].find('"') else {
            break;
        };
        spans.push((start, start + len));
        from = start + len + 1;
    }
    spans
}
