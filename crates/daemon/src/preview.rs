//! What a configuration would do if applied, without applying it: the
//! diff against the running document and the scheduler's transition on
//! the live cluster (membership, attributes, operation history) with the
//! new document substituted. Serves `config plan`, `config apply`'s
//! summary and the dry runs of operator edits.

use serde::Serialize;
use tandem_cluster::{MembershipView, Replicated};
use tandem_scheduler::SummaryLine;

/// The preview of one configuration document.
#[derive(Serialize)]
pub struct Plan {
    /// The version the preview was computed against.
    pub config_version: u64,
    /// Unified diff of the running document to the new one (empty: same).
    pub diff: String,
    /// The Transition Summary the scheduler would act on.
    pub summary: Vec<SummaryLine>,
    /// The same, rendered as `crm_simulate` does.
    pub summary_text: String,
    /// The planned placement: resource → role → nodes.
    pub placement: serde_json::Value,
    pub warnings: Vec<String>,
}

/// Previews `text` on the live cluster at `now`; an error names what in
/// the document is invalid.
pub fn plan(
    view: &MembershipView,
    state: &Replicated,
    text: &str,
    now: i64,
) -> Result<Plan, String> {
    let mut cluster = tandem_model::native::parse_toml(text).map_err(|e| e.to_string())?;
    crate::live::apply_live_state(&mut cluster, view, state);
    let t = tandem_scheduler::schedule(&cluster, now);
    Ok(Plan {
        config_version: state.config_version,
        diff: crate::diff::unified(&state.config_text, text, "running", "new"),
        summary_text: tandem_scheduler::summary::render_summary_lines(&t.summary),
        placement: t.revised.placement_json()["resources"].clone(),
        summary: t.summary,
        warnings: t.warnings,
    })
}
