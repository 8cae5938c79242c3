//! `crm_resource --locate -r RSC` (`-W`): where a resource runs, from the
//! attribute store's location table. Every other `crm_resource` command is
//! refused with a message saying the shim does not implement it.
//!
//! Must not: change resources; the controller does.

use super::args::{self, opt, Opt, Value};
use super::{exit, Ctx};

const OPTS: &[Opt] = &[
    opt('W', "locate", Value::None),
    opt('r', "resource", Value::Required),
    opt('Q', "quiet", Value::None),
    opt('V', "verbose", Value::None),
];

pub fn run(args: &[String], ctx: &mut Ctx) -> i32 {
    const TOOL: &str = "crm_resource";
    let parsed = match args::parse(OPTS, args) {
        Ok(p) => p,
        Err(e) => {
            return ctx.fail(
                TOOL,
                exit::USAGE,
                format!("{e} (the tandem shim implements only --locate -r RESOURCE)"),
            )
        }
    };
    let Some(rsc) = parsed.value("resource").map(str::to_string) else {
        return ctx.fail(TOOL, exit::USAGE, "no resource: use -r RESOURCE");
    };
    if !parsed.has("locate") {
        return ctx.fail(
            TOOL,
            exit::USAGE,
            "the tandem shim implements only --locate",
        );
    }
    let data = match ctx.store().read() {
        Ok(d) => d,
        Err(e) => return ctx.store_error(TOOL, e),
    };
    let nodes = data.locations.get(&rsc).cloned().unwrap_or_default();
    let quiet = parsed.has("quiet");
    if nodes.is_empty() && !quiet {
        let _ = writeln!(ctx.err, "resource {rsc} is NOT running");
    }
    for node in nodes {
        if quiet {
            let _ = writeln!(ctx.out, "{node}");
        } else {
            let _ = writeln!(ctx.out, "resource {rsc} is running on: {node}");
        }
    }
    exit::OK
}

#[cfg(test)]
mod tests {
    use super::super::tests::{shim, temp_store};
    use crate::attrs::AttrStore;

    #[test]
    fn locate_reports_the_store_locations() {
        let s = temp_store("crm_resource");
        let (code, _, err) = shim(&s, &[], "crm_resource", "--locate -r web");
        assert_eq!(code, 0);
        assert!(err.contains("NOT running"));
        AttrStore::new(&s)
            .update(|d| d.locations.insert("web".into(), vec!["n2".into()]))
            .unwrap();
        let (_, out, _) = shim(&s, &[], "crm_resource", "-W -r web");
        assert_eq!(out, "resource web is running on: n2\n");
        assert_eq!(shim(&s, &[], "crm_resource", "--cleanup -r web").0, 64);
    }
}
