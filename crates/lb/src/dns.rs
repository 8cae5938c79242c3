//! Health-aware DNS: an authoritative UDP responder (hickory-proto for the
//! wire format) that answers A/AAAA for configured names with the addresses
//! of the pool's eligible backends only (healthy, not drained, lost or
//! ejected), with a low TTL. Unknown names get NXDOMAIN; known names with no
//! address of the asked family get an empty NOERROR answer.
//!
//! TTL caveat: resolvers and clients cache answers for up to `ttl_s` (some
//! clamp to a minimum, some ignore TTLs), so a failed node can still be
//! dialled for that long; clients should retry other addresses.

use crate::config::{AllDownPolicy, DnsConfig};
use crate::pool::Pool;
use crate::Clock;
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;
use tokio::net::UdpSocket;
use tokio::sync::watch;

/// Names (lower-case, fully qualified) → the pool whose backends they name.
pub struct Zone {
    names: BTreeMap<Name, Arc<Pool>>,
    ttl_s: u32,
    clock: Clock,
}

impl Zone {
    pub fn new(cfg: &DnsConfig, pools: &BTreeMap<String, Arc<Pool>>, clock: Clock) -> Self {
        let names = cfg
            .names
            .iter()
            .filter_map(|n| {
                let name = Name::from_str(&n.name).ok()?.to_lowercase();
                Some((name, pools.get(&n.pool)?.clone()))
            })
            .collect();
        Zone {
            names,
            ttl_s: cfg.ttl_s,
            clock,
        }
    }

    /// The answer to one query datagram; `None` for what is not a query.
    pub fn answer(&self, datagram: &[u8]) -> Option<Vec<u8>> {
        let query = Message::from_vec(datagram).ok()?;
        if query.message_type() != MessageType::Query {
            return None;
        }
        let mut resp = Message::new();
        resp.set_id(query.id())
            .set_message_type(MessageType::Response)
            .set_op_code(query.op_code())
            .set_recursion_desired(query.recursion_desired())
            .set_authoritative(true);
        let Some(q) = query
            .queries()
            .first()
            .filter(|_| query.op_code() == OpCode::Query)
        else {
            resp.set_response_code(ResponseCode::NotImp);
            return resp.to_vec().ok();
        };
        resp.add_query(q.clone());
        match self.names.get(&q.name().to_lowercase()) {
            None => {
                resp.set_response_code(ResponseCode::NXDomain);
            }
            Some(pool) => {
                for ip in self.addresses(pool) {
                    let rdata = match (ip, q.query_type()) {
                        (IpAddr::V4(v4), RecordType::A) => RData::A(A(v4)),
                        (IpAddr::V6(v6), RecordType::AAAA) => RData::AAAA(AAAA(v6)),
                        _ => continue,
                    };
                    resp.add_answer(Record::from_rdata(q.name().clone(), self.ttl_s, rdata));
                }
            }
        }
        resp.to_vec().ok()
    }

    /// Distinct addresses of the backends that would get traffic now.
    fn addresses(&self, pool: &Pool) -> Vec<IpAddr> {
        let now = self.clock.now_ms();
        let backends = pool.backends();
        let mut ips: Vec<IpAddr> = backends
            .iter()
            .filter(|b| b.is_eligible(now))
            .map(|b| b.addr.ip())
            .collect();
        if ips.is_empty() && pool.cfg.all_down == AllDownPolicy::ServeAll {
            ips = backends
                .iter()
                .filter(|b| !b.is_drained() && !b.is_lost() && !b.is_removed())
                .map(|b| b.addr.ip())
                .collect();
        }
        ips.sort();
        ips.dedup();
        ips
    }
}

/// Answer queries on `socket` until shutdown.
pub async fn serve(socket: UdpSocket, zone: Zone, mut shutdown: watch::Receiver<bool>) {
    let mut buf = vec![0u8; crate::limits::DNS_DATAGRAM_MAX_BYTES];
    loop {
        let (n, peer) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r { Ok(x) => x, Err(_) => continue },
            _ = shutdown.changed() => return,
        };
        if let Some(reply) = zone.answer(&buf[..n]) {
            let _ = socket.send_to(&reply, peer).await;
        }
    }
}
