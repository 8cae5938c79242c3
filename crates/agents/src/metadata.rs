//! Agent metadata (`meta-data` for OCF, `metadata` for fence agents): the
//! XML an agent prints, parsed into its [`Parameter`]s (name, required,
//! unique, default) and [`ActionSpec`]s (name, timeout, interval, depth).
//!
//! Must not: run agents; `ocf::meta_data` and `fence::metadata` do.

use crate::limits::METADATA_MAX_BYTES;
use serde::{Deserialize, Serialize};

/// What an agent says about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// The `name` attribute of `<resource-agent>`.
    pub name: String,
    /// `<version>` (the OCF version the agent follows), if given.
    pub ocf_version: Option<String>,
    pub shortdesc: Option<String>,
    pub parameters: Vec<Parameter>,
    pub actions: Vec<ActionSpec>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parameter {
    pub name: String,
    pub required: bool,
    pub unique: bool,
    /// Declared type of `<content>` (string, integer, boolean, …).
    pub content_type: Option<String>,
    pub default: Option<String>,
    pub shortdesc: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionSpec {
    pub name: String,
    /// Advised timeout in ms, when the agent gives a parseable one.
    pub timeout_ms: Option<u64>,
    /// Advised interval in ms (monitors).
    pub interval_ms: Option<u64>,
    /// OCF_CHECK_LEVEL for this monitor depth.
    pub depth: Option<u32>,
    /// `role` (Promoted/Unpromoted) for role-specific monitors.
    pub role: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("metadata of {agent}: {len} bytes is more than the {max} accepted")]
    TooLarge {
        agent: String,
        len: usize,
        max: usize,
    },
    #[error("metadata of {agent} is not XML: {detail}")]
    Xml { agent: String, detail: String },
    #[error("metadata of {agent}: root element is <{found}>, expected <resource-agent>")]
    Root { agent: String, found: String },
    #[error("metadata of {agent}, line {line}: {what}")]
    Invalid {
        agent: String,
        line: u32,
        what: String,
    },
    #[error("{agent} meta-data failed ({status}): {reason}")]
    Failed {
        agent: String,
        status: String,
        reason: String,
    },
}

/// Parses metadata XML printed by `agent` (named in errors).
pub fn parse(agent: &str, xml: &str) -> Result<Metadata, MetadataError> {
    if xml.len() > METADATA_MAX_BYTES {
        return Err(MetadataError::TooLarge {
            agent: agent.into(),
            len: xml.len(),
            max: METADATA_MAX_BYTES,
        });
    }
    // Agents declare `<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">`;
    // roxmltree never fetches external DTDs, so allowing them is safe.
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    let doc =
        roxmltree::Document::parse_with_options(xml, options).map_err(|e| MetadataError::Xml {
            agent: agent.into(),
            detail: e.to_string(),
        })?;
    let root = doc.root_element();
    if root.tag_name().name() != "resource-agent" {
        return Err(MetadataError::Root {
            agent: agent.into(),
            found: root.tag_name().name().into(),
        });
    }
    let mut meta = Metadata {
        name: root.attribute("name").unwrap_or_default().to_string(),
        ocf_version: child_text(root, "version"),
        shortdesc: child_text(root, "shortdesc")
            .or_else(|| root.attribute("shortdesc").map(str::to_string)),
        ..Metadata::default()
    };
    for node in root.descendants().filter(|n| n.has_tag_name("parameter")) {
        meta.parameters.push(parameter(agent, &doc, node)?);
    }
    for node in root.descendants().filter(|n| n.has_tag_name("action")) {
        meta.actions.push(action(agent, &doc, node)?);
    }
    Ok(meta)
}

