//! Client identity over HTTP: X-Forwarded-For, X-Forwarded-Proto and
//! Forwarded (RFC 7239), with a trusted-proxy list. A request from a trusted
//! peer keeps its chain and gets the peer appended; from anyone else the
//! incoming headers are dropped and replaced, so a client cannot claim to be
//! someone else. Main types: [`Cidr`], [`TrustedProxies`], [`ClientIdentity`].

use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// An address block such as `10.0.0.0/8` or `::1/128` (a bare address is /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("not an IP address")]
    Address,
    #[error("prefix length must be 0..={max}")]
    Prefix { max: u8 },
}

impl FromStr for Cidr {
    type Err = CidrError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| CidrError::Address)?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.trim().parse::<u8>() {
                Ok(p) if p <= max => p,
                _ => return Err(CidrError::Prefix { max }),
            },
        };
        Ok(Cidr { addr, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

/// `::ffff:a.b.c.d` is the IPv4 client of a dual-stack socket.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    let rest = prefix % 8;
    if a[..full] != b[..full] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    (a[full] & mask) == (b[full] & mask)
}

/// The peers whose forwarding headers we believe.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    pub fn new(cidrs: Vec<Cidr>) -> Self {
        TrustedProxies(cidrs)
    }
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }
}

static XFF: HeaderName = HeaderName::from_static("x-forwarded-for");
static XFP: HeaderName = HeaderName::from_static("x-forwarded-proto");
static FORWARDED: HeaderName = HeaderName::from_static("forwarded");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// One client connection's identity headers, formatted once per connection
/// (keep-alive clients send many requests; formatting the address per
/// request was a tenth of the L7 request path).
pub struct ClientIdentity {
    /// The peer is in the trusted-proxy list: its chain is kept and extended.
    trusted: bool,
    /// The client address as an X-Forwarded-For element.
    xff: Option<HeaderValue>,
    /// The client as an RFC 7239 `Forwarded` element.
    forwarded: Option<HeaderValue>,
    proto: HeaderValue,
}

impl ClientIdentity {
    /// The identity of `client` (the TCP peer, or the source a PROXY header
    /// declared) connected over `proto`.
    pub fn new(client: SocketAddr, proto: &'static str, trusted: &TrustedProxies) -> Self {
        let ip = canonical(client.ip());
        ClientIdentity {
            trusted: trusted.contains(ip),
            xff: HeaderValue::from_str(&ip.to_string()).ok(),
            forwarded: HeaderValue::from_str(&forwarded_element(ip, proto)).ok(),
            proto: HeaderValue::from_static(proto),
        }
    }

    /// Whether an incoming field passes as it is. Identity fields do not:
    /// from a trusted peer they are gathered into `chains` (and written
    /// back extended by [`Self::write_fields`]), from anyone else dropped.
    pub fn keep<'a>(&self, name: &str, value: &'a [u8], chains: &mut Chains<'a>) -> bool {
        if name.eq_ignore_ascii_case(XFF.as_str()) {
            if self.trusted {
                chains.xff.push(value);
            }
        } else if name.eq_ignore_ascii_case(FORWARDED.as_str()) {
            if self.trusted {
                chains.forwarded.push(value);
            }
        } else if name.eq_ignore_ascii_case(XFP.as_str()) {
            if self.trusted && chains.proto.is_none() {
                chains.proto = Some(value);
            }
        } else if name.eq_ignore_ascii_case(X_REAL_IP.as_str()) {
            return self.trusted;
        } else {
            return true;
        }
        false
    }

    /// The identity fields of one request as HTTP/1 header lines: the
    /// gathered chains with this client appended (several incoming lines
    /// fold into one comma-separated value), and the protocol.
    pub fn write_fields(&self, chains: &Chains<'_>, out: &mut Vec<u8>) {
        write_chain(out, &XFF, &chains.xff, self.xff.as_ref());
        write_chain(out, &FORWARDED, &chains.forwarded, self.forwarded.as_ref());
        let proto = chains.proto.unwrap_or(self.proto.as_bytes());
        write_line(out, XFP.as_str(), [proto]);
    }

    /// Rewrite the identity headers of a request held in a `HeaderMap`
    /// (HTTP/2 clients): the same rules as [`Self::keep`] and
    /// [`Self::write_fields`].
    pub fn apply(&self, headers: &mut HeaderMap) {
        let mut chains = Chains::default();
        let mut dropped = Vec::new();
        for (name, value) in headers.iter() {
            if !self.keep(name.as_str(), value.as_bytes(), &mut chains) {
                dropped.push(name.clone());
            }
        }
        let mut lines = Vec::new();
        self.write_fields(&chains, &mut lines);
        for name in dropped {
            headers.remove(name);
        }
        for line in lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
            if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
                headers.append(n, v);
            }
        }
    }
}

