//! The lb at its edges, on loopback: client identity headers with trusted
//! and untrusted peers, PROXY v1/v2 on receive and send, TLS termination
//! and certificate reload, and hostile clients (slowloris, garbage,
//! oversized heads, bad PROXY headers) that must not affect anyone else.
