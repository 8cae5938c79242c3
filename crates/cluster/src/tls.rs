//! Mutual TLS for every connection (rustls, ring provider, TLS 1.3 only):
//! both sides present a certificate signed by the cluster CA. A peer with a
//! certificate from another CA, an expired one, or none fails the handshake;
//! the listener logs why. Also reads the holder's name and role from a
//! verified certificate.

use crate::pki::SERVER_NAME;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a holder's PEM files are.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct TlsFiles {
    /// The cluster CA certificate: the only trust anchor.
    pub ca: PathBuf,
    /// This holder's certificate.
    pub cert: PathBuf,
    /// This holder's private key.
    pub key: PathBuf,
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: cannot read PEM ({detail})")]
    Pem { path: PathBuf, detail: String },
    #[error("{path}: {detail}")]
    Invalid { path: PathBuf, detail: String },
}

/// A verified peer: its certificate's CN and OU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub role: String,
}

impl TlsFiles {
    fn roots(&self) -> Result<RootCertStore, TlsError> {
        let mut roots = RootCertStore::empty();
        for cert in certs(&self.ca)? {
            roots.add(cert).map_err(|e| invalid(&self.ca, e))?;
        }
        Ok(roots)
    }

    fn identity(&self) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|e| pem(&self.key, e))?;
        Ok((certs(&self.cert)?, key))
    }

    /// The server side: requires a client certificate from the cluster CA.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let provider = provider();
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(self.roots()?), provider.clone())
                .build()
                .map_err(|e| invalid(&self.ca, e))?;
        let (chain, key) = self.identity()?;
        let config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| invalid(&self.cert, e))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(|e| invalid(&self.key, e))?;
        Ok(Arc::new(config))
    }

    /// The client side: presents our certificate, trusts only the CA.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, TlsError> {
        let (chain, key) = self.identity()?;
        let config = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| invalid(&self.cert, e))?
            .with_root_certificates(self.roots()?)
            .with_client_auth_cert(chain, key)
            .map_err(|e| invalid(&self.key, e))?;
        Ok(Arc::new(config))
    }
}

/// The name clients check in every node's certificate.
pub fn server_name() -> ServerName<'static> {
    ServerName::try_from(SERVER_NAME).expect("SERVER_NAME is a valid DNS name")
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem(path, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem(path, e))?;
    if certs.is_empty() {
        return Err(invalid(path, "no certificate in file"));
    }
    Ok(certs)
}

fn pem(path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::Pem {
        path: path.to_path_buf(),
        detail: e.to_string(),
    }
}

fn invalid(path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::Invalid {
        path: path.to_path_buf(),
        detail: e.to_string(),
    }
}

/// The CN and OU of a certificate the TLS layer already verified.
pub fn identity_of(cert: &CertificateDer<'_>) -> Option<Identity> {
    let subject = der::subject(cert.as_ref())?;
    Some(Identity {
        name: der::attribute(subject, &[0x55, 0x04, 0x03])?,
        role: der::attribute(subject, &[0x55, 0x04, 0x0b]).unwrap_or_default(),
    })
}

/// Just enough DER to find a certificate's subject attributes.
mod der {
    /// Splits one TLV off `input`: (tag, content, rest).
    fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = input.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (first as usize, rest)
        } else {
            let n = (first & 0x7f) as usize;
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let len = rest[..n].iter().fold(0usize, |a, &b| (a << 8) | b as usize);
            (len, &rest[n..])
        };
        (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
    }

    /// The subject Name of a certificate.
    pub fn subject(cert: &[u8]) -> Option<&[u8]> {
        let (_, cert, _) = tlv(cert)?;
        let (_, tbs, _) = tlv(cert)?;
        let mut rest = tbs;
        let (tag, _, r) = tlv(rest)?;
        if tag == 0xa0 {
            rest = r; // explicit version
        }
        // serial, signature algorithm, issuer, validity, subject
        for _ in 0..4 {
            rest = tlv(rest)?.2;
        }
        Some(tlv(rest)?.1)
    }

    /// The first value of attribute `oid` in a Name, as text.
    pub fn attribute(mut name: &[u8], oid: &[u8]) -> Option<String> {
        while !name.is_empty() {
            let (_, set, rest) = tlv(name)?;
            name = rest;
            let (_, seq, _) = tlv(set)?;
            let (_, this_oid, value) = tlv(seq)?;
            if this_oid == oid {
                let (_, text, _) = tlv(value)?;
                return String::from_utf8(text.to_vec()).ok();
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::Authority;

    #[test]
    fn identity_reads_cn_and_ou_of_an_issued_certificate() {
        let ca = Authority::generate("t").unwrap();
        let issued = ca.issue("alice", "operator").unwrap();
        let der = CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).unwrap();
        assert_eq!(
            identity_of(&der),
            Some(Identity {
                name: "alice".into(),
                role: "operator".into()
            })
        );
    }

    #[test]
    fn a_reloaded_ca_issues_certificates_the_original_ca_certificate_verifies() {
        let ca = Authority::generate("t").unwrap();
        let again = Authority::load(&ca.cert_pem(), &ca.key_pem()).unwrap();
        let verify = |issued: crate::pki::Issued| {
            let mut roots = RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_slice(ca.cert_pem().as_bytes()).unwrap())
                .unwrap();
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .unwrap();
            let leaf = CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).unwrap();
            verifier
                .verify_client_cert(&leaf, &[], rustls_pki_types::UnixTime::now())
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        assert_eq!(verify(again.issue("bob", "operator").unwrap()), Ok(()));
        let expired = verify(again.issue_expired("old", "node").unwrap());
        assert!(expired.unwrap_err().contains("xpired"));
    }

    #[test]
    fn identity_of_garbage_is_none_not_a_panic() {
        for bytes in [&b""[..], &[0x30, 0x82, 0xff][..], &[0x30, 0x01, 0x30][..]] {
            assert_eq!(identity_of(&CertificateDer::from(bytes.to_vec())), None);
        }
    }
}
