//! The L4 byte relay: plain-TCP L4 connections, once their backend is
//! connected, are handed to a relay thread that moves bytes between the two
//! sockets from its own edge-triggered epoll loop (mio). No task per
//! connection, no waker or scheduler per transfer: at L4 the kernel's TCP
//! work is ~95 % of the cost, and the async runtime's bookkeeping was most
//! of the rest (a bare epoll loop needs about a third of its user time).
//! TLS L4 connections stay on the async pipe in `listener`.
//!
//! Each direction has one buffer: read from the source while the buffer is
//! empty, write it to the destination until it is empty again; an end of
//! stream is passed on as a half-close once the buffer is flushed. A pair
//! ends when both directions ended, on an error, or after `idle` without a
//! byte moving; its backend lease and connection permit are released then.
//! Main types: [`Relays`], [`Pair`].

use crate::limits;
use crate::pool::Lease;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use std::io::{self, ErrorKind, Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::OwnedSemaphorePermit;

/// One client connection and its backend connection, ready to relay.
pub struct Pair {
    pub client: std::net::TcpStream,
    pub backend: std::net::TcpStream,
    /// Close after this long without a byte moving either way.
    pub idle: Duration,
    /// Held until the pair ends: drain and `active` count it.
    pub lease: Lease,
    /// The listener's connection slot, held until the pair ends.
    pub permit: Option<OwnedSemaphorePermit>,
}

/// The relay threads of one lb; pairs are spread over them in turn.
pub struct Relays {
    threads: Vec<Handle>,
    next: AtomicUsize,
    /// Pairs submitted and not yet ended.
    active: Arc<AtomicUsize>,
}

/// Pairs handed to a relay thread and not yet taken; `None` once the thread
/// ended (its pairs go elsewhere).
type Queue = Arc<Mutex<Option<Vec<Pair>>>>;

struct Handle {
    queue: Queue,
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The waker's token; pair sides use 2 × slot and 2 × slot + 1.
const WAKE: Token = Token(usize::MAX);
/// How often idle pairs are looked for.
const SWEEP: Duration = Duration::from_millis(100);

impl Relays {
    /// Start `n` relay threads (at least one).
    pub fn start(n: usize) -> io::Result<Relays> {
        let active = Arc::new(AtomicUsize::new(0));
        let threads = (0..n.max(1))
            .map(|i| {
                let poll = Poll::new()?;
                let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
                let queue = Arc::new(Mutex::new(Some(Vec::new())));
                let stop = Arc::new(AtomicBool::new(false));
                let mut relay = Relay {
                    poll,
                    queue: queue.clone(),
                    stop: stop.clone(),
                    slots: Vec::new(),
                    free: Vec::new(),
                    active: active.clone(),
                };
                let thread = std::thread::Builder::new()
                    .name(format!("tandem-lb-relay-{i}"))
                    .spawn(move || relay.run())?;
                Ok(Handle {
                    queue,
                    waker,
                    stop,
                    thread: Some(thread),
                })
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Relays {
            threads,
            next: AtomicUsize::new(0),
            active,
        })
    }

    /// Connections being relayed.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// Relay `pair` until it ends, on the next thread still running. When
    /// none is (each failed its poll), the pair is dropped: its connections
    /// close and its lease and permit are released.
    pub fn submit(&self, pair: Pair) {
        let first = self.next.fetch_add(1, Ordering::Relaxed);
        let mut pair = Some(pair);
        for k in 0..self.threads.len() {
            let h = &self.threads[(first + k) % self.threads.len()];
            let mut queue = h.queue.lock().unwrap_or_else(|e| e.into_inner());
            let Some(q) = queue.as_mut() else {
                continue;
            };
            // Counted before the thread can see (and end) it.
            self.active.fetch_add(1, Ordering::Relaxed);
            q.extend(pair.take());
            drop(queue);
            if let Err(e) = h.waker.wake() {
                tracing::warn!(error = %e, "could not wake an L4 relay thread");
            }
            return;
        }
        tracing::error!("no L4 relay thread is running; connection closed");
    }
}

impl Drop for Relays {
    fn drop(&mut self) {
        for h in &mut self.threads {
            h.stop.store(true, Ordering::Relaxed);
            let _ = h.waker.wake();
            if let Some(t) = h.thread.take() {
                let _ = t.join();
            }
        }
    }
}

/// One relay thread's state.
struct Relay {
    poll: Poll,
    queue: Queue,
    stop: Arc<AtomicBool>,
    slots: Vec<Option<Active>>,
    free: Vec<usize>,
    active: Arc<AtomicUsize>,
}

/// A pair being relayed.
struct Active {
    sides: [Side; 2],
    idle: Duration,
    /// When bytes last moved either way (a slow reader still counts).
    last_moved: Instant,
    started: Instant,
    lease: Lease,
    _permit: Option<OwnedSemaphorePermit>,
}

/// One socket of a pair and the bytes read from it, not yet written to the
/// other socket.
struct Side {
    stream: TcpStream,
    /// Readiness as the last events said and the last syscalls left it.
    readable: bool,
    writable: bool,
    /// Read until a read would block, even after a short one: set once the
    /// peer closed its sending side (no new event will come for the bytes
    /// before the end) or sent urgent data (a read stops short at the
    /// urgent mark with more bytes behind it).
    drain_reads: bool,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// This side sent its end of stream...
    eof: bool,
    /// ...and it was passed on to the other side.
    eof_sent: bool,
}

impl Side {
    fn new(stream: std::net::TcpStream) -> Side {
        Side {
            stream: TcpStream::from_std(stream),
            readable: true,
            writable: true,
            drain_reads: false,
            buf: vec![0; limits::L4_BUFFER_BYTES].into_boxed_slice(),
            start: 0,
            end: 0,
            eof: false,
            eof_sent: false,
        }
    }

    fn done(&self) -> bool {
        self.eof_sent && self.start == self.end
    }
}

/// What moving bytes one way did.
enum Moved {
    /// Nothing more can happen until the next event; `moved`: some bytes
    /// were read or written (the pair is not idle).
    Waiting { moved: bool },
    /// A socket failed: the pair ends.
    Failed,
}

/// Move bytes from `src` to `dst` until a socket would block.
fn pump(src: &mut Side, dst: &mut Side) -> Moved {
    let mut moved = false;
    loop {
        while src.start < src.end {
            if !dst.writable {
                return Moved::Waiting { moved };
            }
            match dst.stream.write(&src.buf[src.start..src.end]) {
                Ok(n) => {
                    src.start += n;
                    moved = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => dst.writable = false,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Moved::Failed,
            }
        }
        src.start = 0;
        src.end = 0;
        if src.eof {
            if !src.eof_sent {
                src.eof_sent = true;
                // The peer may have gone already; the pair ends soon then.
                let _ = dst.stream.shutdown(Shutdown::Write);
            }
            return Moved::Waiting { moved };
        }
        if !src.readable {
            return Moved::Waiting { moved };
        }
        match src.stream.read(&mut src.buf) {
            Ok(0) => src.eof = true,
            Ok(n) => {
                moved = true;
                src.end = n;
                // A short read emptied the socket: with edge-triggered
                // readiness the next byte brings a new event (unless
                // `drain_reads` says otherwise).
                if n < src.buf.len() && !src.drain_reads {
                    src.readable = false;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => src.readable = false,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Moved::Failed,
        }
    }
}

impl Relay {
    /// Serve until stopped or the poll fails, then end every pair and
    /// refuse new ones.
    fn run(&mut self) {
        self.serve();
        let queued = self.queue.lock().unwrap_or_else(|e| e.into_inner()).take();
        let dropped = queued.map_or(0, |q| q.len());
        self.active.fetch_sub(dropped, Ordering::Relaxed);
        for slot in 0..self.slots.len() {
            self.end(slot);
        }
    }

    fn serve(&mut self) {
        let mut events = Events::with_capacity(1024);
        let mut last_sweep = Instant::now();
        loop {
            let timeout = (!self.free_all()).then_some(SWEEP);
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                tracing::error!(error = %e, "L4 relay poll failed; its connections close");
                return;
            }
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            let now = Instant::now();
            for ev in events.iter() {
                if ev.token() == WAKE {
                    self.take_new(now);
                    continue;
                }
                let (slot, side) = (ev.token().0 / 2, ev.token().0 % 2);
                let Some(Some(active)) = self.slots.get_mut(slot) else {
                    continue;
                };
                let s = &mut active.sides[side];
                let read_to_block = ev.is_read_closed() || ev.is_error() || ev.is_priority();
                s.readable |= ev.is_readable() || read_to_block;
                s.drain_reads |= read_to_block;
                if ev.is_writable() || ev.is_write_closed() || ev.is_error() {
                    s.writable = true;
                }
                self.relay(slot, now);
            }
            if now.duration_since(last_sweep) >= SWEEP {
                last_sweep = now;
                self.sweep(now);
            }
        }
    }

    /// No pair is being relayed (the loop may sleep without a timeout).
    fn free_all(&self) -> bool {
        self.free.len() == self.slots.len()
    }

    fn take_new(&mut self, now: Instant) {
        let new = self
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        for pair in new {
            let slot = self.free.pop().unwrap_or_else(|| {
                self.slots.push(None);
                self.slots.len() - 1
            });
            let mut active = Active {
                sides: [Side::new(pair.client), Side::new(pair.backend)],
                idle: pair.idle,
                last_moved: now,
                started: now,
                lease: pair.lease,
                _permit: pair.permit,
            };
            if let Err(e) = register(self.poll.registry(), &mut active, slot) {
                tracing::debug!(error = %e, "could not relay an L4 connection; closed");
                self.free.push(slot);
                self.active.fetch_sub(1, Ordering::Relaxed);
                continue;
            }
            self.slots[slot] = Some(active);
            // Bytes may have arrived before registration: relay them now.
            self.relay(slot, now);
        }
    }

    /// Move what can be moved both ways; end the pair when it is finished.
    fn relay(&mut self, slot: usize, now: Instant) {
        let Some(Some(active)) = self.slots.get_mut(slot) else {
            return;
        };
        let [a, b] = &mut active.sides;
        let (up, down) = (pump(a, b), pump(b, a));
        let finished = a.done() && b.done();
        if matches!(up, Moved::Waiting { moved: true })
            || matches!(down, Moved::Waiting { moved: true })
        {
            active.last_moved = now;
        }
        if finished || matches!(up, Moved::Failed) || matches!(down, Moved::Failed) {
            self.end(slot);
        }
    }

    fn sweep(&mut self, now: Instant) {
        for slot in 0..self.slots.len() {
            if let Some(active) = &self.slots[slot] {
                if now.duration_since(active.last_moved) >= active.idle {
                    tracing::debug!(
                        backend = active.lease.backend.name,
                        "L4 connection idle; closed"
                    );
                    self.end(slot);
                }
            }
        }
    }

    fn end(&mut self, slot: usize) {
        if let Some(mut active) = self.slots[slot].take() {
            for s in &mut active.sides {
                let _ = self.poll.registry().deregister(&mut s.stream);
            }
            active
                .lease
                .backend
                .metrics
                .latency
                .observe(active.started.elapsed().as_secs_f64());
            self.free.push(slot);
            self.active.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

fn register(registry: &Registry, active: &mut Active, slot: usize) -> io::Result<()> {
    // PRIORITY: urgent data arrived (see `Side::drain_reads`).
    let interest = Interest::READABLE | Interest::WRITABLE | Interest::PRIORITY;
    for (i, s) in active.sides.iter_mut().enumerate() {
        registry.register(&mut s.stream, Token(slot * 2 + i), interest)?;
    }
    Ok(())
}
