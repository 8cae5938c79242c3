//! TLS termination with rustls (ring provider): certificate chain and key
//! from PEM files, ALPN `h2`/`http/1.1`, and [`TlsTerminator::reload`], which
//! swaps the configuration for new handshakes while connections already
//! established keep theirs (none is dropped).

use crate::config::TlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use std::path::Path;
use std::sync::{Arc, RwLock};
use tokio_rustls::TlsAcceptor;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{file}: {message}")]
    File { file: String, message: String },
    #[error("certificate {cert} and key {key} do not form a usable TLS configuration: {source}")]
    Config {
        cert: String,
        key: String,
        source: rustls::Error,
    },
}

pub struct TlsTerminator {
    cfg: TlsConfig,
    current: RwLock<TlsAcceptor>,
}

impl TlsTerminator {
    pub fn new(cfg: &TlsConfig) -> Result<Self, TlsError> {
        let acceptor = build(cfg)?;
        Ok(TlsTerminator {
            cfg: cfg.clone(),
            current: RwLock::new(acceptor),
        })
    }

    /// The acceptor for the next handshake.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Re-read the files; on error the old certificate stays in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        let next = build(&self.cfg)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = next;
        tracing::info!(cert = %self.cfg.cert.display(), "TLS certificate reloaded");
        Ok(())
    }
}

fn build(cfg: &TlsConfig) -> Result<TlsAcceptor, TlsError> {
    let certs = read_certs(&cfg.cert)?;
    let key = PrivateKeyDer::from_pem_file(&cfg.key).map_err(|e| TlsError::File {
        file: cfg.key.display().to_string(),
        message: format!("no usable PEM private key: {e}"),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|source| TlsError::Config {
            cert: cfg.cert.display().to_string(),
            key: cfg.key.display().to_string(),
            source,
        })?;
    server.alpn_protocols = if cfg.http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(TlsAcceptor::from(Arc::new(server)))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |message: String| TlsError::File {
        file: path.display().to_string(),
        message,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(format!("cannot read certificates: {e}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(format!("bad PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(err("no PEM certificate in the file".into()));
    }
    Ok(certs)
}
