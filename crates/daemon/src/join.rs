//! Joining with a one-time token (`tandem cluster init` / `cluster join`):
//! the init node keeps the cluster CA key and a tokens file, and serves
//! joins on its own TLS port ([`serve`]). A joining node has no
//! certificate yet, so this port asks for none; instead:
//!
//! * the token is `SECRET.CAFINGERPRINT@HOST:PORT`: the joiner accepts the
//!   server only if it presents, after its certificate, the CA whose SHA-256
//!   is CAFINGERPRINT and its certificate verifies against that CA
//!   ([`CaPinned`]), so the secret is never sent to an impostor;
//! * the server keeps only the SHA-256 of each secret, marks a token used
//!   before it issues anything, and refuses a used or unknown one with a
//!   log line and a clear answer.
//!
//! The answer carries the CA certificate, a node certificate and key, and
//! the node's settings file prepared by `init`. Nodes added later come
//! from `tandem node add` (`crates/cli/src/cmd/members.rs`).

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tandem_cluster::{Authority, TlsFiles};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio_rustls::rustls::{self, pki_types};

/// Largest join request or answer line.
const MAX_LINE_BYTES: u64 = 64 << 10;
/// A join that takes longer than this is dropped.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the init node serves joins, in its settings file (`[join]`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinFiles {
    pub listen: SocketAddr,
    /// The cluster CA's private key.
    pub ca_key: PathBuf,
    /// The tokens file (hashes only).
    pub tokens: PathBuf,
}

/// The tokens file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Tokens {
    #[serde(default, rename = "token")]
    pub tokens: Vec<TokenEntry>,
}

/// One token: who may join with it and the settings it hands out.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenEntry {
    /// Hex SHA-256 of the secret.
    pub hash: String,
    pub node: String,
    pub used: bool,
    /// The joining node's settings file (TOML), paths relative to it.
    pub settings: String,
}

/// What a successful join receives.
#[derive(Serialize, Deserialize)]
pub struct JoinAnswer {
    pub node: String,
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
    pub settings: String,
}

#[derive(Serialize, Deserialize)]
struct JoinRequest {
    secret: String,
}

/// Why a join failed.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("{0:?} is not a join token (expected SECRET.CAFINGERPRINT@HOST:PORT from `tandem cluster init`)")]
    BadToken(String),
    #[error("cannot reach {addr}: {detail}")]
    Connect { addr: String, detail: String },
    #[error("join refused by {addr}: {reason}")]
    Refused { addr: String, reason: String },
}

/// A new random token secret and its hash.
pub fn new_secret() -> Result<(String, String), String> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| "no randomness for a join token".to_string())?;
    let secret = hex(&bytes);
    Ok((hash(&secret), secret))
}

/// The token a joiner types: secret, CA fingerprint, join address.
pub fn token(secret: &str, ca_pem: &str, addr: SocketAddr) -> Result<String, String> {
    Ok(format!("{secret}.{}@{addr}", fingerprint(ca_pem)?))
}

/// Hex SHA-256 of a PEM certificate's DER.
pub fn fingerprint(ca_pem: &str) -> Result<String, String> {
    use pki_types::pem::PemObject;
    let der = pki_types::CertificateDer::from_pem_slice(ca_pem.as_bytes())
        .map_err(|e| format!("CA certificate: {e}"))?;
    Ok(sha256(der.as_ref()))
}

fn hash(secret: &str) -> String {
    sha256(secret.as_bytes())
}

fn sha256(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Serves joins on `files.listen` until the task is dropped.
pub async fn serve(files: JoinFiles, tls: TlsFiles) {
    let listener = match tokio::net::TcpListener::bind(files.listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("cannot serve joins on {}: {e}", files.listen);
            return;
        }
    };
    let config = match server_config(&tls) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("cannot serve joins: {e}");
            return;
        }
    };
    tracing::info!(addr = %files.listen, "serving joins with one-time tokens");
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    // One join at a time: consuming a token is a read-modify-write of a file.
    let lock = Arc::new(tokio::sync::Mutex::new(()));
    loop {
        let Ok((tcp, peer)) = listener.accept().await else {
            continue;
        };
        let (acceptor, files, tls, lock) =
            (acceptor.clone(), files.clone(), tls.clone(), lock.clone());
        tokio::spawn(async move {
            let _one = lock.lock().await;
            let served = tokio::time::timeout(JOIN_TIMEOUT, async {
                let mut stream = acceptor
                    .accept(tcp)
                    .await
                    .map_err(|e| format!("TLS handshake failed: {e}"))?;
                let line = read_line(&mut stream).await.map_err(|e| e.to_string())?;
                let answer = match serde_json::from_str::<JoinRequest>(&line) {
                    Ok(req) => admit(&files, &tls, &req.secret),
                    Err(e) => Err(format!("bad request: {e}")),
                };
                let reply = match &answer {
                    Ok(a) => serde_json::json!({ "ok": a }),
                    Err(reason) => serde_json::json!({ "error": reason }),
                };
                stream
                    .write_all(format!("{reply}\n").as_bytes())
                    .await
                    .map_err(|e| e.to_string())?;
                let _ = stream.shutdown().await;
                answer.map(|a| a.node)
            })
            .await
            .unwrap_or_else(|_| Err("timed out".into()));
            match served {
                Ok(node) => tracing::info!(%peer, "node {node} joined with its one-time token"),
                Err(reason) => tracing::warn!(%peer, "refused join from {peer}: {reason}"),
            }
        });
    }
}

