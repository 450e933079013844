//! The node side's end of the link: it listens for the signer (pinned key), keeps the calls
//! in flight and their answers, re-sends what is unanswered when the signer reconnects, and
//! tells the application when answers arrive.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use bitcoin::secp256k1::PublicKey;
use warden_core::rng::EntropySource as _;
use warden_hsmd::hsm_secret::OsEntropy;
use warden_link::{
    EphemeralSecretKey, ErrorReply, LinkMessage, LinkReader, LinkStream, LinkWriter, Request,
    StaticSecretKey,
};

use crate::remote::server::CONTEXT;
use crate::remote::wire::{call_key, request_id};

/// How many answers the node side remembers (oldest forgotten first).
pub const ANSWER_CACHE: usize = 16_384;

/// How many refusals the node side keeps for [`crate::remote::RemoteKeysManager::refusals`].
pub const REFUSALS_KEPT: usize = 1024;

/// A signer's answer.
#[derive(Clone)]
pub(crate) enum Answer {
    /// The answer's bytes (tag, then the result).
    Ok(Vec<u8>),
    /// The signer refused, with its reason.
    Refused(String),
}

/// A call waiting for its answer.
struct Outstanding {
    key: [u8; 32],
    id: u64,
    msg: Vec<u8>,
}

/// A refusal seen on the node side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteRefusal {
    /// The call's tag (see [`crate::remote::wire`]).
    pub tag: u16,
    /// The signer's reason (the rule and its detail).
    pub reason: String,
}

struct State {
    writer: Option<(u64, LinkWriter<TcpStream>)>,
    generation: u64,
    next_seq: u64,
    /// In send order.
    pending: BTreeMap<u64, Outstanding>,
    by_key: HashMap<[u8; 32], u64>,
    by_id: HashMap<u64, u64>,
    /// Each answer with the number of successful answers received before it.
    answers: HashMap<[u8; 32], (Answer, u64)>,
    /// Successful answers received.
    successes: u64,
    answer_order: VecDeque<[u8; 32]>,
    /// Answers received / answers the callback has seen.
    received: u64,
    notified: u64,
    sent: u64,
    refusals: Vec<RemoteRefusal>,
}

type Callback = Arc<dyn Fn() + Send + Sync>;

/// The node side's link.
pub(crate) struct Link {
    state: Mutex<State>,
    changed: Condvar,
    callback: Mutex<Option<Callback>>,
    pub(crate) wait: Duration,
    local_addr: SocketAddr,
}

impl core::fmt::Debug for Link {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Link").field("local_addr", &self.local_addr).finish_non_exhaustive()
    }
}

fn tag_of(msg: &[u8]) -> u16 {
    crate::remote::wire::split_tag(msg).map_or(0, |(t, _)| t)
}

