//! Scale benchmark: a synthetic cluster of 64 nodes × 10 000 primitives with
//! location, colocation and order constraints (deterministic, seeded),
//! parsed with `tandem_cib::parse_cib` and scheduled with
//! `tandem_scheduler::schedule`. Prints wall time per phase and peak memory
//! (`VmHWM`); asserts nothing about time.
//!
//! `cargo bench -p tandem-tests --bench scale -- [--nodes N] [--primitives N]
//! [--seed N] [--clones N] [--promotable N] [--clone-variant] [--write-xml PATH]` (or `bench/scale`). `--write-xml` keeps the
//! generated CIB, e.g. to time `crm_simulate` on the same input.

use std::time::Instant;
use tandem_tests::peak_rss_kib;
use tandem_tests::synth::{generate_cib, SynthSpec};

/// "Now" for the synthetic cluster (any fixed instant will do).
const NOW: i64 = 1_782_864_000;

fn main() {
    let options = match Options::from_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("scale: {e}");
            std::process::exit(2);
        }
    };
    let spec = options.spec;
    println!(
        "scale: {} nodes x {} primitives, {} clones, {} promotable clones, seed {}",
        spec.nodes, spec.primitives, spec.clones, spec.promotable, spec.seed
    );
    report_memory("start");

    let started = Instant::now();
    let (xml, counts) = generate_cib(spec);
    println!(
        "generate: {:>9.1} ms  ({} KiB of XML; {} locations, {} colocations, {} orders, {} running)",
        ms(started),
        xml.len() / 1024,
        counts.locations,
        counts.colocations,
        counts.orders,
        counts.running
    );
    if let Some(path) = &options.write_xml {
        match std::fs::write(path, &xml) {
            Ok(()) => println!("wrote {path}"),
            Err(e) => eprintln!("scale: {path}: {e}"),
        }
    }
    report_memory("after generate");

    let started = Instant::now();
    let cluster = match tandem_cib::parse_cib(&xml) {
        Ok(cluster) => cluster,
        Err(e) => {
            println!("parse:    failed after {:.1} ms: {e}", ms(started));
            println!("(the CIB parser cannot read this input yet; nothing to schedule)");
            return;
        }
    };
    println!("parse:    {:>9.1} ms", ms(started));
    drop(xml);
    report_memory("after parse");

    let started = Instant::now();
    let transition = tandem_scheduler::schedule(&cluster, NOW);
    println!(
        "schedule: {:>9.1} ms  ({} actions, {} summary lines, {} warnings)",
        ms(started),
        transition.actions.len(),
        transition.summary.len(),
        transition.warnings.len()
    );
    report_memory("after schedule");
}

/// Command-line options; cargo adds `--bench`, which is ignored.
struct Options {
    spec: SynthSpec,
    write_xml: Option<String>,
}

impl Options {
    fn from_args(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
        let mut options = Options {
            spec: SynthSpec {
                nodes: 64,
                primitives: 10_000,
                clones: 0,
                promotable: 0,
                seed: 1,
            },
            write_xml: None,
        };
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or(format!("{arg} needs a value"));
            match arg.as_str() {
                "--bench" => {}
                "--nodes" => options.spec.nodes = number(&value()?)?,
                "--primitives" => options.spec.primitives = number(&value()?)?,
                "--seed" => options.spec.seed = number(&value()?)? as u64,
                "--clones" => options.spec.clones = number(&value()?)?,
                "--promotable" => options.spec.promotable = number(&value()?)?,
                // The clone/promotable variant of issue 4: 64 nodes, 500
                // clones, 200 promotable clones beside the primitives.
                "--clone-variant" => {
                    options.spec.clones = 500;
                    options.spec.promotable = 200;
                }
                "--write-xml" => options.write_xml = Some(value()?),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(options)
    }
}

fn number(text: &str) -> Result<usize, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not a number"))
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

fn report_memory(stage: &str) {
    match peak_rss_kib() {
        Some(kib) => println!("peak memory {stage}: {:.1} MiB", kib as f64 / 1024.0),
        None => println!("peak memory {stage}: unknown (no /proc/self/status)"),
    }
}
