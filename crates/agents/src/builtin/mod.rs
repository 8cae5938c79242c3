//! Built-in demo agents shipped inside the `tandem` binary so `tandem demo`
//! needs no packages: [`http`] (`ocf:tandem:HttpService`, an HTTP server
//! whose monitor is `GET /ready` → 200) and [`vip`] (`ocf:tandem:LoopbackVip`,
//! an address alias on `lo`). [`install`] writes them as OCF scripts that
//! call back into the binary; [`run`] performs an action from the OCF
//! environment and returns the OCF exit code.
//!
//! Must not: be needed by anything but the demo and tests.

pub mod http;
pub mod vip;

use std::path::{Path, PathBuf};

/// The built-in agents' names (the `type` in `ocf:tandem:<type>`).
pub const AGENTS: [&str; 2] = ["HttpService", "LoopbackVip"];

/// The OCF provider the built-in agents are installed under.
pub const PROVIDER: &str = "tandem";

/// OCF exit codes the built-in agents return.
pub mod rc {
    pub const OK: i32 = 0;
    pub const GENERIC: i32 = 1;
    pub const ARGS: i32 = 2;
    pub const UNIMPLEMENTED: i32 = 3;
    pub const CONFIGURED: i32 = 6;
    pub const NOT_RUNNING: i32 = 7;
}

/// Writes `<ocf_root>/resource.d/tandem/<agent>` scripts that exec `exe
/// agent builtin <agent> <action>`; returns the paths written.
pub fn install(ocf_root: &Path, exe: &Path) -> std::io::Result<Vec<PathBuf>> {
    use std::os::unix::fs::PermissionsExt;
    let dir = ocf_root.join("resource.d").join(PROVIDER);
    std::fs::create_dir_all(&dir)?;
    let exe = exe.display().to_string().replace('\'', "'\\''");
    AGENTS
        .iter()
        .map(|agent| {
            let path = dir.join(agent);
            let script = format!(
                "#!/bin/sh\n# tandem built-in agent; see `tandem agent builtin --help`.\nexec '{exe}' agent builtin {agent} \"$1\"\n"
            );
            std::fs::write(&path, script)?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
            Ok(path)
        })
        .collect()
}

/// Runs `action` of built-in `agent` with the OCF environment read
/// through `env`; returns the OCF exit code. Messages go to stderr, the
/// exit reason as an `ocf-exit-reason:` line.
pub fn run(agent: &str, action: &str, env: &dyn Fn(&str) -> Option<String>) -> i32 {
    let param = |name: &str| env(&format!("OCF_RESKEY_{name}")).filter(|v| !v.is_empty());
    match agent {
        "HttpService" => http::action(action, &param, env),
        "LoopbackVip" => vip::action(action, &param),
        other => fail(rc::CONFIGURED, &format!("no built-in agent `{other}`")),
    }
}

/// Prints an exit reason and returns `code`.
pub(crate) fn fail(code: i32, reason: &str) -> i32 {
    eprintln!("ocf-exit-reason:{reason}");
    code
}

/// The metadata XML of a built-in agent.
pub(crate) fn metadata_xml(name: &str, desc: &str, params: &[(&str, bool, &str)]) -> String {
    let mut xml = format!(
        "<?xml version=\"1.0\"?>\n<resource-agent name=\"{name}\" version=\"1.0\">\n<version>1.1</version>\n<shortdesc lang=\"en\">{desc}</shortdesc>\n<parameters>\n"
    );
    for (param, required, default) in params {
        xml.push_str(&format!(
            "<parameter name=\"{param}\" required=\"{}\"><content type=\"string\" default=\"{default}\"/></parameter>\n",
            u8::from(*required)
        ));
    }
    xml.push_str(
        "</parameters>\n<actions>\n<action name=\"start\" timeout=\"20s\"/>\n<action name=\"stop\" timeout=\"20s\"/>\n<action name=\"monitor\" timeout=\"10s\" interval=\"5s\" depth=\"0\"/>\n<action name=\"meta-data\" timeout=\"5s\"/>\n<action name=\"validate-all\" timeout=\"5s\"/>\n</actions>\n</resource-agent>\n",
    );
    xml
}