impl Link {
    /// Listens on `listener` for the signer whose link key is `signer_key`; pings it every
    /// `heartbeat` and drops a link silent for three of them.
    pub(crate) fn listen(
        listener: TcpListener,
        key: StaticSecretKey,
        signer_key: PublicKey,
        wait: Duration,
        heartbeat: Duration,
    ) -> io::Result<Arc<Link>> {
        let local_addr = listener.local_addr()?;
        let link = Arc::new(Link {
            state: Mutex::new(State {
                writer: None,
                generation: 0,
                next_seq: 0,
                pending: BTreeMap::new(),
                by_key: HashMap::new(),
                by_id: HashMap::new(),
                answers: HashMap::new(),
                successes: 0,
                answer_order: VecDeque::new(),
                received: 0,
                notified: 0,
                sent: 0,
                refusals: Vec::new(),
            }),
            changed: Condvar::new(),
            callback: Mutex::new(None),
            wait,
            local_addr,
        });
        // The threads hold the link weakly: when the node side drops it, `Drop` closes the
        // connection and wakes the listener, and each thread ends.
        let accept = Arc::downgrade(&link);
        let key = Arc::new(key);
        std::thread::Builder::new().name("warden-ldk-accept".into()).spawn(move || {
            for tcp in listener.incoming() {
                if accept.strong_count() == 0 {
                    return;
                }
                let Ok(tcp) = tcp else { continue };
                let (link, key) = (accept.clone(), Arc::clone(&key));
                let _ = std::thread::Builder::new()
                    .name("warden-ldk-link".into())
                    .spawn(move || Link::serve(&link, tcp, &key, signer_key, heartbeat));
            }
        })?;
        let beat = Arc::downgrade(&link);
        std::thread::Builder::new().name("warden-ldk-heartbeat".into()).spawn(move || {
            let mut n = 0u64;
            loop {
                std::thread::sleep(heartbeat);
                let Some(link) = beat.upgrade() else { return };
                n += 1;
                link.lock().send(&LinkMessage::Ping(n));
            }
        })?;
        let notify = Arc::downgrade(&link);
        std::thread::Builder::new()
            .name("warden-ldk-unblocked".into())
            .spawn(move || Link::notifier(notify))?;
        Ok(link)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub(crate) fn set_callback(&self, f: Callback) {
        *self.callback.lock().unwrap_or_else(|p| p.into_inner()) = Some(f);
    }

    /// Runs the callback after answers arrive (on its own thread: the callback may call back
    /// into the signer, even into a bounded wait, without holding up the link's reader).
    fn notifier(link: Weak<Link>) {
        loop {
            let Some(l) = link.upgrade() else { return };
            let target = {
                let st = l.lock();
                let (st, _) = l
                    .changed
                    .wait_timeout_while(st, Duration::from_millis(200), |s| {
                        s.received == s.notified
                    })
                    .unwrap_or_else(|p| p.into_inner());
                st.received
            };
            if l.lock().notified == target {
                continue;
            }
            let cb = l.callback.lock().unwrap_or_else(|p| p.into_inner()).clone();
            if let Some(cb) = cb {
                cb();
            }
            l.lock().notified = target;
            l.changed.notify_all();
        }
    }

    /// One signer connection: the handshake (only the pinned key passes), then it becomes the
    /// link unless one is up, the calls in flight are re-sent in order, and answers are read.
    fn serve(
        link: &Weak<Link>,
        tcp: TcpStream,
        key: &StaticSecretKey,
        signer_key: PublicKey,
        beat: Duration,
    ) {
        let setup = tcp
            .set_nodelay(true)
            .and_then(|()| tcp.set_read_timeout(Some(Duration::from_secs(10))))
            .and_then(|()| tcp.set_write_timeout(Some(Duration::from_secs(10))));
        let ephemeral = OsEntropy::open().ok().and_then(|mut e| {
            (0..4).find_map(|_| EphemeralSecretKey::from_bytes(e.random_32()).ok())
        });
        let (Ok(()), Some(ephemeral)) = (setup, ephemeral) else { return };
        let Ok(stream) = LinkStream::accept(tcp, key, signer_key, ephemeral) else { return };
        if stream.get_ref().set_read_timeout(Some(beat.saturating_mul(3))).is_err() {
            return;
        }
        let Ok((reader, writer)) = stream.split(|t| Ok((t.try_clone()?, t))) else { return };
        let Some(this) = link.upgrade() else { return };
        let generation = {
            let mut st = this.lock();
            if st.writer.is_some() {
                drop(st);
                let mut writer = writer;
                let _ = writer.send_message(&LinkMessage::Error(ErrorReply {
                    id: 0,
                    fatal: true,
                    description: "another signer is connected".into(),
                }));
                let _ = writer.get_ref().shutdown(Shutdown::Both);
                return;
            }
            st.generation += 1;
            let generation = st.generation;
            st.writer = Some((generation, writer));
            let resend: Vec<LinkMessage> = st
                .pending
                .values()
                .map(|o| {
                    LinkMessage::Request(Request { id: o.id, client: CONTEXT, msg: o.msg.clone() })
                })
                .collect();
            for m in &resend {
                st.send(m);
            }
            generation
        };
        this.changed.notify_all();
        drop(this);
        Link::read(link, reader, generation);
        let Some(this) = link.upgrade() else { return };
        let mut st = this.lock();
        if st.writer.as_ref().is_some_and(|(g, _)| *g == generation) {
            if let Some((_, w)) = st.writer.take() {
                let _ = w.get_ref().shutdown(Shutdown::Both);
            }
        }
        drop(st);
        this.changed.notify_all();
    }

    /// Reads answers until the link fails or the node side is gone.
    fn read(link: &Weak<Link>, mut reader: LinkReader<TcpStream>, generation: u64) {
        loop {
            let message = reader.recv_message();
            let Some(this) = link.upgrade() else { return };
            let (id, answer) = match message {
                Ok(LinkMessage::Reply(mut r)) => (r.id, Answer::Ok(std::mem::take(&mut r.msg))),
                Ok(LinkMessage::Error(e)) if e.id != 0 => (e.id, Answer::Refused(e.description)),
                Ok(LinkMessage::Ping(n)) => {
                    let mut st = this.lock();
                    if st.writer.as_ref().is_some_and(|(g, _)| *g == generation) {
                        st.send(&LinkMessage::Pong(n));
                    }
                    continue;
                }
                Ok(LinkMessage::Pong(_) | LinkMessage::Unknown { .. }) => continue,
                Ok(_) | Err(_) => return,
            };
            this.answer(id, answer);
        }
    }

    fn answer(&self, id: u64, answer: Answer) {
        let mut st = self.lock();
        let Some(seq) = st.by_id.remove(&id) else { return };
        let Some(out) = st.pending.remove(&seq) else { return };
        st.by_key.remove(&out.key);
        let before = st.successes;
        match &answer {
            Answer::Refused(reason) => {
                let refusal = RemoteRefusal { tag: tag_of(&out.msg), reason: reason.clone() };
                if st.refusals.len() >= REFUSALS_KEPT {
                    st.refusals.remove(0);
                }
                st.refusals.push(refusal);
            }
            Answer::Ok(_) => st.successes += 1,
        }
        if st.answers.insert(out.key, (answer, before)).is_none() {
            st.answer_order.push_back(out.key);
        }
        while st.answer_order.len() > ANSWER_CACHE {
            if let Some(old) = st.answer_order.pop_front() {
                st.answers.remove(&old);
            }
        }
        st.received += 1;
        drop(st);
        self.changed.notify_all();
    }

    /// The answer to `msg` if there is one; otherwise sends it (unless it is in flight).
    fn lookup_or_send(&self, st: &mut State, msg: &[u8]) -> Option<Answer> {
        let key = call_key(msg);
        match st.answers.get(&key) {
            // A refusal stands until another call succeeds: the signer's state may have
            // moved since (a revocation refused before its commitment was validated), so the
            // call is then asked again. Until then, LDK's retries get the refusal without a
            // new request.
            Some((Answer::Refused(_), at)) if *at < st.successes => {
                st.answers.remove(&key);
            }
            Some((a, _)) => return Some(a.clone()),
            None => {}
        }
        if st.by_key.contains_key(&key) {
            return None;
        }
        let id = request_id(&key);
        if st.by_id.contains_key(&id) {
            // Two different calls in flight with one 64-bit id: the second waits for the
            // first to be answered (a retry of LDK's then finds its turn).
            return None;
        }
        let seq = st.next_seq;
        st.next_seq += 1;
        st.pending.insert(seq, Outstanding { key, id, msg: msg.to_vec() });
        st.by_key.insert(key, seq);
        st.by_id.insert(id, seq);
        st.sent += 1;
        st.send(&LinkMessage::Request(Request { id, client: CONTEXT, msg: msg.to_vec() }));
        None
    }

    /// LDK's `Err` + `signer_unblocked` pattern: the cached answer, or `None` after sending
    /// the call (the callback runs when its answer arrives).
    pub(crate) fn call(&self, msg: &[u8]) -> Option<Answer> {
        let mut st = self.lock();
        self.lookup_or_send(&mut st, msg)
    }

    /// For calls LDK cannot retry: waits for the answer at most [`Link::wait`].
    pub(crate) fn call_blocking(&self, msg: &[u8]) -> Option<Answer> {
        let deadline = Instant::now() + self.wait;
        let key = call_key(msg);
        let mut st = self.lock();
        loop {
            if let Some(a) = self.lookup_or_send(&mut st, msg) {
                return Some(a);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            st = self.changed.wait_timeout(st, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
            if let Some((a, _)) = st.answers.get(&key) {
                return Some(a.clone());
            }
        }
    }

    /// Whether a signer is connected.
    pub(crate) fn is_connected(&self) -> bool {
        self.lock().writer.is_some()
    }

    /// Calls sent (each distinct call once, whatever the retries).
    pub(crate) fn sent(&self) -> u64 {
        self.lock().sent
    }

    /// Calls in flight.
    pub(crate) fn in_flight(&self) -> usize {
        self.lock().pending.len()
    }

    pub(crate) fn refusals(&self) -> Vec<RemoteRefusal> {
        self.lock().refusals.clone()
    }

    /// Waits (at most `timeout`) until nothing is in flight and the callback has run after
    /// the last answer; returns whether that happened.
    pub(crate) fn wait_idle(&self, timeout: Duration) -> bool {
        let st = self.lock();
        let (st, _) = self
            .changed
            .wait_timeout_while(st, timeout, |s| !s.pending.is_empty() || s.received != s.notified)
            .unwrap_or_else(|p| p.into_inner());
        st.pending.is_empty() && st.received == st.notified
    }

    /// Waits (at most `timeout`) until a signer is connected.
    pub(crate) fn wait_connected(&self, timeout: Duration) -> bool {
        let st = self.lock();
        let (st, _) = self
            .changed
            .wait_timeout_while(st, timeout, |s| s.writer.is_none())
            .unwrap_or_else(|p| p.into_inner());
        st.writer.is_some()
    }
}

impl Drop for Link {
    /// The node side is gone: the signer's connection is closed (its reader thread ends) and
    /// the listener is woken so that its thread ends and the port is released.
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some((_, w)) = st.writer.take() {
            let _ = w.get_ref().shutdown(Shutdown::Both);
        }
        let _ = TcpStream::connect_timeout(&self.local_addr, Duration::from_secs(1));
    }
}

impl State {
    /// Sends on the link, if any; a failed send drops it (calls stay in flight).
    fn send(&mut self, msg: &LinkMessage) {
        let Some((_, w)) = self.writer.as_mut() else { return };
        if w.send_message(msg).is_err() {
            let _ = w.get_ref().shutdown(Shutdown::Both);
            self.writer = None;
        }
    }
}