/// One bounded line of the join exchange.
async fn read_line(stream: impl AsyncRead + Unpin) -> std::io::Result<String> {
    let mut line = String::new();
    BufReader::new(stream.take(MAX_LINE_BYTES))
        .read_line(&mut line)
        .await?;
    Ok(line)
}

/// Checks and consumes the token, then issues the node's certificate.
fn admit(files: &JoinFiles, tls: &TlsFiles, secret: &str) -> Result<JoinAnswer, String> {
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    let mut tokens: Tokens = toml::from_str(&read(&files.tokens)?)
        .map_err(|e| format!("{}: {e}", files.tokens.display()))?;
    let wanted = hash(secret);
    let Some(entry) = tokens.tokens.iter_mut().find(|t| t.hash == wanted) else {
        return Err("unknown token (not issued by this cluster's init node)".into());
    };
    if entry.used {
        return Err(format!("token already used (by node {}); tokens are one-time: issue a new one with `tandem cluster init`", entry.node));
    }
    entry.used = true;
    let entry = entry.clone();
    // Marked used on disk before anything is issued, so a crash cannot reuse it.
    let tmp = files.tokens.with_extension("tmp");
    std::fs::write(
        &tmp,
        toml::to_string_pretty(&tokens).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, &files.tokens).map_err(|e| e.to_string())?;
    let ca_pem = read(&tls.ca)?;
    let ca = Authority::load(&ca_pem, &read(&files.ca_key)?).map_err(|e| e.to_string())?;
    let issued = ca.issue(&entry.node, "node").map_err(|e| e.to_string())?;
    Ok(JoinAnswer {
        node: entry.node,
        ca_pem,
        cert_pem: issued.cert_pem,
        key_pem: issued.key_pem,
        settings: entry.settings,
    })
}

/// The join port presents the node certificate followed by the CA, so a
/// joiner can pin the CA by fingerprint; it asks for no client certificate.
fn server_config(tls: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, String> {
    use pki_types::pem::PemObject;
    let mut chain: Vec<pki_types::CertificateDer<'static>> = Vec::new();
    for path in [&tls.cert, &tls.ca] {
        let certs = pki_types::CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        for c in certs {
            chain.push(c.map_err(|e| format!("{}: {e}", path.display()))?);
        }
    }
    let key = pki_types::PrivateKeyDer::from_pem_file(&tls.key)
        .map_err(|e| format!("{}: {e}", tls.key.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(config))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Joins with `token`: pins the CA, sends the secret, returns the answer.
pub async fn join(token: &str) -> Result<JoinAnswer, JoinError> {
    let bad = || JoinError::BadToken(token.to_string());
    let (secret_fp, addr) = token.split_once('@').ok_or_else(bad)?;
    let (secret, fp) = secret_fp.split_once('.').ok_or_else(bad)?;
    if secret.len() != 32 || fp.len() != 64 {
        return Err(bad());
    }
    let connect = |detail: String| JoinError::Connect {
        addr: addr.to_string(),
        detail,
    };
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| connect(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(CaPinned {
            fingerprint: fp.to_string(),
        }))
        .with_no_client_auth();
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| connect(e.to_string()))?;
        let mut stream = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(tandem_cluster::server_name(), tcp)
            .await
            .map_err(|e| connect(format!("not the cluster in the token: {e}")))?;
        let request = serde_json::json!({ "secret": secret });
        stream
            .write_all(format!("{request}\n").as_bytes())
            .await
            .map_err(|e| connect(e.to_string()))?;
        let line = read_line(&mut stream)
            .await
            .map_err(|e| connect(e.to_string()))?;
        let reply: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| connect(format!("bad answer: {e}")))?;
        if let Some(reason) = reply["error"].as_str() {
            return Err(JoinError::Refused {
                addr: addr.to_string(),
                reason: reason.to_string(),
            });
        }
        serde_json::from_value(reply["ok"].clone()).map_err(|e| connect(format!("bad answer: {e}")))
    };
    tokio::time::timeout(JOIN_TIMEOUT, attempt)
        .await
        .map_err(|_| connect("timed out".into()))?
}

/// Accepts a server whose chain carries the CA with the pinned SHA-256 and
/// whose certificate that CA signed.
#[derive(Debug)]
struct CaPinned {
    fingerprint: String,
}

impl rustls::client::danger::ServerCertVerifier for CaPinned {
    fn verify_server_cert(
        &self,
        end_entity: &pki_types::CertificateDer<'_>,
        intermediates: &[pki_types::CertificateDer<'_>],
        server_name: &pki_types::ServerName<'_>,
        ocsp: &[u8],
        now: pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let ca = intermediates
            .iter()
            .find(|c| sha256(c.as_ref()) == self.fingerprint)
            .ok_or_else(|| {
                rustls::Error::General(
                    "the server does not present the cluster CA named in the token".into(),
                )
            })?;
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(ca.clone().into_owned())
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            provider(),
        )
        .build()
        .map_err(|e| rustls::Error::General(e.to_string()))?;
        verifier.verify_server_cert(end_entity, &[], server_name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
