//! Pacemaker CIB XML ↔ tandem's typed model ([`tandem_model::Cluster`]).
//!
//! [`parse_cib`] reads a whole CIB document (`<cib>` with `<configuration>`
//! and `<status>`) the way Pacemaker 3.0 writes it, and accepts the older
//! spellings still found in the wild (`<master>`, `Master`/`Slave` roles,
//! underscore status attributes). It resolves `id-ref`s and expands
//! resource templates, so the model holds plain values; it does not
//! interpret them (option renames, rule evaluation, meta-attribute
//! precedence and history replay belong to the scheduler).
//!
//! Input is untrusted: every fault is a [`CibError`] naming the element
//! path and line:column, never a panic. Content problems are all collected
//! and reported together. Valid input that the model cannot represent
//! (bundles, alerts, unknown elements, health-colour scores...) is listed
//! in [`Cluster::unsupported`] instead of being dropped silently.
//!
//! [`write_cib`] goes the other way: a model (read from a CIB or from
//! tandem's TOML) as a Pacemaker CIB document that reads back the same.
//!
//! Modules: `xml` (element helpers, positions, id-ref), `depth` (nesting
//! bound checked before parsing), `config`,
//! `resources`, `constraints`, `rules`, `dates`, `nvset`, `status`;
//! `write` (model → XML, one submodule per section).
//!
//! Must not: know about the scheduler.

mod config;
mod constraints;
mod depth;
mod error;
mod nvset;
mod resources;
mod rules;
mod status;
mod write;
mod xml;

pub use depth::MAX_ELEMENT_DEPTH;
pub use error::{CibError, Problem, MAX_PROBLEMS};
pub use write::{write_cib, write_cib_at_version, TANDEM_CLIENT, VALIDATE_WITH};

use roxmltree::{Document, Node, ParsingOptions};
use tandem_model::Cluster;
use xml::{elements, name, Ctx};

/// The largest CIB accepted. Real CIBs of large clusters are a few MiB;
/// the limit bounds memory for hostile input.
pub const MAX_CIB_BYTES: usize = 64 * 1024 * 1024;

/// Parses a whole CIB document (configuration and status).
pub fn parse_cib(text: &str) -> Result<Cluster, CibError> {
    if text.len() > MAX_CIB_BYTES {
        return Err(CibError::TooLarge {
            bytes: text.len(),
            limit: MAX_CIB_BYTES,
        });
    }
    if let Some(offset) = depth::too_deep_at(text) {
        return Err(too_deep(text, offset));
    }
    let options = ParsingOptions {
        allow_dtd: false,
        ..ParsingOptions::default()
    };
    let doc = Document::parse_with_options(text, options).map_err(syntax_error)?;
    let ctx = Ctx::new(&doc);
    let cluster = read_cib(&ctx, doc.root_element());
    let (problems, omitted, unsupported) = ctx.finish();
    if !problems.is_empty() {
        return Err(CibError::Invalid { problems, omitted });
    }
    Ok(Cluster {
        unsupported,
        ..cluster
    })
}

/// The tandem configuration version a CIB was exported at
/// ([`write_cib_at_version`]), if tandem exported it: its `epoch` when
/// `update-client` is tandem's. `None` for any other document.
pub fn tandem_version(text: &str) -> Option<u64> {
    if text.len() > MAX_CIB_BYTES || depth::too_deep_at(text).is_some() {
        return None;
    }
    let options = ParsingOptions {
        allow_dtd: false,
        ..ParsingOptions::default()
    };
    let doc = Document::parse_with_options(text, options).ok()?;
    let cib = doc.root_element();
    if cib.attribute("update-client") != Some(TANDEM_CLIENT) {
        return None;
    }
    cib.attribute("epoch")?.parse().ok()
}

fn syntax_error(error: roxmltree::Error) -> CibError {
    let pos = error.pos();
    CibError::Xml {
        message: error.to_string(),
        line: pos.row,
        column: pos.col,
    }
}

fn too_deep(text: &str, offset: usize) -> CibError {
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |at| at + 1);
    CibError::TooDeep {
        limit: MAX_ELEMENT_DEPTH,
        line: before.matches('\n').count() as u32 + 1,
        column: before[line_start..].chars().count() as u32 + 1,
    }
}

/// Reads `<cib>`; problems go to `ctx`, so the result is only meaningful
/// when none were recorded.
fn read_cib(ctx: &Ctx, cib: Node) -> Cluster {
    let mut cluster = Cluster::default();
    if name(cib) != "cib" {
        let found = name(cib);
        ctx.record(ctx.problem(cib, format!("root element is <{found}>, expected <cib>")));
        return cluster;
    }
    cluster.status = ctx.keep(status::parse_root(ctx, cib)).unwrap_or_default();
    let mut seen_configuration = false;
    for section in elements(cib) {
        match name(section) {
            "configuration" => {
                seen_configuration = true;
                cluster.config = config::parse_configuration(ctx, section);
            }
            "status" => status::parse_status(ctx, section, &mut cluster.status),
            _ => ctx.unknown(section),
        }
    }
    if !seen_configuration {
        ctx.record(ctx.problem(cib, "missing required element <configuration>"));
    }
    cluster
}
