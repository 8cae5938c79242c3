//! HTTP/1.1 message framing for the L7 proxy (RFC 9112), on raw bytes: the
//! head of a request or response is parsed in place (httparse) and judged
//! here (body length, keep-alive, upgrade, what to strip); bodies are
//! followed by [`BodyCursor`], which forwards bytes as they are (or without
//! the chunked coding, for HTTP/1.0 clients) and says where the message
//! ends. Nothing here does I/O. Main types: [`RequestHead`],
//! [`ResponseHead`], [`BodyCursor`].
//!
//! Strict where leniency lets two parsers disagree (request smuggling):
//! differing Content-Length values, a Transfer-Encoding that does not end in
//! chunked, a chunk size that is not hex, and missing CRLFs are errors.

use std::fmt;

/// Header lines a head may carry; more get a 431.
pub const MAX_HEADERS: usize = 128;

/// Why a message cannot be forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramingError {
    /// The head is not HTTP/1.x (httparse's reason).
    Head(&'static str),
    /// More header lines than [`MAX_HEADERS`].
    TooManyHeaders,
    /// Content-Length that is not a number, or several that differ.
    ContentLength,
    /// A request Transfer-Encoding whose last coding is not chunked.
    TransferEncoding,
    /// Malformed chunked coding.
    Chunk(&'static str),
}

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FramingError::Head(why) => write!(f, "malformed head: {why}"),
            FramingError::TooManyHeaders => write!(f, "more than {MAX_HEADERS} header lines"),
            FramingError::ContentLength => write!(f, "invalid or conflicting Content-Length"),
            FramingError::TransferEncoding => {
                write!(f, "Transfer-Encoding does not end in chunked")
            }
            FramingError::Chunk(why) => write!(f, "malformed chunked body: {why}"),
        }
    }
}

impl std::error::Error for FramingError {}

impl From<httparse::Error> for FramingError {
    fn from(e: httparse::Error) -> Self {
        match e {
            httparse::Error::TooManyHeaders => FramingError::TooManyHeaders,
            httparse::Error::HeaderName => FramingError::Head("invalid header name"),
            httparse::Error::HeaderValue => FramingError::Head("invalid header value"),
            httparse::Error::NewLine => FramingError::Head("invalid line ending"),
            httparse::Error::Status => FramingError::Head("invalid status"),
            httparse::Error::Token => FramingError::Head("invalid token"),
            httparse::Error::Version => FramingError::Head("invalid version"),
        }
    }
}

/// How a message body is delimited (RFC 9112 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body at all.
    Empty,
    Length(u64),
    Chunked,
    /// Responses only: the body runs until the backend closes.
    UntilClose,
}

/// What a head's connection-level fields say, gathered in one pass.
#[derive(Debug, Default)]
struct Fields {
    content_length: Option<u64>,
    /// Transfer-Encoding present, and whether its last coding is chunked.
    transfer_encoding: Option<bool>,
    /// Connection: close / keep-alive / upgrade tokens.
    close: bool,
    keep_alive: bool,
    upgrade_token: bool,
    has_upgrade: bool,
    has_host: bool,
    expect_continue: bool,
}

fn fields(headers: &[httparse::Header<'_>]) -> Result<Fields, FramingError> {
    let mut f = Fields::default();
    for h in headers {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            // Several lines or a list are fine only when they all agree.
            for v in h.value.split(|&b| b == b',') {
                let n = parse_decimal(trim(v)).ok_or(FramingError::ContentLength)?;
                if f.content_length.is_some_and(|old| old != n) {
                    return Err(FramingError::ContentLength);
                }
                f.content_length = Some(n);
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            let last = h
                .value
                .split(|&b| b == b',')
                .map(trim)
                .rfind(|c| !c.is_empty());
            // A later line's codings follow an earlier line's.
            if let Some(last) = last {
                f.transfer_encoding = Some(last.eq_ignore_ascii_case(b"chunked"));
            }
        } else if name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',').map(trim) {
                f.close |= token.eq_ignore_ascii_case(b"close");
                f.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                f.upgrade_token |= token.eq_ignore_ascii_case(b"upgrade");
            }
        } else if name.eq_ignore_ascii_case("upgrade") {
            f.has_upgrade = true;
        } else if name.eq_ignore_ascii_case("host") {
            f.has_host = true;
        } else if name.eq_ignore_ascii_case("expect") {
            f.expect_continue = trim(h.value).eq_ignore_ascii_case(b"100-continue");
        }
    }
    Ok(f)
}

fn trim(v: &[u8]) -> &[u8] {
    v.trim_ascii()
}

