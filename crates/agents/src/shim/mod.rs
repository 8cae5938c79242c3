//! The Pacemaker command-line tools agents call, for the subset Debian's
//! resource-agents use: `crm_attribute` (incl. `--promotion`),
//! `crm_master`, `attrd_updater`, `crm_node`, `crm_resource --locate`.
//! The `tandem` binary runs [`run`] when invoked under one of these names
//! (a symlink in the shim directory agents get as `HA_SBIN_DIR`). They read
//! and write the local [`AttrStore`](crate::attrs::AttrStore) until the
//! daemon serves them.
//!
//! Output formats and exit codes follow Pacemaker 2.1 where agents parse
//! them. Main items: [`TOOLS`], [`run`], [`Ctx`].
//! Must not: panic on any argument list.

mod args;
mod attrd_updater;
mod crm_attribute;
mod crm_node;
mod crm_resource;

use crate::attrs::{AttrData, AttrError, AttrStore};
use crate::exec::PACEMAKER_COMPAT_VERSION;
use std::io::Write;

/// The names the shims answer to.
pub const TOOLS: [&str; 5] = [
    "crm_attribute",
    "crm_master",
    "attrd_updater",
    "crm_node",
    "crm_resource",
];

/// Pacemaker's exit codes the shims use (`crm_exit_t`).
pub mod exit {
    pub const OK: i32 = 0;
    pub const ERROR: i32 = 1;
    pub const USAGE: i32 = 64;
    pub const NOSUCH: i32 = 105;
}

/// What a shim run sees of the world: its environment and output streams.
pub struct Ctx<'a> {
    pub env: &'a dyn Fn(&str) -> Option<String>,
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
}

impl Ctx<'_> {
    fn store(&self) -> AttrStore {
        AttrStore::from_env(self.env)
    }

    /// This node's name: `TANDEM_NODE_NAME`, the store's, or the host name.
    fn local_node(&self, data: &AttrData) -> String {
        (self.env)("TANDEM_NODE_NAME")
            .filter(|n| !n.is_empty())
            .or_else(|| data.local_node.clone())
            .unwrap_or_else(host_name)
    }

    fn fail(&mut self, tool: &str, code: i32, message: impl std::fmt::Display) -> i32 {
        let _ = writeln!(self.err, "{tool}: {message}");
        code
    }

    fn store_error(&mut self, tool: &str, e: AttrError) -> i32 {
        self.fail(tool, exit::ERROR, e)
    }
}

/// Runs the shim `tool` with `args` (without argv\[0\]); returns the exit
/// code. An unknown tool is a usage error.
pub fn run(tool: &str, args: &[String], ctx: &mut Ctx) -> i32 {
    if args.iter().any(|a| a == "--version") {
        let _ = writeln!(
            ctx.out,
            "Pacemaker {PACEMAKER_COMPAT_VERSION} (tandem shim)\nWritten by the tandem project"
        );
        return exit::OK;
    }
    match tool {
        "crm_attribute" => crm_attribute::run(args, ctx, None),
        "crm_master" => crm_attribute::run_master(args, ctx),
        "attrd_updater" => attrd_updater::run(args, ctx),
        "crm_node" => crm_node::run(args, ctx),
        "crm_resource" => crm_resource::run(args, ctx),
        other => ctx.fail(other, exit::USAGE, "not a tandem shim"),
    }
}

/// The tool name a program was invoked as (`/usr/sbin/crm_master` →
/// `crm_master`), if it is one of [`TOOLS`].
pub fn tool_for_argv0(argv0: &str) -> Option<&'static str> {
    let name = argv0.rsplit('/').next().unwrap_or(argv0);
    TOOLS.into_iter().find(|t| *t == name)
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().split('.').next().unwrap_or("").to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// `OCF_RESOURCE_INSTANCE` without a clone suffix (`db:1` → `db`).
fn resource_without_clone_suffix(instance: &str) -> &str {
    match instance.rsplit_once(':') {
        Some((base, n)) if !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) => base,
        _ => instance,
    }
}

/// Makes every tool in [`TOOLS`] a symlink to `exe` inside `dir` (agents
/// find them through `HA_SBIN_DIR` and `PATH`); returns the links.
pub fn install(
    dir: &std::path::Path,
    exe: &std::path::Path,
) -> std::io::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    TOOLS
        .iter()
        .map(|tool| {
            let link = dir.join(tool);
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(exe, &link)?;
            Ok(link)
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Runs a shim against `store` with extra environment; returns (code,
    /// stdout, stderr).
    pub fn shim(
        store: &str,
        env: &[(&str, &str)],
        tool: &str,
        args: &str,
    ) -> (i32, String, String) {
        let mut vars: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        vars.insert("TANDEM_ATTR_STORE".into(), store.into());
        vars.entry("TANDEM_NODE_NAME".into()).or_insert("n1".into());
        let lookup = move |k: &str| vars.get(k).cloned();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let args: Vec<String> = args.split_whitespace().map(str::to_string).collect();
        let code = run(
            tool,
            &args,
            &mut Ctx {
                env: &lookup,
                out: &mut out,
                err: &mut err,
            },
        );
        (
            code,
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
        )
    }

    pub fn temp_store(name: &str) -> String {
        let dir = std::env::temp_dir().join(format!("tandem-shim-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("attrs.json").display().to_string()
    }

    #[test]
    fn argv0_selects_the_tool() {
        assert_eq!(tool_for_argv0("/usr/sbin/crm_master"), Some("crm_master"));
        assert_eq!(tool_for_argv0("tandem"), None);
    }

    #[test]
    fn clone_suffixes_are_stripped() {
        assert_eq!(resource_without_clone_suffix("db:1"), "db");
        assert_eq!(resource_without_clone_suffix("db"), "db");
        assert_eq!(resource_without_clone_suffix("a:b"), "a:b");
    }

    #[test]
    fn version_is_pacemaker_like() {
        let (code, out, _) = shim(&temp_store("v"), &[], "crm_attribute", "--version");
        assert_eq!(code, 0);
        assert!(out.starts_with("Pacemaker 2.1"), "{out}");
    }
}
