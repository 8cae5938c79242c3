//! OCF 1.1 resource agents: `$OCF_ROOT/resource.d/<provider>/<type> <action>`
//! with the instance's parameters as `OCF_RESKEY_<name>`, meta-attributes as
//! `OCF_RESKEY_CRM_meta_<name>` (timeout and interval in ms), exit codes
//! mapped by [`AgentStatus::from_ocf_code`] and the exit reason taken from
//! `ocf-exit-reason:` lines on stderr.
//!
//! Must not: judge results against expectations; the caller does.

use crate::exec::{effective_timeout, run_mapped, Action, ExecConfig, OpRequest, CRM_FEATURE_SET};
use crate::metadata::{self, Metadata, MetadataError};
use crate::result::{AgentStatus, OpResult};
use std::path::PathBuf;

/// Runs one OCF operation.
pub fn run(config: &ExecConfig, request: &OpRequest) -> OpResult {
    let path = agent_path(config, request);
    if !path.is_file() {
        let mut r = OpResult::exec_failed(format!(
            "OCF agent {} not found at {}",
            request.agent,
            path.display()
        ));
        // Pacemaker reports a missing agent as "not installed" (hard).
        r.status = AgentStatus::NotInstalled;
        return r;
    }
    let env = match environment(config, request) {
        Ok(env) => env,
        Err(reason) => return OpResult::exec_failed(reason),
    };
    run_mapped(
        config,
        path,
        vec![request.action.as_str().into()],
        env,
        None,
        (request.timeout_ms, request.cancel.as_ref()),
        AgentStatus::from_ocf_code,
    )
}

/// Runs `meta-data` and parses what the agent printed.
pub fn meta_data(config: &ExecConfig, request: &OpRequest) -> Result<Metadata, MetadataError> {
    let mut request = request.clone();
    request.action = Action::MetaData;
    let result = run(config, &request);
    if result.status != AgentStatus::Ok {
        return Err(MetadataError::Failed {
            agent: request.agent.to_string(),
            status: format!("{:?}", result.status),
            reason: result.exit_reason.unwrap_or_default(),
        });
    }
    metadata::parse(&request.agent.to_string(), &result.stdout)
}

fn agent_path(config: &ExecConfig, request: &OpRequest) -> PathBuf {
    let provider = request.agent.provider.as_deref().unwrap_or("heartbeat");
    config
        .ocf_root
        .join("resource.d")
        .join(provider)
        .join(&request.agent.kind)
}

/// The OCF environment of one operation; an error names the parameter or
/// meta-attribute that cannot be passed.
pub fn environment(
    config: &ExecConfig,
    request: &OpRequest,
) -> Result<Vec<(String, String)>, String> {
    let mut env = config.base_env();
    let mut set = |k: &str, v: &str| env.push((k.to_string(), v.to_string()));
    set("OCF_ROOT", &config.ocf_root.display().to_string());
    set("OCF_RA_VERSION_MAJOR", "1");
    set("OCF_RA_VERSION_MINOR", "1");
    set("OCF_RESOURCE_INSTANCE", &request.resource);
    set("OCF_RESOURCE_TYPE", &request.agent.kind);
    set(
        "OCF_RESOURCE_PROVIDER",
        request.agent.provider.as_deref().unwrap_or(""),
    );
    set("OCF_RESKEY_crm_feature_set", CRM_FEATURE_SET);
    set("__OCF_ACTION", request.action.as_str());
    for (name, value) in &request.params {
        check_passable("parameter", name, value)?;
        set(&format!("OCF_RESKEY_{name}"), value);
    }
    for (name, value) in &request.meta {
        check_passable("meta-attribute", name, value)?;
        if matches!(name.as_str(), "timeout" | "interval") {
            continue; // set from the request's own fields below
        }
        set(
            &format!("OCF_RESKEY_CRM_meta_{}", name.replace('-', "_")),
            value,
        );
    }
    let timeout_ms = effective_timeout(request.timeout_ms)
        .as_millis()
        .to_string();
    set("OCF_RESKEY_CRM_meta_timeout", &timeout_ms);
    set(
        "OCF_RESKEY_CRM_meta_interval",
        &request.interval_ms.to_string(),
    );
    if let Some(node) = &config.node_name {
        set("OCF_RESKEY_CRM_meta_on_node", node);
    }
    Ok(env)
}

fn check_passable(what: &str, name: &str, value: &str) -> Result<(), String> {
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    if !name_ok {
        return Err(format!(
            "{what} name `{name}` cannot be passed to an agent (letters, digits, `_`, `-`, `.` only)"
        ));
    }
    if value.contains('\0') {
        return Err(format!("{what} `{name}` has a NUL byte in its value"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(env: &'a [(String, String)], key: &str) -> Option<&'a str> {
        env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    #[test]
    fn environment_carries_params_meta_timeout_and_interval() {
        let mut req = OpRequest::new(
            "db:1",
            "ocf:heartbeat:Dummy".parse().unwrap(),
            Action::Monitor,
        )
        .param("state", "/tmp/x")
        .timeout_ms(5_000);
        req.interval_ms = 10_000;
        req.meta.insert("clone".into(), "1".into());
        req.meta.insert("notify-type".into(), "pre".into());
        let env = environment(&ExecConfig::default(), &req).unwrap();
        assert_eq!(lookup(&env, "OCF_RESOURCE_INSTANCE"), Some("db:1"));
        assert_eq!(lookup(&env, "OCF_RESOURCE_TYPE"), Some("Dummy"));
        assert_eq!(lookup(&env, "OCF_RESOURCE_PROVIDER"), Some("heartbeat"));
        assert_eq!(lookup(&env, "OCF_RESKEY_state"), Some("/tmp/x"));
        assert_eq!(lookup(&env, "OCF_RESKEY_CRM_meta_timeout"), Some("5000"));
        assert_eq!(lookup(&env, "OCF_RESKEY_CRM_meta_interval"), Some("10000"));
        assert_eq!(lookup(&env, "OCF_RESKEY_CRM_meta_clone"), Some("1"));
        assert_eq!(lookup(&env, "OCF_RESKEY_CRM_meta_notify_type"), Some("pre"));
        assert_eq!(lookup(&env, "OCF_ROOT"), Some("/usr/lib/ocf"));
    }

    #[test]
    fn a_parameter_that_cannot_be_an_env_name_is_refused_by_name() {
        let req = OpRequest::new("r", "ocf:x:y".parse().unwrap(), Action::Start).param("a=b", "1");
        let e = environment(&ExecConfig::default(), &req).unwrap_err();
        assert!(e.contains("`a=b`"), "{e}");
    }

    #[test]
    fn a_missing_agent_is_not_installed() {
        let config = ExecConfig {
            ocf_root: "/nonexistent".into(),
            ..ExecConfig::default()
        };
        let req = OpRequest::new("r", "ocf:x:y".parse().unwrap(), Action::Start);
        let r = run(&config, &req);
        assert_eq!(r.status, AgentStatus::NotInstalled);
        assert!(r
            .exit_reason
            .unwrap()
            .contains("/nonexistent/resource.d/x/y"));
    }
}