fn parameter(
    agent: &str,
    doc: &roxmltree::Document,
    node: roxmltree::Node,
) -> Result<Parameter, MetadataError> {
    let name = required_name(agent, doc, node, "parameter")?;
    let content = node.children().find(|n| n.has_tag_name("content"));
    Ok(Parameter {
        name,
        required: flag(node.attribute("required")),
        unique: flag(node.attribute("unique")),
        content_type: content
            .and_then(|c| c.attribute("type"))
            .map(str::to_string),
        default: content
            .and_then(|c| c.attribute("default"))
            .map(str::to_string),
        shortdesc: child_text(node, "shortdesc"),
    })
}

fn action(
    agent: &str,
    doc: &roxmltree::Document,
    node: roxmltree::Node,
) -> Result<ActionSpec, MetadataError> {
    let name = required_name(agent, doc, node, "action")?;
    let ms = |attr: &str| {
        node.attribute(attr)
            .and_then(tandem_model::parse_duration_ms)
    };
    Ok(ActionSpec {
        name,
        timeout_ms: ms("timeout"),
        interval_ms: ms("interval"),
        depth: node.attribute("depth").and_then(|d| d.trim().parse().ok()),
        role: node.attribute("role").map(str::to_string),
    })
}

fn required_name(
    agent: &str,
    doc: &roxmltree::Document,
    node: roxmltree::Node,
    element: &str,
) -> Result<String, MetadataError> {
    match node.attribute("name").map(str::trim) {
        Some(n) if !n.is_empty() => Ok(n.to_string()),
        _ => Err(MetadataError::Invalid {
            agent: agent.into(),
            line: doc.text_pos_at(node.range().start).row,
            what: format!("<{element}> without a name"),
        }),
    }
}

fn flag(value: Option<&str>) -> bool {
    matches!(value.map(str::trim), Some("1" | "true" | "yes"))
}

fn child_text(node: roxmltree::Node, tag: &str) -> Option<String> {
    node.children()
        .find(|n| n.has_tag_name(tag))
        .and_then(|n| n.text())
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMMY: &str = r#"<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name="Dummy" version="1.0">
<version>1.1</version>
<shortdesc lang="en">Example stateless resource agent</shortdesc>
<parameters>
<parameter name="state" unique-group="state" required="1">
<shortdesc lang="en">State file</shortdesc>
<content type="string" default="/run/Dummy.state" />
</parameter>
<parameter name="fake" unique="1"><content type="string" default="dummy" /></parameter>
</parameters>
<actions>
<action name="start" timeout="20s" />
<action name="monitor" timeout="20s" interval="10s" depth="0"/>
<action name="migrate_to" timeout="1min" />
</actions>
</resource-agent>"#;

    #[test]
    fn parameters_and_actions_are_read() {
        let m = parse("ocf:heartbeat:Dummy", DUMMY).unwrap();
        assert_eq!(m.name, "Dummy");
        assert_eq!(m.ocf_version.as_deref(), Some("1.1"));
        assert_eq!(m.parameters.len(), 2);
        assert!(m.parameters[0].required && !m.parameters[0].unique);
        assert_eq!(m.parameters[0].default.as_deref(), Some("/run/Dummy.state"));
        assert!(m.parameters[1].unique);
        let mon = m.actions.iter().find(|a| a.name == "monitor").unwrap();
        assert_eq!(
            (mon.timeout_ms, mon.interval_ms, mon.depth),
            (Some(20_000), Some(10_000), Some(0))
        );
        assert_eq!(m.actions[2].timeout_ms, Some(60_000));
    }

    #[test]
    fn broken_metadata_is_an_error_naming_agent_and_line() {
        let e = parse("ocf:x:y", "<resource-agent><parameters>").unwrap_err();
        assert!(
            e.to_string().starts_with("metadata of ocf:x:y is not XML"),
            "{e}"
        );
        let e = parse("ocf:x:y", "<html/>").unwrap_err().to_string();
        assert!(e.contains("<html>"), "{e}");
        let e = parse(
            "ocf:x:y",
            "<resource-agent>\n<parameters>\n<parameter/></parameters></resource-agent>",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("line 3") && e.contains("without a name"), "{e}");
    }
}
