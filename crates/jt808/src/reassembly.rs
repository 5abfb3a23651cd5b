//! Sub-package reassembly (JT/T 808-2019 §4.5.3 and §8.4).
//!
//! Packets of one long message carry consecutive serial numbers, so a message is
//! keyed by terminal, message ID and the serial of its first packet
//! (`serial - (index - 1)`). Memory is bounded per terminal (bytes and pending
//! messages) and in the number of terminals; time is injected as a monotonic
//! [`Duration`] since an origin the caller chooses, so the module never reads a clock.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::header::{Header, Phone};
use crate::message::Message;
use crate::packet::Packet;

/// Limits of a [`Reassembler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReassemblyConfig {
    /// Body bytes held for one terminal; the oldest pending message is dropped to make room.
    pub max_bytes_per_terminal: usize,
    /// Messages in progress for one terminal; the oldest is dropped to make room.
    pub max_pending_per_terminal: usize,
    /// Terminals with messages in progress; packets from further terminals are refused.
    pub max_terminals: usize,
    /// A message that has not progressed for this long is given up by [`Reassembler::expire`].
    pub timeout: Duration,
}

impl Default for ReassemblyConfig {
    fn default() -> Self {
        Self {
            max_bytes_per_terminal: 1 << 20,
            max_pending_per_terminal: 8,
            max_terminals: 100_000,
            timeout: Duration::from_secs(60),
        }
    }
}

/// A message whose packets have all arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reassembled {
    /// Header of the first packet, without sub-package counters.
    pub header: Header,
    /// The whole body.
    pub body: Vec<u8>,
}

impl Reassembled {
    /// Decodes the reassembled body.
    pub fn decode(&self) -> Result<Packet> {
        let message = Message::decode(self.header.msg_id, self.header.version, &self.body)?;
        Ok(Packet { header: self.header, message })
    }
}

/// What a packet did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The message is complete.
    Complete(Reassembled),
    /// Stored; `missing` packets still to come.
    Pending {
        /// Packets not yet received.
        missing: u16,
    },
    /// This index was already held; ignored.
    Duplicate,
}

/// A message given up or still waiting: what to ask for in a 0x8003.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incomplete {
    /// Terminal.
    pub phone: Phone,
    /// Message ID.
    pub msg_id: u16,
    /// Serial of the first packet.
    pub first_serial: u16,
    /// Missing packet indices, ascending, 1-based.
    pub missing: Vec<u16>,
}

impl Incomplete {
    /// The 0x8003 resend request for the missing packets.
    pub fn resend_request(&self) -> Message {
        Message::ResendRequest { first_serial: self.first_serial, packet_ids: self.missing.clone() }
    }
}

/// Counters, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages completed.
    pub completed: u64,
    /// Messages dropped to respect a bound.
    pub evicted: u64,
    /// Messages given up after the time-out.
    pub expired: u64,
    /// Duplicate packets ignored.
    pub duplicates: u64,
    /// Packets refused (bad counters, too many terminals, oversize).
    pub refused: u64,
}

#[derive(Debug)]
struct Pending {
    msg_id: u16,
    first_serial: u16,
    total: u16,
    header: Header,
    parts: BTreeMap<u16, Vec<u8>>,
    bytes: usize,
    started: Duration,
    last_seen: Duration,
}

impl Pending {
    fn missing(&self) -> Vec<u16> {
        (1..=self.total).filter(|i| !self.parts.contains_key(i)).collect()
    }
}

#[derive(Debug, Default)]
struct Terminal {
    pending: Vec<Pending>,
    bytes: usize,
}

impl Terminal {
    fn evict_oldest(&mut self) -> bool {
        let Some((i, _)) = self.pending.iter().enumerate().min_by_key(|(_, p)| p.started) else {
            return false;
        };
        let p = self.pending.swap_remove(i);
        self.bytes -= p.bytes;
        true
    }
}

/// Reassembles sub-packaged messages from many terminals.
#[derive(Debug, Default)]
pub struct Reassembler {
    config: ReassemblyConfig,
    terminals: HashMap<Phone, Terminal>,
    stats: Stats,
}

