//! What a configuration would do if applied, without applying it: the
//! diff against the running document and the scheduler's transition on
//! the live cluster (membership, attributes, operation history) with the
//! new document substituted. Serves `config plan`, `config apply`'s
//! summary and the dry runs of operator edits, and is the gate every
//! document passes before it is committed: parsed, held to
//! [`crate::limits`], and scheduled within the admission budget, so a
//! document that would crash, starve or stall the scheduler never reaches
//! the log (where every DC in turn would meet it).

use crate::limits;
use crate::schedule_guard::{self, Purpose, ScheduleError};
use serde::Serialize;
use tandem_cluster::{MembershipView, Replicated};
use tandem_scheduler::SummaryLine;

/// Why a document has no preview.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    /// It does not parse or validate; the text names every problem.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    TooLarge(#[from] limits::TooLarge),
    #[error("{0}")]
    Schedule(#[from] ScheduleError),
}

impl PreviewError {
    /// Whether the document itself is at fault (as opposed to the node
    /// being too busy to judge it now).
    pub fn is_refusal(&self) -> bool {
        !matches!(
            self,
            PreviewError::Schedule(ScheduleError::Busy(_) | ScheduleError::Spawn(_))
        )
    }
}

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
/// the document is invalid or too large, or why it could not be
/// scheduled.
pub async fn plan(
    view: &MembershipView,
    state: &Replicated,
    text: &str,
    now: i64,
) -> Result<Plan, PreviewError> {
    // The size first: parsing is linear, but the text may be huge.
    if text.len() > limits::MAX_DOCUMENT_BYTES {
        return Err(limits::TooLarge(vec![format!(
            "{} bytes of text, more than the {} allowed",
            text.len(),
            limits::MAX_DOCUMENT_BYTES
        )])
        .into());
    }
    let mut cluster =
        tandem_model::native::parse_toml(text).map_err(|e| PreviewError::Invalid(e.to_string()))?;
    limits::check_document(text, &cluster)?;
    crate::live::apply_live_state(&mut cluster, view, state);
    let t =
        schedule_guard::schedule_for(Purpose::Admission, cluster, now, limits::ADMISSION_BUDGET)
            .await?;
    Ok(Plan {
        config_version: state.config_version,
        diff: crate::diff::unified(&state.config_text, text, "running", "new"),
        summary_text: tandem_scheduler::summary::render_summary_lines(&t.summary),
        placement: t.revised.placement_json()["resources"].clone(),
        summary: t.summary,
        warnings: t.warnings,
    })
}