fn parse_decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 {
        return None;
    }
    v.iter().try_fold(0u64, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
    })
}

/// A parsed request head, borrowing the client's buffer.
pub struct RequestHead<'b, 'h> {
    pub method: &'b str,
    pub target: &'b str,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    pub headers: &'h [httparse::Header<'b>],
    /// Bytes of the head, body excluded.
    pub len: usize,
    pub framing: Framing,
    /// The one length the Content-Length fields agree on (unless chunked):
    /// the relay writes it anew instead of passing the fields on.
    pub content_length: Option<u64>,
    /// The client wants the connection kept after this exchange.
    pub keep_alive: bool,
    /// `Upgrade` with `Connection: upgrade` (WebSocket and friends).
    pub upgrade: bool,
    pub has_host: bool,
    pub expect_continue: bool,
}

/// Parse a request head from `buf`. `Ok(None)`: not all of it is there yet.
pub fn parse_request<'b, 'h>(
    buf: &'b [u8],
    storage: &'h mut [httparse::Header<'b>; MAX_HEADERS],
) -> Result<Option<RequestHead<'b, 'h>>, FramingError> {
    let mut req = httparse::Request::new(storage);
    let len = match req.parse(buf)? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return Ok(None),
    };
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(FramingError::Head("incomplete request line"));
    };
    let headers: &'h [httparse::Header<'b>] = req.headers;
    let f = fields(headers)?;
    let framing = match (f.transfer_encoding, f.content_length) {
        (Some(true), _) => Framing::Chunked,
        // A request body must be delimited; "gzip" alone cannot be.
        (Some(false), _) => return Err(FramingError::TransferEncoding),
        (None, Some(0)) | (None, None) => Framing::Empty,
        (None, Some(n)) => Framing::Length(n),
    };
    // Both Transfer-Encoding and Content-Length: relayed as chunked without
    // the length, and the connection closes afterwards (RFC 9112 §6.1).
    let conflicting_lengths = f.transfer_encoding.is_some() && f.content_length.is_some();
    // HTTP/1.0 has no transfer codings: after one, the framing cannot be
    // trusted for a next request (RFC 9112 §6.1).
    let keep_alive = if minor == 0 {
        f.keep_alive && f.transfer_encoding.is_none()
    } else {
        !f.close
    };
    Ok(Some(RequestHead {
        method,
        target,
        minor,
        headers,
        len,
        framing,
        content_length: f.content_length.filter(|_| framing != Framing::Chunked),
        keep_alive: keep_alive && !conflicting_lengths,
        upgrade: f.has_upgrade && f.upgrade_token,
        has_host: f.has_host,
        expect_continue: f.expect_continue && minor == 1,
    }))
}

/// A parsed response head, borrowing the backend's buffer.
pub struct ResponseHead<'b, 'h> {
    pub code: u16,
    pub reason: &'b str,
    pub minor: u8,
    pub headers: &'h [httparse::Header<'b>],
    pub len: usize,
    pub framing: Framing,
    /// The one length the Content-Length fields agree on, unless a transfer
    /// coding overrides it (also for HEAD and 304, where it describes the
    /// body not sent).
    pub content_length: Option<u64>,
    /// The backend keeps the connection after this response.
    pub reusable: bool,
}

impl ResponseHead<'_, '_> {
    /// 1xx other than 101: an interim response, the final one follows.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.code) && self.code != 101
    }
}

/// Parse a response head to a request made with `method`.
pub fn parse_response<'b, 'h>(
    buf: &'b [u8],
    storage: &'h mut [httparse::Header<'b>; MAX_HEADERS],
    head_request: bool,
) -> Result<Option<ResponseHead<'b, 'h>>, FramingError> {
    let mut resp = httparse::Response::new(storage);
    let len = match resp.parse(buf)? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return Ok(None),
    };
    let (Some(code), Some(minor)) = (resp.code, resp.version) else {
        return Err(FramingError::Head("incomplete status line"));
    };
    let reason = resp.reason.unwrap_or("");
    let headers: &'h [httparse::Header<'b>] = resp.headers;
    let f = fields(headers)?;
    // RFC 9112 §6.3, in its order.
    let framing = if head_request || (100..200).contains(&code) || code == 204 || code == 304 {
        Framing::Empty
    } else {
        match (f.transfer_encoding, f.content_length) {
            (Some(true), _) => Framing::Chunked,
            (Some(false), _) => Framing::UntilClose,
            (None, Some(n)) => Framing::Length(n),
            (None, None) => Framing::UntilClose,
        }
    };
    let keeps = if minor == 0 { f.keep_alive } else { !f.close };
    Ok(Some(ResponseHead {
        code,
        reason,
        minor,
        headers,
        len,
        content_length: f.content_length.filter(|_| f.transfer_encoding.is_none()),
        reusable: keeps
            && framing != Framing::UntilClose
            && !(f.transfer_encoding.is_some() && f.content_length.is_some()),
        framing,
    }))
}

