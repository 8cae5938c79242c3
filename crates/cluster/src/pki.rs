//! Certificates for a cluster: one CA per cluster, one certificate per node
//! and per operator, signed by it (rcgen). A certificate's CN names its
//! holder; its OU names its role (`node`, `admin`, `operator`, `read-only`).

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::pem::PemObject;

/// The DNS name every node certificate carries; clients verify it, so a
/// node can be reached at any address.
pub const SERVER_NAME: &str = "tandem-node";

/// Why a certificate could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot generate certificate for {what}: {source}{detail}")]
pub struct PkiError {
    what: String,
    source: rcgen::Error,
    detail: String,
}

impl PkiError {
    fn with_detail(mut self, detail: impl std::fmt::Display) -> PkiError {
        self.detail = format!(" ({detail})");
        self
    }
}

/// A PEM certificate and its PEM private key.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A cluster certificate authority held in memory while issuing.
pub struct Authority {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Authority {
    /// A new CA for the cluster `name`.
    pub fn generate(name: &str) -> Result<Authority, PkiError> {
        let err = |source| PkiError {
            what: format!("cluster CA {name}"),
            source,
            detail: String::new(),
        };
        let mut params = CertificateParams::new(Vec::new()).map_err(err)?;
        params.distinguished_name = dn(&format!("tandem CA {name}"), "ca");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().map_err(err)?;
        let cert = params.self_signed(&key).map_err(err)?;
        Ok(Authority { cert, key })
    }

    /// The CA again from its certificate and its kept private key (`tandem
    /// cluster cert`, joins). rcgen cannot re-read a certificate without
    /// x509-parser, so the CA certificate is re-signed with the same key and
    /// subject: what it issues verifies against the original, since a
    /// verifier matches the issuer by subject and checks the signature with
    /// the key.
    pub fn load(cert_pem: &str, key_pem: &str) -> Result<Authority, PkiError> {
        let err = |source| PkiError {
            what: "the cluster CA (ca.pem, ca.key)".into(),
            source,
            detail: String::new(),
        };
        let der = rustls_pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| err(rcgen::Error::CouldNotParseCertificate).with_detail(e))?;
        let id = crate::tls::identity_of(&der)
            .ok_or_else(|| err(rcgen::Error::CouldNotParseCertificate))?;
        let key = KeyPair::from_pem(key_pem).map_err(err)?;
        let mut params = CertificateParams::new(Vec::new()).map_err(err)?;
        params.distinguished_name = dn(&id.name, &id.role);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).map_err(err)?;
        Ok(Authority { cert, key })
    }

    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// The CA's private key, kept beside `ca.pem` so certificates can be
    /// issued later (`tandem cluster cert`, joins).
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// Issues a certificate for `cn` with role `ou`, valid until year 4096.
    pub fn issue(&self, cn: &str, ou: &str) -> Result<Issued, PkiError> {
        self.issue_with(cn, ou, false)
    }

    /// Issues a certificate that expired in 2021 (for tests of refusal).
    pub fn issue_expired(&self, cn: &str, ou: &str) -> Result<Issued, PkiError> {
        self.issue_with(cn, ou, true)
    }

    fn issue_with(&self, cn: &str, ou: &str, expired: bool) -> Result<Issued, PkiError> {
        let err = |source| PkiError {
            what: format!("{cn} ({ou})"),
            source,
            detail: String::new(),
        };
        let sans = vec![SERVER_NAME.to_string(), "localhost".to_string()];
        let mut params = CertificateParams::new(sans).map_err(err)?;
        params.distinguished_name = dn(cn, ou);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().map_err(err)?;
        let cert = params.signed_by(&key, &self.cert, &self.key).map_err(err)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn dn(cn: &str, ou: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn.push(DnType::OrganizationalUnitName, ou);
    dn
}
