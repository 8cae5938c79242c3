//! Leader fail-over with real processes: a 3-node cluster of `tandem
//! daemon` processes on loopback; the DC is killed with SIGKILL N times
//! (restarted and caught up each time), and the time from the kill until a
//! survivor reports a new DC with quorum is measured by polling its view
//! every 20 ms. Prints p50/p99/max beside the configured timing. No
//! assertions. Run through `bench/failover-leader`.

use std::time::{Duration, Instant};
use tandem_tests::processes::{dc, has_quorum, ProcessCluster};

const POLL: Duration = Duration::from_millis(20);
const BOUND: Duration = Duration::from_secs(30);

fn main() {
    let mut kills = 20usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--kills" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) if n > 0 => kills = n,
                _ => fail("--kills needs a positive number"),
            },
            "--bench" => {}
            other => fail(&format!("unknown argument {other:?} (expected --kills N)")),
        }
    }
    if let Err(e) = run(kills) {
        fail(&e);
    }
}

fn fail(message: &str) -> ! {
    eprintln!("failover-leader: {message}");
    std::process::exit(2)
}

fn run(kills: usize) -> Result<(), String> {
    let mut c = ProcessCluster::setup("bench-failover", 3, false, None)?;
    let timing = std::fs::read_to_string(&c.nodes[0].config)
        .map_err(|e| e.to_string())?
        .parse::<toml::Table>()
        .map_err(|e| e.to_string())?
        .get("timing")
        .cloned()
        .ok_or("node1.toml has no [timing]")?;
    c.start_all();
    let names: Vec<String> = c.nodes.iter().map(|n| n.name.clone()).collect();
    let mut samples = Vec::with_capacity(kills);
    for k in 0..kills {
        let old = settled(&c, &names)?;
        c.kill(&old);
        let killed = Instant::now();
        let survivors: Vec<&String> = names.iter().filter(|n| **n != old).collect();
        let new = 'poll: loop {
            for name in &survivors {
                if let Ok(v) = c.view(name) {
                    if has_quorum(&v) && dc(&v).is_some_and(|d| d != old) {
                        break 'poll dc(&v).unwrap_or_default().to_string();
                    }
                }
            }
            if killed.elapsed() > BOUND {
                return Err(format!("kill {k}: no new DC within {BOUND:?}"));
            }
            std::thread::sleep(POLL);
        };
        let took = killed.elapsed();
        println!(
            "kill {:>2}: {old} → {new} in {:>5} ms",
            k + 1,
            took.as_millis()
        );
        samples.push(took);
        c.start(&old);
    }
    samples.sort();
    let pct = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize].as_millis();
    println!(
        "\nfail-over over {} kills (kill -9 of the DC → a survivor reports a new DC with quorum, polled every {} ms):",
        samples.len(),
        POLL.as_millis()
    );
    println!(
        "  p50 {} ms   p99 {} ms   max {} ms",
        pct(0.50),
        pct(0.99),
        samples.last().map_or(0, Duration::as_millis)
    );
    println!(
        "configured timing: heartbeat {} ms, election timeout {}–{} ms, lease {} ms",
        timing["heartbeat_ms"],
        timing["election_min_ms"],
        timing["election_max_ms"],
        timing["lease_ms"]
    );
    Ok(())
}

/// Waits until all nodes have quorum, agree on the DC and have caught up
/// with its log; returns the DC.
fn settled(c: &ProcessCluster, names: &[String]) -> Result<String, String> {
    let first = c.wait_view(&names[0], BOUND, POLL, |v| has_quorum(v) && dc(v).is_some())?;
    let leader = dc(&first).unwrap_or_default().to_string();
    let committed = c.wait_view(&leader, BOUND, POLL, |v| {
        dc(v) == Some(&leader) && v["committed_index"].is_u64()
    })?["committed_index"]
        .as_u64();
    for name in names {
        c.wait_view(name, BOUND, POLL, |v| {
            has_quorum(v) && dc(v) == Some(&leader) && v["committed_index"].as_u64() >= committed
        })?;
    }
    Ok(leader)
}