impl Reassembler {
    /// A reassembler with the given limits.
    pub fn new(config: ReassemblyConfig) -> Self {
        Self { config, terminals: HashMap::new(), stats: Stats::default() }
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Body bytes held in total.
    pub fn buffered_bytes(&self) -> usize {
        self.terminals.values().map(|t| t.bytes).sum()
    }

    /// Feeds one packet (header with sub-package counters, and its body).
    /// A header without counters is a complete message by itself.
    pub fn push(&mut self, header: &Header, body: &[u8], now: Duration) -> Result<Outcome> {
        let Some(pkg) = header.package else {
            self.stats.completed += 1;
            return Ok(Outcome::Complete(Reassembled { header: *header, body: body.to_vec() }));
        };
        if pkg.total == 0 || pkg.index == 0 || pkg.index > pkg.total {
            self.stats.refused += 1;
            return Err(Error::InvalidPackage { total: pkg.total, index: pkg.index });
        }
        let max_bytes = self.config.max_bytes_per_terminal;
        if body.len() > max_bytes {
            self.stats.refused += 1;
            return Err(Error::FieldTooLong { field: "reassembly.buffer", len: body.len(), max: max_bytes });
        }
        if !self.terminals.contains_key(&header.phone) && self.terminals.len() >= self.config.max_terminals {
            self.stats.refused += 1;
            return Err(Error::OutOfRange { field: "reassembly.terminals", value: self.terminals.len() as i64 });
        }
        let first_serial = header.serial.wrapping_sub(pkg.index - 1);
        let term = self.terminals.entry(header.phone).or_default();
        let pos = term.pending.iter().position(|p| p.msg_id == header.msg_id && p.first_serial == first_serial);
        // A different total under the same key means a new message reusing serials.
        let pos = match pos {
            Some(i) if term.pending[i].total != pkg.total => {
                let old = term.pending.swap_remove(i);
                term.bytes -= old.bytes;
                self.stats.evicted += 1;
                None
            }
            other => other,
        };
        if let Some(i) = pos {
            if term.pending[i].parts.contains_key(&pkg.index) {
                self.stats.duplicates += 1;
                return Ok(Outcome::Duplicate);
            }
        }
        // Make room: bytes first, then the count of pending messages.
        // The key, not the index: evictions below reorder `pending`.
        let keep = pos.map(|_| (header.msg_id, first_serial));
        while term.bytes + body.len() > max_bytes {
            // Never evict the message this packet belongs to unless it is the only one.
            let victim = term
                .pending
                .iter()
                .enumerate()
                .filter(|(_, p)| Some((p.msg_id, p.first_serial)) != keep)
                .min_by_key(|(_, p)| p.started)
                .map(|(i, _)| i);
            match victim {
                Some(v) => {
                    let old = term.pending.swap_remove(v);
                    term.bytes -= old.bytes;
                    self.stats.evicted += 1;
                }
                None if term.evict_oldest() => self.stats.evicted += 1,
                // Unreachable while the byte count is right; never loop on it.
                None => break,
            }
        }
        let pos = term.pending.iter().position(|p| p.msg_id == header.msg_id && p.first_serial == first_serial);
        let i = match pos {
            Some(i) => i,
            None => {
                while term.pending.len() >= self.config.max_pending_per_terminal.max(1) && term.evict_oldest() {
                    self.stats.evicted += 1;
                }
                let mut first = *header;
                first.serial = first_serial;
                first.package = None;
                term.pending.push(Pending {
                    msg_id: header.msg_id,
                    first_serial,
                    total: pkg.total,
                    header: first,
                    parts: BTreeMap::new(),
                    bytes: 0,
                    started: now,
                    last_seen: now,
                });
                term.pending.len() - 1
            }
        };
        let p = &mut term.pending[i];
        p.parts.insert(pkg.index, body.to_vec());
        p.bytes += body.len();
        p.last_seen = now;
        term.bytes += body.len();
        let held = p.parts.len();
        if held < usize::from(p.total) {
            return Ok(Outcome::Pending { missing: p.total - held as u16 });
        }
        let done = term.pending.swap_remove(i);
        term.bytes -= done.bytes;
        if term.pending.is_empty() {
            self.terminals.remove(&header.phone);
        }
        self.stats.completed += 1;
        let mut body = Vec::with_capacity(done.bytes);
        for part in done.parts.values() {
            body.extend_from_slice(part);
        }
        Ok(Outcome::Complete(Reassembled { header: done.header, body }))
    }

    /// Messages that have waited at least `after` since their last packet, with their
    /// missing packets: the platform sends a 0x8003 for each.
    pub fn missing(&self, now: Duration, after: Duration) -> Vec<Incomplete> {
        let mut out = Vec::new();
        for (phone, t) in &self.terminals {
            for p in &t.pending {
                if now.saturating_sub(p.last_seen) >= after {
                    out.push(Incomplete {
                        phone: *phone,
                        msg_id: p.msg_id,
                        first_serial: p.first_serial,
                        missing: p.missing(),
                    });
                }
            }
        }
        out
    }

    /// Gives up messages idle for the configured time-out and returns them.
    pub fn expire(&mut self, now: Duration) -> Vec<Incomplete> {
        let timeout = self.config.timeout;
        let mut out = Vec::new();
        self.terminals.retain(|phone, t| {
            let mut i = 0;
            while i < t.pending.len() {
                if now.saturating_sub(t.pending[i].last_seen) >= timeout {
                    let p = t.pending.swap_remove(i);
                    t.bytes -= p.bytes;
                    out.push(Incomplete {
                        phone: *phone,
                        msg_id: p.msg_id,
                        first_serial: p.first_serial,
                        missing: p.missing(),
                    });
                } else {
                    i += 1;
                }
            }
            !t.pending.is_empty()
        });
        self.stats.expired += out.len() as u64;
        out
    }
}
