//! Pacemaker CIB XML ⇄ tandem's model.
//!
//! Must not know about the scheduler.

use tandem_model::Cluster;

#[derive(Debug, thiserror::Error)]
pub enum CibError {
    #[error("{0}")]
    Xml(String),
}

/// Parses a whole CIB document (configuration and status).
pub fn parse_cib(text: &str) -> Result<Cluster, CibError> {
    let _ = roxmltree::Document::parse(text).map_err(|e| CibError::Xml(e.to_string()))?;
    Err(CibError::Xml("not implemented yet".into()))
}
