//! `tandem agent …`: run one resource or fence agent operation on this node
//! (`run`, `fence`), print an agent's metadata (`meta-data`), install the
//! Pacemaker CLI shims as symlinks to this binary (`install-shims`), and
//! install or run the built-in demo agents (`install-builtin`, `builtin`,
//! `serve-http`). The work happens in `tandem-agents`.

use anyhow::{anyhow, bail, Context, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;
use tandem_agents::fence::{FenceAction, FenceRequest};
use tandem_agents::{builtin, shim, ExecConfig, Executor, OpRequest, OpResult, Runner};

#[derive(clap::Subcommand, Debug)]
pub enum AgentCommand {
    /// Run one operation: `tandem agent run ocf:heartbeat:Dummy start -r d1 -p state=/tmp/d1`.
    Run(RunArgs),
    /// Run one fence action: `tandem agent fence fence_dummy off --target node2 -p ip=…`.
    Fence(FenceArgs),
    /// Print an agent's parsed metadata (parameters and actions).
    MetaData(MetaArgs),
    /// Create crm_attribute, crm_master, attrd_updater, crm_node and
    /// crm_resource in DIR as symlinks to this binary.
    InstallShims {
        /// Where to put them (agents get it as HA_SBIN_DIR).
        dir: PathBuf,
    },
    /// Write the built-in demo agents as OCF scripts under OCF_ROOT
    /// (`resource.d/tandem/HttpService`, `resource.d/tandem/LoopbackVip`).
    InstallBuiltin {
        /// The OCF root to write under (Debian's is /usr/lib/ocf).
        ocf_root: PathBuf,
    },
    /// Run a built-in agent's action with the OCF environment (what the
    /// installed scripts call).
    Builtin {
        /// `HttpService` or `LoopbackVip`.
        agent: String,
        /// The OCF action (start, stop, monitor, meta-data, ...).
        action: String,
    },
    /// Serve the demo HTTP service in the foreground (started by HttpService).
    ServeHttp {
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        bind: String,
        /// The port to listen on.
        #[arg(long)]
        port: u16,
    },
}

#[derive(clap::Args, Debug)]
pub struct Common {
    /// OCF_ROOT.
    #[arg(long, default_value = "/usr/lib/ocf")]
    ocf_root: PathBuf,
    /// Directory with the shims, given to agents as HA_SBIN_DIR.
    #[arg(long)]
    shim_dir: Option<PathBuf>,
    /// Attribute store the shims use (TANDEM_ATTR_STORE).
    #[arg(long)]
    attr_store: Option<PathBuf>,
    /// Where fence agents are.
    #[arg(long, default_value = "/usr/sbin")]
    fence_dir: PathBuf,
    /// Parameters, NAME=VALUE (repeatable).
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// Operation timeout ("20s", "500ms", "1min").
    #[arg(long, default_value = "20s")]
    timeout: String,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// class:provider:type (ocf), or lsb:NAME, systemd:NAME, stonith:NAME.
    agent: String,
    /// start, stop, monitor, promote, demote, reload, reload-agent,
    /// migrate_to, migrate_from, notify, meta-data, validate-all.
    action: String,
    /// Resource instance name (OCF_RESOURCE_INSTANCE).
    #[arg(short = 'r', long, default_value = "tandem-test")]
    resource: String,
    /// Meta-attributes, NAME=VALUE (OCF_RESKEY_CRM_meta_NAME).
    #[arg(long = "meta", value_name = "NAME=VALUE")]
    meta: Vec<String>,
    /// Interval ("0" for one-shot).
    #[arg(long, default_value = "0")]
    interval: String,
    #[command(flatten)]
    common: Common,
}

#[derive(clap::Args, Debug)]
pub struct FenceArgs {
    /// The fence agent (fence_NAME).
    agent: String,
    /// off, on, reboot, status, monitor, list, metadata, validate-all.
    action: String,
    /// The node to act on.
    #[arg(long)]
    target: Option<String>,
    #[command(flatten)]
    common: Common,
}

#[derive(clap::Args, Debug)]
pub struct MetaArgs {
    /// class:provider:type (ocf), or lsb:NAME, systemd:NAME, stonith:NAME.
    agent: String,
    #[command(flatten)]
    common: Common,
}

pub fn run(command: AgentCommand) -> Result<()> {
    match command {
        AgentCommand::Run(args) => run_op(args),
        AgentCommand::Fence(args) => run_fence(args),
        AgentCommand::MetaData(args) => meta_data(args),
        AgentCommand::InstallShims { dir } => install_shims(&dir),
        AgentCommand::InstallBuiltin { ocf_root } => {
            let exe = std::env::current_exe().context("cannot find this binary's path")?;
            let written = builtin::install(&ocf_root, &exe)?;
            for path in written {
                println!("{}", path.display());
            }
            Ok(())
        }
        AgentCommand::Builtin { agent, action } => {
            let code = builtin::run(&agent, &action, &|k| std::env::var(k).ok());
            std::process::exit(code)
        }
        AgentCommand::ServeHttp { bind, port } => Ok(builtin::http::serve(&bind, port)?),
    }
}

/// Runs a shim when the binary was invoked as one (argv\[0\] is
/// `crm_attribute`, …); `None` when it was not.
pub fn run_shim_if_invoked_as_one() -> Option<i32> {
    let mut args = std::env::args();
    let tool = shim::tool_for_argv0(&args.next()?)?;
    let rest: Vec<String> = args.collect();
    let env = |k: &str| std::env::var(k).ok();
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    Some(shim::run(
        tool,
        &rest,
        &mut shim::Ctx {
            env: &env,
            out: &mut out,
            err: &mut err,
        },
    ))
}

fn config(common: &Common) -> ExecConfig {
    ExecConfig {
        ocf_root: common.ocf_root.clone(),
        shim_dir: common.shim_dir.clone(),
        attr_store: common.attr_store.clone(),
        fence_dir: common.fence_dir.clone(),
        ..ExecConfig::default()
    }
}

fn pairs(list: &[String], what: &str) -> Result<BTreeMap<String, String>> {
    list.iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| anyhow!("{what} `{p}`: expected NAME=VALUE"))
        })
        .collect()
}

