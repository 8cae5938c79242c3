//! `crm_attribute` and `crm_master`: query, update or delete one node
//! attribute; `--promotion` (and `crm_master`) work on the promotion score
//! `master-<resource>` of `OCF_RESOURCE_INSTANCE` without its clone suffix.
//!
//! Must not: accept a name or value longer than the store allows.

use super::args::{self, opt, Opt, Value};
use super::{exit, resource_without_clone_suffix, Ctx};
use crate::attrs::Lifetime;
use crate::limits::ATTR_TEXT_MAX_BYTES;

const OPTS: &[Opt] = &[
    opt('N', "node", Value::Required),
    opt('U', "uname", Value::Required),
    opt('n', "name", Value::Required),
    opt('v', "update", Value::Required),
    opt('l', "lifetime", Value::Required),
    opt('t', "type", Value::Required),
    opt('G', "query", Value::None),
    opt('Q', "get-value", Value::None),
    opt('D', "delete", Value::None),
    opt('q', "quiet", Value::None),
    opt('d', "default", Value::Required),
    opt('p', "promotion", Value::Optional),
    opt('i', "id", Value::Required),
    opt('s', "set-name", Value::Required),
    opt('V', "verbose", Value::None),
    opt('h', "help", Value::None),
    opt('r', "resource", Value::Required),
];

/// The node that holds cluster-wide options (`--type crm_config`).
const CLUSTER_OPTIONS: &str = "@crm_config";

/// `crm_attribute`. `master_of` is set when called as `crm_master`.
pub fn run(args: &[String], ctx: &mut Ctx, master_of: Option<String>) -> i32 {
    let tool = if master_of.is_some() {
        "crm_master"
    } else {
        "crm_attribute"
    };
    let parsed = match args::parse(OPTS, args) {
        Ok(p) => p,
        Err(e) => return ctx.fail(tool, exit::USAGE, e),
    };
    if parsed.has("help") {
        let _ = writeln!(
            ctx.out,
            "usage: {tool} [-N node] -n name [-v value | -G | -D] [-l reboot|forever] [-q] [--promotion[=rsc]]"
        );
        return exit::OK;
    }
    let promotion = master_of.or_else(|| {
        parsed.has("promotion").then(|| {
            parsed
                .value("promotion")
                .map(str::to_string)
                .or_else(|| (ctx.env)("OCF_RESOURCE_INSTANCE"))
                .unwrap_or_default()
        })
    });
    let name = match (&promotion, parsed.value("name")) {
        (Some(rsc), _) if rsc.is_empty() => {
            return ctx.fail(
                tool,
                exit::USAGE,
                "no resource for the promotion score: give one or set OCF_RESOURCE_INSTANCE",
            )
        }
        (Some(rsc), _) => format!("master-{}", resource_without_clone_suffix(rsc)),
        (None, Some(n)) => n.to_string(),
        (None, None) => return ctx.fail(tool, exit::USAGE, "no attribute name: use -n NAME"),
    };
    let lifetime = match (parsed.value("lifetime"), parsed.value("type")) {
        (Some("reboot"), _) | (None, Some("status")) => Lifetime::Reboot,
        (Some("forever"), _) | (None, Some("nodes" | "crm_config")) => Lifetime::Forever,
        (None, None) if promotion.is_some() => Lifetime::Reboot,
        (None, None) => Lifetime::Forever,
        (Some(other), _) => {
            return ctx.fail(
                tool,
                exit::USAGE,
                format!("lifetime `{other}`: expected reboot or forever"),
            )
        }
        (None, Some(other)) => {
            return ctx.fail(
                tool,
                exit::USAGE,
                format!("type `{other}`: expected nodes, status or crm_config"),
            )
        }
    };
    let update = parsed.value("update").map(str::to_string);
    for text in [Some(&name), update.as_ref()].into_iter().flatten() {
        if text.len() > ATTR_TEXT_MAX_BYTES {
            return ctx.fail(
                tool,
                exit::USAGE,
                format!("attribute text longer than {ATTR_TEXT_MAX_BYTES} bytes"),
            );
        }
    }
    let store = ctx.store();
    let node = if parsed.value("type") == Some("crm_config") {
        CLUSTER_OPTIONS.to_string()
    } else {
        match parsed.value("node").or(parsed.value("uname")) {
            Some(n) => n.to_string(),
            None => match store.read() {
                Ok(data) => ctx.local_node(&data),
                Err(e) => return ctx.store_error(tool, e),
            },
        }
    };
    if parsed.has("delete") {
        return match store.update(|d| d.delete(&node, &name)) {
            Ok(_) => exit::OK,
            Err(e) => ctx.store_error(tool, e),
        };
    }
    if let Some(value) = update {
        return match store.update(|d| d.set(&node, &name, &value, lifetime)) {
            Ok(()) => exit::OK,
            Err(e) => ctx.store_error(tool, e),
        };
    }
    let data = match store.read() {
        Ok(d) => d,
        Err(e) => return ctx.store_error(tool, e),
    };
    let found = data
        .get(&node, &name)
        .map(|a| (a.value.clone(), a.lifetime));
    let (value, scope) = match (found, parsed.value("default")) {
        (Some((v, l)), _) => (v, l.scope()),
        (None, Some(default)) => (default.to_string(), lifetime.scope()),
        (None, None) => {
            return ctx.fail(
                tool,
                exit::NOSUCH,
                "Error performing operation: No such device or address",
            )
        }
    };
    if parsed.has("quiet") {
        let _ = writeln!(ctx.out, "{value}");
    } else {
        let _ = writeln!(ctx.out, "scope={scope}  name={name} value={value}");
    }
    exit::OK
}