/// Headers that describe one hop, never forwarded (RFC 9110 §7.6.1), by
/// position: the proxy writes its own framing and connection fields.
pub const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Position of `name` in [`HOP_BY_HOP`], any case.
pub fn hop_by_hop_index(name: &str) -> Option<usize> {
    HOP_BY_HOP.iter().position(|h| h.eq_ignore_ascii_case(name))
}

/// Header names a head's Connection fields list (they are hop-by-hop too),
/// from its (name, value) fields; the usual options, which name no header,
/// are left out, and so are the fields the relay itself frames by: a peer
/// that could drop Content-Length, Transfer-Encoding or Host would
/// desynchronise the next hop.
pub fn connection_listed<'b>(
    fields: impl IntoIterator<Item = (&'b str, &'b [u8])>,
) -> Vec<&'b [u8]> {
    const NEVER: [&[u8]; 6] = [
        b"close",
        b"keep-alive",
        b"upgrade",
        b"content-length",
        b"transfer-encoding",
        b"host",
    ];
    let mut listed = Vec::new();
    for (name, value) in fields {
        if name.eq_ignore_ascii_case("connection") {
            listed.extend(
                value
                    .split(|&b| b == b',')
                    .map(trim)
                    .filter(|t| !t.is_empty() && !NEVER.iter().any(|k| t.eq_ignore_ascii_case(k))),
            );
        }
    }
    listed
}

/// Where a body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading the hex size; the value so far and its digit count.
    Size(u64, u8),
    /// After the size: extensions until CR.
    Extension(u64),
    SizeLf(u64),
    Data(u64),
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final CRLF).
    TrailerStart,
    TrailerLine,
    TrailerLf,
    EndLf,
}

/// Follows one body through the bytes that carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyCursor {
    state: BodyState,
    /// Bytes of chunk extensions and trailers seen: bounded like a head.
    meta_bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyState {
    Length(u64),
    Chunked(Chunk),
    UntilClose,
    Done,
}

/// Longest chunk size line and trailer section we follow.
const MAX_CHUNK_META_BYTES: usize = 16 * 1024;

impl BodyCursor {
    pub fn new(framing: Framing) -> Self {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => BodyState::Done,
            Framing::Length(n) => BodyState::Length(n),
            Framing::Chunked => BodyState::Chunked(Chunk::Size(0, 0)),
            Framing::UntilClose => BodyState::UntilClose,
        };
        BodyCursor {
            state,
            meta_bytes: 0,
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == BodyState::Done
    }

    /// The body runs until the sender closes.
    pub fn until_close(&self) -> bool {
        self.state == BodyState::UntilClose
    }

    /// The sender closed: fine only where the close is the delimiter.
    pub fn close(&mut self) -> bool {
        if self.state == BodyState::UntilClose {
            self.state = BodyState::Done;
        }
        self.is_done()
    }

    /// Take this body's bytes from the front of `input`, appending them to
    /// `out` (only the chunk data when `dechunk`). Returns how many bytes of
    /// `input` belong to the body; fewer than `input.len()` only when the
    /// body ended.
    pub fn take(
        &mut self,
        input: &[u8],
        dechunk: bool,
        out: &mut Vec<u8>,
    ) -> Result<usize, FramingError> {
        match self.state {
            BodyState::Done => Ok(0),
            BodyState::UntilClose => {
                out.extend_from_slice(input);
                Ok(input.len())
            }
            BodyState::Length(left) => {
                let n = usize::try_from(left).map_or(input.len(), |l| l.min(input.len()));
                out.extend_from_slice(&input[..n]);
                let left = left - n as u64;
                self.state = if left == 0 {
                    BodyState::Done
                } else {
                    BodyState::Length(left)
                };
                Ok(n)
            }
            BodyState::Chunked(c) => self.take_chunked(c, input, dechunk, out),
        }
    }

