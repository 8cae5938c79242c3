//! `crm_node`: this node's name (`-n`), id (`-i`), the member list (`-l`),
//! the partition (`-p`) and quorum (`-q`), from the attribute store's
//! membership view (this node alone until the daemon fills it in).
//!
//! Must not: invent members.

use super::args::{self, opt, Opt, Value};
use super::{exit, Ctx};

const OPTS: &[Opt] = &[
    opt('n', "name", Value::None),
    opt('i', "cluster-id", Value::None),
    opt('l', "list", Value::None),
    opt('p', "partition", Value::None),
    opt('q', "quorum", Value::None),
    opt('V', "verbose", Value::None),
    opt('Q', "quiet", Value::None),
];

pub fn run(args: &[String], ctx: &mut Ctx) -> i32 {
    const TOOL: &str = "crm_node";
    let parsed = match args::parse(OPTS, args) {
        Ok(p) => p,
        Err(e) => return ctx.fail(TOOL, exit::USAGE, e),
    };
    let data = match ctx.store().read() {
        Ok(d) => d,
        Err(e) => return ctx.store_error(TOOL, e),
    };
    let local = ctx.local_node(&data);
    let members = data.members_or(&local);
    let text = if parsed.has("name") {
        local
    } else if parsed.has("cluster-id") {
        let id = members.iter().position(|m| *m == local).unwrap_or(0) + 1;
        id.to_string()
    } else if parsed.has("list") {
        let lines: Vec<String> = members
            .iter()
            .enumerate()
            .map(|(i, m)| format!("{} {m} member", i + 1))
            .collect();
        lines.join("\n")
    } else if parsed.has("partition") {
        members.join(" ")
    } else if parsed.has("quorum") {
        if data.quorate.unwrap_or(true) {
            "1"
        } else {
            "0"
        }
        .to_string()
    } else {
        return ctx.fail(TOOL, exit::USAGE, "nothing to do: use -n, -i, -l, -p or -q");
    };
    let _ = writeln!(ctx.out, "{text}");
    exit::OK
}

#[cfg(test)]
mod tests {
    use super::super::tests::{shim, temp_store};

    #[test]
    fn name_list_partition_quorum() {
        let s = temp_store("crm_node");
        assert_eq!(shim(&s, &[], "crm_node", "-n").1, "n1\n");
        assert_eq!(shim(&s, &[], "crm_node", "-l").1, "1 n1 member\n");
        assert_eq!(shim(&s, &[], "crm_node", "-p").1, "n1\n");
        assert_eq!(shim(&s, &[], "crm_node", "-q").1, "1\n");
        assert_eq!(shim(&s, &[], "crm_node", "").0, 64);
    }
}