/// `crm_master`: Pacemaker's wrapper script, which calls `crm_attribute
/// -n master-<resource> --lifetime forever` plus the caller's options.
pub fn run_master(args: &[String], ctx: &mut Ctx) -> i32 {
    let mut rest = Vec::new();
    let mut resource = (ctx.env)("OCF_RESOURCE_INSTANCE");
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "-r" | "--resource" => {
                resource = args.get(i + 1).cloned();
                i += 2;
            }
            a if a.starts_with("--resource=") => {
                resource = Some(a["--resource=".len()..].to_string());
                i += 1;
            }
            _ => {
                rest.push(args[i].clone());
                i += 1;
            }
        }
    }
    if !rest
        .iter()
        .any(|a| a == "-l" || a.starts_with("--lifetime"))
    {
        rest.extend(["--lifetime".to_string(), "forever".to_string()]);
    }
    run(&rest, ctx, Some(resource.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{shim, temp_store};

    #[test]
    fn update_query_delete_round_trip() {
        let s = temp_store("crm_attribute");
        assert_eq!(
            shim(&s, &[], "crm_attribute", "-N n2 -n pingd -v 100 -l reboot").0,
            0
        );
        let (code, out, _) = shim(&s, &[], "crm_attribute", "-N n2 -n pingd -G");
        assert_eq!(
            (code, out.as_str()),
            (0, "scope=status  name=pingd value=100\n")
        );
        let (_, out, _) = shim(&s, &[], "crm_attribute", "-N n2 -n pingd -G -q");
        assert_eq!(out, "100\n");
        assert_eq!(shim(&s, &[], "crm_attribute", "-N n2 -n pingd -D").0, 0);
        let (code, _, err) = shim(&s, &[], "crm_attribute", "-N n2 -n pingd -G -q");
        assert_eq!(code, 105, "{err}");
        let (code, out, _) = shim(&s, &[], "crm_attribute", "-N n2 -n pingd -G -q -d 7");
        assert_eq!((code, out.as_str()), (0, "7\n"));
    }

    #[test]
    fn promotion_uses_the_instance_without_clone_suffix_on_the_local_node() {
        let s = temp_store("promotion");
        let env = [("OCF_RESOURCE_INSTANCE", "db:2")];
        assert_eq!(shim(&s, &env, "crm_attribute", "--promotion -v 10").0, 0);
        let (_, out, _) = shim(&s, &[], "crm_attribute", "-N n1 -n master-db -G");
        assert_eq!(out, "scope=status  name=master-db value=10\n");
        assert_eq!(shim(&s, &env, "crm_attribute", "-p -D").0, 0);
        assert_eq!(
            shim(&s, &[], "crm_attribute", "-N n1 -n master-db -G").0,
            105
        );
    }

    #[test]
    fn crm_master_writes_the_same_score() {
        let s = temp_store("crm_master");
        let env = [("OCF_RESOURCE_INSTANCE", "web:0")];
        assert_eq!(shim(&s, &env, "crm_master", "-l reboot -v 5").0, 0);
        let (_, out, _) = shim(&s, &env, "crm_master", "-G -q -l reboot");
        assert_eq!(out, "5\n");
        let (code, _, err) = shim(&s, &[], "crm_master", "-v 5");
        assert_eq!(code, 64);
        assert!(err.contains("OCF_RESOURCE_INSTANCE"), "{err}");
    }

    #[test]
    fn bad_arguments_are_usage_errors_naming_them() {
        let s = temp_store("bad");
        let (code, _, err) = shim(&s, &[], "crm_attribute", "-n x -v 1 -l sometimes");
        assert_eq!(code, 64);
        assert!(err.contains("sometimes"), "{err}");
        let (code, _, err) = shim(&s, &[], "crm_attribute", "-v 1");
        assert_eq!(code, 64);
        assert!(err.contains("-n NAME"), "{err}");
    }
}