/// Identity fields a trusted peer sent, gathered from one request.
#[derive(Debug, Default)]
pub struct Chains<'a> {
    xff: Vec<&'a [u8]>,
    forwarded: Vec<&'a [u8]>,
    proto: Option<&'a [u8]>,
}

/// One RFC 7239 element: IPv6 addresses are quoted and bracketed (§6).
fn forwarded_element(ip: IpAddr, proto: &str) -> String {
    match ip {
        IpAddr::V4(v4) => format!("for={v4};proto={proto}"),
        IpAddr::V6(v6) => format!("for=\"[{v6}]\";proto={proto}"),
    }
}

/// `name: chain..., ours\r\n`, nothing when both are empty.
fn write_chain(out: &mut Vec<u8>, name: &HeaderName, chain: &[&[u8]], ours: Option<&HeaderValue>) {
    let parts = chain
        .iter()
        .map(|v| v.trim_ascii())
        .filter(|v| !v.is_empty())
        .chain(ours.map(HeaderValue::as_bytes));
    write_line(out, name.as_str(), parts);
}

/// `name: part, part, ...\r\n`, nothing without parts.
fn write_line<'a>(out: &mut Vec<u8>, name: &str, parts: impl IntoIterator<Item = &'a [u8]>) {
    let mut parts = parts.into_iter();
    let Some(first) = parts.next() else {
        return;
    };
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(first);
    for p in parts {
        out.extend_from_slice(b", ");
        out.extend_from_slice(p);
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted() -> TrustedProxies {
        TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()])
    }

    #[test]
    fn cidr_matching() {
        let c: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(c.contains("10.1.200.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.0.9".parse().unwrap()));
        let c: Cidr = "192.168.0.0/23".parse().unwrap();
        assert!(c.contains("192.168.1.255".parse().unwrap()));
        assert!(!c.contains("192.168.2.0".parse().unwrap()));
        assert_eq!(
            "1.2.3.4/33".parse::<Cidr>(),
            Err(CidrError::Prefix { max: 32 })
        );
        assert_eq!("x/3".parse::<Cidr>(), Err(CidrError::Address));
        assert!("0.0.0.0/0"
            .parse::<Cidr>()
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
    }

    #[test]
    fn a_trusted_peer_gets_appended_to_the_chain() {
        let mut h = HeaderMap::new();
        h.append(&XFF, "203.0.113.7".parse().unwrap());
        h.append(&XFF, "198.51.100.1".parse().unwrap());
        h.append(&FORWARDED, "for=203.0.113.7;proto=https".parse().unwrap());
        h.append(&XFP, "https".parse().unwrap());
        ClientIdentity::new("10.0.0.5:4000".parse().unwrap(), "http", &trusted()).apply(&mut h);
        assert_eq!(h[&XFF], "203.0.113.7, 198.51.100.1, 10.0.0.5");
        assert_eq!(
            h[&FORWARDED],
            "for=203.0.113.7;proto=https, for=10.0.0.5;proto=http"
        );
        assert_eq!(h[&XFP], "https");
    }

    #[test]
    fn an_untrusted_peer_has_its_claims_replaced() {
        let mut h = HeaderMap::new();
        h.append(&XFF, "1.1.1.1".parse().unwrap());
        h.append(&FORWARDED, "for=1.1.1.1".parse().unwrap());
        h.append(&XFP, "https".parse().unwrap());
        h.append(&X_REAL_IP, "1.1.1.1".parse().unwrap());
        ClientIdentity::new("192.0.2.9:1".parse().unwrap(), "http", &trusted()).apply(&mut h);
        assert_eq!(h[&XFF], "192.0.2.9");
        assert_eq!(h[&FORWARDED], "for=192.0.2.9;proto=http");
        assert_eq!(h[&XFP], "http");
        assert!(!h.contains_key(&X_REAL_IP));
    }

    #[test]
    fn ipv6_clients_are_quoted_in_forwarded() {
        let mut h = HeaderMap::new();
        ClientIdentity::new("[2001:db8::1]:5".parse().unwrap(), "https", &trusted()).apply(&mut h);
        assert_eq!(h[&FORWARDED], "for=\"[2001:db8::1]\";proto=https");
        assert_eq!(h[&XFF], "2001:db8::1");
    }
}
