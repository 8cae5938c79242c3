//! PROXY protocol v1 and v2 (HAProxy's spec), parsed and built with `ppp`:
//! [`read_header`] takes exactly the header off a fresh connection (never a
//! byte of payload) and returns the client address it declares;
//! [`encode`] builds the header we send to backends.

use crate::config::ProxyVersion;
use crate::limits::{PROXY_V1_MAX_BYTES, PROXY_V2_MAX_BYTES};
use std::net::SocketAddr;
use tokio::io::{AsyncRead, AsyncReadExt};

const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

#[derive(Debug, thiserror::Error)]
pub enum ProxyHeaderError {
    #[error("connection closed or failed before a complete PROXY header: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a PROXY protocol header")]
    Missing,
    #[error("PROXY header longer than {0} bytes")]
    TooLong(usize),
    #[error("malformed PROXY v1 header: {0}")]
    V1(String),
    #[error("malformed PROXY v2 header: {0}")]
    V2(String),
}

/// What a PROXY header said: the original client, or `None` for
/// `UNKNOWN`/`LOCAL` (health checks from the proxy itself), in which case the
/// TCP peer stands.
pub type Declared = Option<SocketAddr>;

/// Read one PROXY header (v1 or v2) from the start of `io`.
pub async fn read_header<R: AsyncRead + Unpin>(io: &mut R) -> Result<Declared, ProxyHeaderError> {
    let mut buf = vec![0u8; 16];
    // "PROXY UNKNOWN\r\n" is 15 bytes, the shortest header: read 15 first.
    io.read_exact(&mut buf[..15]).await?;
    if buf.starts_with(b"PROXY ") {
        buf.truncate(15);
        while !buf.ends_with(b"\r\n") {
            if buf.len() >= PROXY_V1_MAX_BYTES {
                return Err(ProxyHeaderError::TooLong(PROXY_V1_MAX_BYTES));
            }
            buf.push(io.read_u8().await?);
        }
        return parse_v1(&buf);
    }
    if buf[..12] != V2_SIGNATURE {
        return Err(ProxyHeaderError::Missing);
    }
    io.read_exact(&mut buf[15..16]).await?;
    let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if 16 + len > PROXY_V2_MAX_BYTES {
        return Err(ProxyHeaderError::TooLong(PROXY_V2_MAX_BYTES));
    }
    buf.resize(16 + len, 0);
    io.read_exact(&mut buf[16..]).await?;
    parse_v2(&buf)
}

fn parse_v1(bytes: &[u8]) -> Result<Declared, ProxyHeaderError> {
    let header =
        ppp::v1::Header::try_from(bytes).map_err(|e| ProxyHeaderError::V1(e.to_string()))?;
    Ok(match header.addresses {
        ppp::v1::Addresses::Unknown => None,
        ppp::v1::Addresses::Tcp4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        ppp::v1::Addresses::Tcp6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
    })
}

fn parse_v2(bytes: &[u8]) -> Result<Declared, ProxyHeaderError> {
    let header =
        ppp::v2::Header::try_from(bytes).map_err(|e| ProxyHeaderError::V2(e.to_string()))?;
    if header.command == ppp::v2::Command::Local {
        return Ok(None);
    }
    Ok(match header.addresses {
        ppp::v2::Addresses::IPv4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        ppp::v2::Addresses::IPv6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        ppp::v2::Addresses::Unspecified | ppp::v2::Addresses::Unix(_) => None,
    })
}

/// The header announcing `client` connected to `local`. Mixed families
/// (an IPv4 client on an IPv6 listener) are sent as v4-mapped IPv6.
pub fn encode(version: ProxyVersion, client: SocketAddr, local: SocketAddr) -> Vec<u8> {
    let (client, local) = same_family(client, local);
    match version {
        ProxyVersion::V1 => {
            let mut line = ppp::v1::Addresses::from((client, local)).to_string();
            if !line.ends_with("\r\n") {
                line.push_str("\r\n");
            }
            line.into_bytes()
        }
        ProxyVersion::V2 => ppp::v2::Builder::with_addresses(
            ppp::v2::Version::Two | ppp::v2::Command::Proxy,
            ppp::v2::Protocol::Stream,
            (client, local),
        )
        .build()
        // Building into a Vec with fixed-size addresses cannot fail.
        .unwrap_or_default(),
    }
}

fn same_family(a: SocketAddr, b: SocketAddr) -> (SocketAddr, SocketAddr) {
    fn v6(s: SocketAddr) -> SocketAddr {
        match s {
            SocketAddr::V4(v4) => SocketAddr::from((v4.ip().to_ipv6_mapped(), v4.port())),
            v6 => v6,
        }
    }
    if a.is_ipv4() == b.is_ipv4() {
        (a, b)
    } else {
        (v6(a), v6(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn roundtrip(v: ProxyVersion, client: &str, local: &str) -> Declared {
        let mut bytes = encode(v, client.parse().unwrap(), local.parse().unwrap());
        bytes.extend_from_slice(b"GET / HTTP/1.1\r\n");
        let mut cursor = std::io::Cursor::new(bytes);
        let declared = read_header(&mut cursor).await.unwrap();
        let mut rest = String::new();
        cursor.read_to_string(&mut rest).await.unwrap();
        assert_eq!(rest, "GET / HTTP/1.1\r\n", "payload must be untouched");
        declared
    }

    #[tokio::test]
    async fn v1_and_v2_round_trip_without_eating_payload() {
        for v in [ProxyVersion::V1, ProxyVersion::V2] {
            assert_eq!(
                roundtrip(v, "192.0.2.1:5555", "10.0.0.1:80").await,
                Some("192.0.2.1:5555".parse().unwrap())
            );
            assert_eq!(
                roundtrip(v, "[2001:db8::2]:7", "[::1]:443").await,
                Some("[2001:db8::2]:7".parse().unwrap())
            );
        }
    }

    #[tokio::test]
    async fn unknown_and_garbage() {
        let mut c = std::io::Cursor::new(b"PROXY UNKNOWN\r\nxyz".to_vec());
        assert_eq!(read_header(&mut c).await.unwrap(), None);
        let mut c = std::io::Cursor::new(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec());
        assert!(matches!(
            read_header(&mut c).await,
            Err(ProxyHeaderError::Missing)
        ));
        let mut c = std::io::Cursor::new(b"PROXY TCP4 1.2.3.4 nonsense\r\n".to_vec());
        assert!(matches!(
            read_header(&mut c).await,
            Err(ProxyHeaderError::V1(_))
        ));
        let mut long = b"PROXY TCP4 ".to_vec();
        long.extend(std::iter::repeat_n(b'1', 200));
        let mut c = std::io::Cursor::new(long);
        assert!(matches!(
            read_header(&mut c).await,
            Err(ProxyHeaderError::TooLong(_))
        ));
        let mut c = std::io::Cursor::new(b"PROXY TCP4".to_vec());
        assert!(matches!(
            read_header(&mut c).await,
            Err(ProxyHeaderError::Io(_))
        ));
    }
}