    fn take_chunked(
        &mut self,
        mut c: Chunk,
        input: &[u8],
        dechunk: bool,
        out: &mut Vec<u8>,
    ) -> Result<usize, FramingError> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            if let Chunk::Data(left) = c {
                let n = usize::try_from(left).map_or(input.len() - i, |l| l.min(input.len() - i));
                if dechunk {
                    out.extend_from_slice(&input[i..i + n]);
                }
                i += n;
                let left = left - n as u64;
                c = if left == 0 {
                    Chunk::DataCr
                } else {
                    Chunk::Data(left)
                };
                continue;
            }
            self.meta_bytes += 1;
            if self.meta_bytes > MAX_CHUNK_META_BYTES {
                return Err(FramingError::Chunk("chunk lines or trailers too long"));
            }
            c = match (c, b) {
                (Chunk::Size(n, digits), _) if b.is_ascii_hexdigit() => {
                    if digits >= 15 {
                        return Err(FramingError::Chunk("chunk size too large"));
                    }
                    let d = (b as char).to_digit(16).unwrap_or(0);
                    Chunk::Size(n << 4 | u64::from(d), digits + 1)
                }
                (Chunk::Size(_, 0), _) => return Err(FramingError::Chunk("chunk size not hex")),
                (Chunk::Size(n, _), b'\r') => Chunk::SizeLf(n),
                (Chunk::Size(n, _), b';' | b' ' | b'\t') => Chunk::Extension(n),
                (Chunk::Size(..), _) => return Err(FramingError::Chunk("chunk size not hex")),
                (Chunk::Extension(n), b'\r') => Chunk::SizeLf(n),
                (Chunk::Extension(_), b'\n') => {
                    return Err(FramingError::Chunk("bare LF in chunk line"))
                }
                (Chunk::Extension(n), _) => Chunk::Extension(n),
                (Chunk::SizeLf(0), b'\n') => Chunk::TrailerStart,
                (Chunk::SizeLf(n), b'\n') => Chunk::Data(n),
                (Chunk::DataCr, b'\r') => Chunk::DataLf,
                (Chunk::DataLf, b'\n') => Chunk::Size(0, 0),
                (Chunk::TrailerStart, b'\r') => Chunk::EndLf,
                (Chunk::TrailerLine, b'\r') => Chunk::TrailerLf,
                (Chunk::TrailerStart | Chunk::TrailerLine, b'\n') => {
                    return Err(FramingError::Chunk("bare LF in trailer"))
                }
                (Chunk::TrailerStart | Chunk::TrailerLine, _) => Chunk::TrailerLine,
                (Chunk::TrailerLf, b'\n') => Chunk::TrailerStart,
                (Chunk::EndLf, b'\n') => {
                    i += 1;
                    if !dechunk {
                        out.extend_from_slice(&input[..i]);
                    }
                    self.state = BodyState::Done;
                    return Ok(i);
                }
                // Data was consumed above; any other byte here breaks the coding.
                (
                    Chunk::SizeLf(_)
                    | Chunk::DataCr
                    | Chunk::DataLf
                    | Chunk::TrailerLf
                    | Chunk::EndLf
                    | Chunk::Data(_),
                    _,
                ) => return Err(FramingError::Chunk("missing CRLF")),
            };
            i += 1;
        }
        if !dechunk {
            out.extend_from_slice(input);
        }
        self.state = BodyState::Chunked(c);
        Ok(input.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(text: &str) -> Result<Option<(Framing, bool)>, FramingError> {
        let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
        parse_request(text.as_bytes(), &mut storage).map(|h| h.map(|h| (h.framing, h.keep_alive)))
    }

    #[test]
    fn request_framing_and_keep_alive() {
        assert_eq!(
            request("GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
            Ok(Some((Framing::Empty, true)))
        );
        assert_eq!(request("GET / HTTP/1.1\r\nHost: a\r\n"), Ok(None));
        assert_eq!(
            request("GET / HTTP/1.0\r\n\r\n"),
            Ok(Some((Framing::Empty, false)))
        );
        assert_eq!(
            request("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"),
            Ok(Some((Framing::Empty, true)))
        );
        assert_eq!(
            request("POST / HTTP/1.1\r\nConnection: close\r\nContent-Length: 7\r\n\r\n"),
            Ok(Some((Framing::Length(7), false)))
        );
        assert_eq!(
            request("POST / HTTP/1.1\r\nContent-Length: 7, 7\r\nContent-Length: 7\r\n\r\n"),
            Ok(Some((Framing::Length(7), true)))
        );
        assert_eq!(
            request(
                "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
            ),
            Ok(Some((Framing::Chunked, true)))
        );
        // Both: chunked wins and the connection may not be kept.
        assert_eq!(
            request("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Ok(Some((Framing::Chunked, false)))
        );
        for bad in [
            "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
        ] {
            assert_eq!(
                request(bad).err(),
                Some(FramingError::ContentLength),
                "{bad}"
            );
        }
        assert_eq!(
            request("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n").err(),
            Some(FramingError::TransferEncoding)
        );
        assert!(matches!(
            request("GET / HTTP/2.0\r\n\r\n"),
            Err(FramingError::Head(_))
        ));
        let many = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "A: b\r\n".repeat(MAX_HEADERS + 1)
        );
        assert_eq!(request(&many).err(), Some(FramingError::TooManyHeaders));
    }

    fn response(text: &str, head: bool) -> (Framing, bool) {
        let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let h = parse_response(text.as_bytes(), &mut storage, head)
            .unwrap()
            .unwrap();
        (h.framing, h.reusable)
    }

    #[test]
    fn response_framing_follows_rfc_9112_order() {
        let cl = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
        assert_eq!(response(cl, false), (Framing::Length(5), true));
        assert_eq!(response(cl, true), (Framing::Empty, true), "HEAD");
        assert_eq!(
            response(
                "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
                false
            )
            .0,
            Framing::Empty
        );
        assert_eq!(
            response("HTTP/1.1 204 No Content\r\n\r\n", false),
            (Framing::Empty, true)
        );
        assert_eq!(
            response("HTTP/1.1 200 OK\r\n\r\n", false),
            (Framing::UntilClose, false)
        );
        assert_eq!(
            response(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
                false
            ),
            (Framing::Chunked, false)
        );
        assert!(!response("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", false).1);
    }

    /// Feed `body` to a cursor in pieces of `step` bytes.
    fn follow(
        framing: Framing,
        body: &[u8],
        step: usize,
        dechunk: bool,
    ) -> Result<(Vec<u8>, usize), FramingError> {
        let mut cursor = BodyCursor::new(framing);
        let mut out = Vec::new();
        let mut used = 0;
        for piece in body.chunks(step) {
            let n = cursor.take(piece, dechunk, &mut out)?;
            used += n;
            if cursor.is_done() {
                return Ok((out, used));
            }
            assert_eq!(n, piece.len(), "consumed less without ending");
        }
        Err(FramingError::Chunk("body did not end"))
    }

    #[test]
    fn chunked_bodies_end_where_they_end_in_any_split() {
        let body = b"3;ext=\"x\"\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nTrailer: v\r\n\r\nNEXT";
        let end = body.len() - 4;
        for step in [1, 2, 3, 7, body.len()] {
            let (raw, used) = follow(Framing::Chunked, body, step, false).unwrap();
            assert_eq!(used, end, "the body ends before NEXT, step {step}");
            assert_eq!(&raw[..], &body[..end], "verbatim, step {step}");
            let (data, _) = follow(Framing::Chunked, body, step, true).unwrap();
            assert_eq!(&data[..], b"abc0123456789abcdef", "dechunked, step {step}");
        }
        let (out, used) = follow(Framing::Length(4), b"abcdef", 3, false).unwrap();
        assert_eq!((&out[..], used), (&b"abcd"[..], 4));
    }

    #[test]
    fn malformed_chunks_are_errors() {
        for bad in [
            &b"x\r\n"[..],
            b"3\r\nabcX\r\n",
            b"3\nabc\r\n",
            b"3;a\nabc",
            b"fffffffffffffffff\r\n",
            b"0\r\nTrailer: v\n",
        ] {
            assert!(
                matches!(
                    follow(Framing::Chunked, bad, 1, false),
                    Err(FramingError::Chunk(_))
                ),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    /// Mutated heads and bodies: parsing never panics, and where a chunked
    /// body ends (or why it is refused) does not depend on how its bytes
    /// were split across reads.
    #[test]
    fn mutated_input_never_panics_and_splits_do_not_matter() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let head = b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
        let body = b"5;e=1\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nT: v\r\n\r\n";
        for _ in 0..20_000 {
            let mut h = head.to_vec();
            let mut b = body.to_vec();
            for _ in 0..next() % 4 {
                let i = next() as usize % h.len();
                h[i] = next() as u8;
                let i = next() as usize % b.len();
                b[i] = next() as u8;
            }
            h.truncate(h.len() - next() as usize % 4);
            let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let _ = parse_request(&h, &mut storage);
            let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let _ = parse_response(&h, &mut storage, false);
            let dechunk = next() % 2 == 0;
            let whole = follow(Framing::Chunked, &b, b.len(), dechunk);
            let split = follow(Framing::Chunked, &b, 1 + next() as usize % 7, dechunk);
            assert_eq!(whole, split, "{}", String::from_utf8_lossy(&b));
        }
    }
}
