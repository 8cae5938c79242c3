//! `write_cib` is the inverse of `parse_cib`: for every CIB of Pacemaker's
//! scheduler corpus (GPL data read at test time, never copied here) and
//! every native TOML example, writing the model as a CIB and reading it
//! back gives the same configuration and status.
//!
//! Compared after one normalisation (`comparable`): `unsupported` is left
//! out, as it lists the source document's unmodelled features with their
//! line numbers (the written CIB has neither). Bundles, which the model
//! does not hold, are therefore absent from both sides; those cases are
//! counted separately.

mod common;

use common::corpus_files;
use std::fs;
use std::path::PathBuf;
use tandem_cib::{parse_cib, write_cib};
use tandem_model::{Cluster, Configuration, NvPair, NvSet, Resource, Status};

/// The parts of a model a CIB round trip must keep. A clone the model
/// marks promotable without a `promotable` meta attribute (a `<master>`
/// source, or TOML's `promotable = true`) comes back with the one-pair set
/// the writer adds to say so in Pacemaker 2.1's spelling; that set is
/// dropped here, while the `promotable` flag itself is still compared.
fn comparable(cluster: &Cluster) -> (Configuration, Status) {
    let mut config = cluster.config.clone();
    config.resources.iter_mut().for_each(drop_promotable_sets);
    (config, cluster.status.clone())
}

fn drop_promotable_sets(resource: &mut Resource) {
    if let Resource::Clone(c) = resource {
        let promotable = vec![NvPair {
            name: "promotable".into(),
            value: Some("true".into()),
        }];
        let added = |s: &NvSet| {
            c.promotable
                && s.rule.is_none()
                && s.pairs == promotable
                && s.id.ends_with("-promotable")
        };
        c.meta.retain(|s| !added(s));
        drop_promotable_sets(&mut c.child);
    }
}

/// The first line where two models' pretty debug forms differ, with context.
fn first_difference(a: &impl std::fmt::Debug, b: &impl std::fmt::Debug) -> String {
    let (a, b) = (format!("{a:#?}"), format!("{b:#?}"));
    let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let at = a
        .iter()
        .zip(&b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let from = at.saturating_sub(3);
    format!(
        "source:\n{}\nafter write/read:\n{}",
        a[from..(at + 2).min(a.len())].join("\n"),
        b[from..(at + 2).min(b.len())].join("\n")
    )
}

/// Writes and reads back `cluster`; an error describes the difference.
fn round_trip(cluster: &Cluster) -> Result<(), String> {
    let text = write_cib(cluster);
    let again = parse_cib(&text).map_err(|e| format!("written CIB does not parse: {e}"))?;
    let (before, after) = (comparable(cluster), comparable(&again));
    if before == after {
        Ok(())
    } else {
        Err(first_difference(&before, &after))
    }
}

#[test]
fn every_corpus_cib_reads_back_the_same_after_write_cib() {
    let (mut same, mut with_bundles, mut not_parsed) = (0, 0, 0);
    let mut failures = Vec::new();
    for file in corpus_files() {
        let case = file.file_stem().unwrap().to_string_lossy().into_owned();
        let text = fs::read_to_string(&file).expect("corpus file is UTF-8");
        let Ok(cluster) = parse_cib(&text) else {
            not_parsed += 1;
            continue;
        };
        match round_trip(&cluster) {
            Ok(()) => same += 1,
            Err(why) => failures.push(format!("{case}: {why}")),
        }
        with_bundles += usize::from(cluster.unsupported.iter().any(|u| u.contains("bundle")));
    }
    println!(
        "round trip: {same} of {} corpus CIBs read back the same ({with_bundles} of them hold \
         bundles, absent from the model on both sides); {not_parsed} do not parse at all",
        same + failures.len() + not_parsed
    );
    assert!(
        failures.is_empty(),
        "{} cases differ:\n{}",
        failures.len(),
        failures
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n\n")
    );
}

/// TOML files in examples/ that are not cluster configurations.
const NOT_CLUSTER_EXAMPLES: [&str; 1] = ["lb.toml"];

#[test]
fn native_toml_examples_read_back_the_same_after_write_cib() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut checked = 0;
    for entry in fs::read_dir(&dir).expect("examples/ exists") {
        let path = entry.expect("readable entry").path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if path.extension().is_none_or(|x| x != "toml") || NOT_CLUSTER_EXAMPLES.contains(&&*name) {
            continue;
        }
        let text = fs::read_to_string(&path).expect("example is UTF-8");
        let cluster = tandem_model::native::parse_toml(&text).expect("example parses");
        if let Err(why) = round_trip(&cluster) {
            panic!("{}: {why}", path.display());
        }
        checked += 1;
    }
    assert!(
        checked >= 2,
        "expected the TOML examples in {}",
        dir.display()
    );
}

/// A one-primitive cluster whose parameter `p` is `value`, with a note
/// (written as a comment) that could end a comment early.
fn with_value(value: &str) -> Cluster {
    let toml =
        "[[resource]]\nid = \"r\"\nagent = \"ocf:pacemaker:Dummy\"\nparams = { p = \"x\" }\n";
    let mut cluster = tandem_model::native::parse_toml(toml).expect("test TOML parses");
    if let Resource::Primitive(p) = &mut cluster.config.resources[0] {
        p.instance[0].pairs[0].value = Some(value.to_owned());
    }
    cluster.unsupported.push("a note -- with --> in it".into());
    cluster
}

#[test]
fn quotes_markup_and_whitespace_in_values_survive_the_round_trip() {
    let cluster = with_value("a\"b'c <d> & e\nf\tg\r\nh ]]> --");
    round_trip(&cluster).unwrap();
}

#[test]
fn characters_xml_cannot_hold_become_replacement_characters_not_a_broken_document() {
    let cluster = with_value("bell\u{7} nul\u{0} end");
    let again = parse_cib(&write_cib(&cluster)).expect("still a well-formed CIB");
    let Resource::Primitive(p) = &again.config.resources[0] else {
        panic!("a primitive");
    };
    let value = p.instance[0].pairs[0].value.as_deref();
    assert_eq!(value, Some("bell\u{FFFD} nul\u{FFFD} end"));
}

#[test]
fn an_empty_model_writes_a_cib_with_the_required_sections() {
    let text = write_cib(&Cluster::default());
    for section in [
        "<crm_config/>",
        "<nodes/>",
        "<resources/>",
        "<constraints/>",
        "<status/>",
    ] {
        assert!(text.contains(section), "{section} missing:\n{text}");
    }
    round_trip(&Cluster::default()).unwrap();
}