fn ms(text: &str, what: &str) -> Result<u64> {
    tandem_model::parse_duration_ms(text)
        .ok_or_else(|| anyhow!("{what} `{text}`: expected a duration such as 20s, 500ms or 1min"))
}

fn run_op(args: RunArgs) -> Result<()> {
    let mut request = OpRequest::new(&args.resource, args.agent.parse()?, args.action.parse()?);
    request.params = pairs(&args.common.params, "parameter")?;
    request.meta = pairs(&args.meta, "meta-attribute")?;
    request.timeout_ms = ms(&args.common.timeout, "--timeout")?;
    request.interval_ms = ms(&args.interval, "--interval")?;
    let result = Executor::new(config(&args.common)).execute(&request);
    report(&result, args.common.json)
}

fn run_fence(args: FenceArgs) -> Result<()> {
    let action = match args.action.as_str() {
        "off" => FenceAction::Off,
        "on" => FenceAction::On,
        "reboot" => FenceAction::Reboot,
        "status" => FenceAction::Status,
        "monitor" => FenceAction::Monitor,
        "list" => FenceAction::List,
        "metadata" => FenceAction::Metadata,
        "validate-all" => FenceAction::ValidateAll,
        other => bail!("fence action `{other}`: expected off, on, reboot, status, monitor, list, metadata or validate-all"),
    };
    let request = FenceRequest {
        agent: args.agent,
        action,
        target: args.target,
        params: pairs(&args.common.params, "parameter")?,
        timeout_ms: ms(&args.common.timeout, "--timeout")?,
    };
    let result = tandem_agents::fence::fence(&config(&args.common), &request);
    report(&result, args.common.json)
}

fn meta_data(args: MetaArgs) -> Result<()> {
    let request = OpRequest::new(
        "meta-data",
        args.agent.parse()?,
        tandem_agents::Action::MetaData,
    );
    let meta = tandem_agents::ocf::meta_data(&config(&args.common), &request)?;
    if args.common.json {
        println!("{}", serde_json::to_string_pretty(&meta)?);
        return Ok(());
    }
    println!(
        "{} (OCF {})",
        meta.name,
        meta.ocf_version.as_deref().unwrap_or("?")
    );
    for p in &meta.parameters {
        let flags = [(p.required, "required"), (p.unique, "unique")]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, n)| *n)
            .collect::<Vec<_>>()
            .join(",");
        println!(
            "  param {:<20} {:<18} default={}",
            p.name,
            flags,
            p.default.as_deref().unwrap_or("-")
        );
    }
    for a in &meta.actions {
        println!(
            "  action {:<14} timeout={}ms interval={}ms",
            a.name,
            a.timeout_ms.unwrap_or(0),
            a.interval_ms.unwrap_or(0)
        );
    }
    Ok(())
}

fn report(result: &OpResult, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(result)?);
    } else {
        println!(
            "{:?} (rc {}) in {} ms{}",
            result.status,
            result
                .status
                .ocf_code()
                .map_or("-".to_string(), |c| c.to_string()),
            result.duration_ms,
            result
                .exit_reason
                .as_deref()
                .map_or(String::new(), |r| format!(": {r}"))
        );
        if !result.stdout.is_empty() {
            print!("{}", result.stdout);
        }
    }
    if result.succeeded() {
        Ok(())
    } else {
        bail!("operation did not succeed: {:?}", result.status)
    }
}

fn install_shims(dir: &std::path::Path) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find this binary's path")?;
    let links = shim::install(dir, &exe)
        .with_context(|| format!("cannot install the shims in {}", dir.display()))?;
    for link in links {
        println!("{} -> {}", link.display(), exe.display());
    }
    Ok(())
}
