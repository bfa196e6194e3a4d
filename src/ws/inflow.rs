//! How much of a client's input the server takes in: frames checked from their headers, and a
//! bound on the frames taken in but not yet dealt with.
//!
//! actix-web-actors' decoder reads everything the socket has before it decodes, and its parser
//! checks a frame's size only once the whole frame is buffered: a header announcing 100 MiB had
//! the server buffer 100 MiB before it answered 1009, and a flood of small frames piled up as
//! fast as the client could send. The socket reader (`transport::SocketReader`) therefore walks
//! the frame headers of what it passes on ([`FrameScan`]): a header announcing more than the
//! frame limit ends the socket (1009) before any of its payload is read, and once
//! [`MAX_BACKLOG`] whole frames wait for the session (in the decoder, or as queued actions) it
//! stops reading, so the kernel holds the rest and TCP slows the client down.
use std::cell::Cell;

use actix_web_actors::ws::CloseCode;

/// Whole frames taken from the socket that the session has not finished with: decoded but not
/// handled, or actions waiting for (or in) their turn. One action runs at a time; the rest of
/// this many wait, and the client's further frames wait in the kernel.
pub const MAX_BACKLOG: u32 = 8;

/// What the socket reader and the session share (both on the connection's worker thread).
#[derive(Debug, Default)]
pub struct Inflow {
    backlog: Cell<u32>,
    refused: Cell<Option<CloseCode>>,
}

impl Inflow {
    /// Frames the reader may still pass on before the session catches up.
    pub fn room(&self) -> u32 {
        MAX_BACKLOG.saturating_sub(self.backlog.get())
    }

    /// The reader passed on `frames` more whole frames.
    pub fn taken(&self, frames: u32) {
        self.backlog.set(self.backlog.get() + frames);
    }

    /// The session is done with one frame (handled, dropped, or its action has run).
    pub fn finished(&self) {
        self.backlog.set(self.backlog.get().saturating_sub(1));
    }

    /// The reader refused the input: the session is to close with `code`.
    pub fn refuse(&self, code: CloseCode) {
        self.refused.set(Some(code));
    }

    /// Why the reader refused the input, if it did.
    pub fn refusal(&self) -> Option<CloseCode> {
        self.refused.get()
    }
}

/// The longest frame header: 2 bytes, an 8-byte length, a 4-byte mask.
const MAX_HEAD: usize = 14;

/// Follows the frame boundaries of a client's byte stream, header by header (RFC 6455 §5.2).
/// It keeps only the header being read and how much payload is left: the decoder does the rest.
#[derive(Debug)]
pub struct FrameScan {
    max_payload: u64,
    /// Payload bytes of the current frame still to come.
    payload_left: u64,
    head: [u8; MAX_HEAD],
    head_len: u8,
}

/// What a scan of some input found.
#[derive(Debug, PartialEq, Eq)]
pub enum Scanned {
    /// The first `len` bytes may be passed on; they complete `frames` frames.
    Pass { len: usize, frames: u32 },
    /// A frame header announces more than the frame limit.
    TooLarge,
}

impl FrameScan {
    pub fn new(max_frame_bytes: usize) -> Self {
        Self {
            max_payload: max_frame_bytes as u64,
            payload_left: 0,
            head: [0; MAX_HEAD],
            head_len: 0,
        }
    }

    /// Scans `input` up to the end of its `room`-th completed frame (or all of it).
    pub fn scan(&mut self, input: &[u8], room: u32) -> Scanned {
        let mut at = 0;
        let mut frames = 0;
        while at < input.len() && frames < room {
            if self.payload_left > 0 {
                let take = self.payload_left.min((input.len() - at) as u64);
                self.payload_left -= take;
                at += take as usize;
                if self.payload_left == 0 {
                    frames += 1;
                }
                continue;
            }
            self.head[usize::from(self.head_len)] = input[at];
            self.head_len += 1;
            at += 1;
            let head = &self.head[..usize::from(self.head_len)];
            let Some((head_len, payload)) = parse_head(head) else {
                continue;
            };
            if usize::from(self.head_len) < head_len {
                continue;
            }
            self.head_len = 0;
            if payload > self.max_payload {
                return Scanned::TooLarge;
            }
            self.payload_left = payload;
            if payload == 0 {
                frames += 1;
            }
        }
        Scanned::Pass { len: at, frames }
    }
}

/// A frame header's full length and announced payload length, once enough of it is known.
fn parse_head(head: &[u8]) -> Option<(usize, u64)> {
    let second = *head.get(1)?;
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    let (extended, len) = match second & 0x7F {
        126 => (2, None),
        127 => (8, None),
        len => (0, Some(u64::from(len))),
    };
    let head_len = 2 + extended + mask;
    let len = match len {
        Some(len) => len,
        None => {
            let bytes = head.get(2..2 + extended)?;
            bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
        }
    };
    Some((head_len, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame header for a payload of `len` bytes.
    fn head(len: u64) -> Vec<u8> {
        let mut h = vec![0x81];
        if len < 126 {
            h.push(0x80 | len as u8);
        } else if len <= u64::from(u16::MAX) {
            h.push(0x80 | 126);
            h.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            h.push(0x80 | 127);
            h.extend_from_slice(&len.to_be_bytes());
        }
        h.extend_from_slice(&[1, 2, 3, 4]);
        h
    }

    fn frame(len: usize) -> Vec<u8> {
        let mut f = head(len as u64);
        f.extend(std::iter::repeat_n(b'x', len));
        f
    }

    #[test]
    fn frames_are_counted_across_any_split_of_the_input() {
        let lens = [0, 5, 125, 126, 300, 65_535, 65_536];
        let wire: Vec<u8> = lens.iter().flat_map(|&len| frame(len)).collect();
        for piece in [1, 2, 3, 7, 13, 4096, wire.len()] {
            let mut scan = FrameScan::new(65_536);
            let mut frames = 0;
            for chunk in wire.chunks(piece) {
                match scan.scan(chunk, u32::MAX) {
                    Scanned::Pass { len, frames: n } => {
                        assert_eq!(len, chunk.len(), "all of it passes");
                        frames += n;
                    }
                    Scanned::TooLarge => panic!("no frame is over the limit"),
                }
            }
            assert_eq!(frames, lens.len() as u32, "pieces of {piece}");
        }
    }

    #[test]
    fn a_header_over_the_limit_is_refused_before_its_payload() {
        for len in [65_537, 100 << 20, 1 << 40, u64::MAX] {
            let mut scan = FrameScan::new(65_536);
            // A whole frame first, then only the header: no payload byte is needed to refuse.
            let mut input = frame(10);
            input.extend(head(len));
            assert_eq!(scan.scan(&input, u32::MAX), Scanned::TooLarge, "{len}");
        }
    }

    #[test]
    fn the_scan_stops_after_the_frames_there_is_room_for() {
        let wire: Vec<u8> = (0..5).flat_map(|_| frame(3)).collect();
        let one = frame(3).len();
        let mut scan = FrameScan::new(100);
        assert_eq!(
            scan.scan(&wire, 2),
            Scanned::Pass {
                len: 2 * one,
                frames: 2
            }
        );
        assert_eq!(
            scan.scan(&wire[2 * one..], 10),
            Scanned::Pass {
                len: 3 * one,
                frames: 3
            }
        );
    }

    #[test]
    fn the_backlog_bounds_what_may_be_read() {
        let inflow = Inflow::default();
        inflow.taken(MAX_BACKLOG);
        assert_eq!(inflow.room(), 0);
        inflow.finished();
        assert_eq!(inflow.room(), 1);
    }
}
