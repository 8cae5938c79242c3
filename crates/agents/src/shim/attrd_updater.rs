//! `attrd_updater`: update (`-U`), query (`-Q`, `-A` for all nodes) or
//! delete (`-D`) a transient node attribute. Dampening (`-d`) is accepted
//! and ignored until the daemon's attribute manager exists.
//!
//! Must not: write permanent attributes; attrd only holds transient ones.

use super::args::{self, opt, Opt, Value};
use super::{exit, Ctx};
use crate::attrs::Lifetime;

const OPTS: &[Opt] = &[
    opt('n', "name", Value::Required),
    opt('U', "update", Value::Required),
    opt('v', "value", Value::Required),
    opt('B', "update-both", Value::Required),
    opt('Y', "update-delay", Value::None),
    opt('Q', "query", Value::None),
    opt('D', "delete", Value::None),
    opt('R', "refresh", Value::None),
    opt('A', "all", Value::None),
    opt('N', "node", Value::Required),
    opt('d', "delay", Value::Required),
    opt('s', "set", Value::Required),
    opt('l', "lifetime", Value::Required),
    opt('p', "private", Value::None),
    opt('q', "quiet", Value::None),
    opt('V', "verbose", Value::None),
];

pub fn run(args: &[String], ctx: &mut Ctx) -> i32 {
    const TOOL: &str = "attrd_updater";
    let parsed = match args::parse(OPTS, args) {
        Ok(p) => p,
        Err(e) => return ctx.fail(TOOL, exit::USAGE, e),
    };
    if parsed.has("refresh") {
        return exit::OK;
    }
    let Some(name) = parsed.value("name").map(str::to_string) else {
        return ctx.fail(TOOL, exit::USAGE, "no attribute name: use -n NAME");
    };
    let store = ctx.store();
    let data = match store.read() {
        Ok(d) => d,
        Err(e) => return ctx.store_error(TOOL, e),
    };
    let node = parsed
        .value("node")
        .map(str::to_string)
        .unwrap_or_else(|| ctx.local_node(&data));
    let update = parsed
        .value("update")
        .or(parsed.value("value"))
        .or(parsed.value("update-both"))
        .map(str::to_string);
    if let Some(value) = update {
        return match store.update(|d| d.set(&node, &name, &value, Lifetime::Reboot)) {
            Ok(()) => exit::OK,
            Err(e) => ctx.store_error(TOOL, e),
        };
    }
    if parsed.has("delete") {
        return match store.update(|d| d.delete(&node, &name)) {
            Ok(_) => exit::OK,
            Err(e) => ctx.store_error(TOOL, e),
        };
    }
    if parsed.has("query") {
        let nodes: Vec<String> = if parsed.has("all") {
            data.attributes.keys().cloned().collect()
        } else {
            vec![node]
        };
        let mut found = false;
        for host in nodes {
            if let Some(attr) = data.get(&host, &name) {
                found = true;
                let _ = writeln!(
                    ctx.out,
                    "name=\"{name}\" host=\"{host}\" value=\"{}\"",
                    attr.value
                );
            }
        }
        if !found {
            return ctx.fail(
                TOOL,
                exit::NOSUCH,
                format!("Could not query value of {name}: attribute does not exist"),
            );
        }
        return exit::OK;
    }
    ctx.fail(TOOL, exit::USAGE, "nothing to do: use -U VALUE, -Q or -D")
}

#[cfg(test)]
mod tests {
    use super::super::tests::{shim, temp_store};

    #[test]
    fn update_query_delete() {
        let s = temp_store("attrd");
        assert_eq!(
            shim(&s, &[], "attrd_updater", "-n pingd -U 1000 -d 5s").0,
            0
        );
        let (code, out, _) = shim(&s, &[], "attrd_updater", "-n pingd -Q");
        assert_eq!(
            (code, out.as_str()),
            (0, "name=\"pingd\" host=\"n1\" value=\"1000\"\n")
        );
        assert_eq!(shim(&s, &[], "attrd_updater", "-n pingd -D").0, 0);
        assert_eq!(shim(&s, &[], "attrd_updater", "-n pingd -Q").0, 105);
        assert_eq!(shim(&s, &[], "attrd_updater", "-n pingd").0, 64);
    }
}
