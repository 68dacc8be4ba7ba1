//! The spool's frame: one record on disk.
//!
//! ```text
//! | payload length: u32 LE | CRC-32C: u32 LE | sequence number: u64 LE | payload (JSON) |
//! ```
//!
//! The CRC-32C (Castagnoli) covers the length, the sequence number and the payload, so a
//! flipped bit anywhere, including in the length, is caught. A frame cut short by a crash (a
//! torn write) ends the file before its length says: [`FrameError::Torn`]. A frame whose bytes
//! do not match its checksum is [`FrameError::Corrupt`]. Either way the reader stops there; the
//! spool truncates the segment at the last whole frame.

use std::io::Read;

/// Bytes before the payload.
pub const HEADER_BYTES: usize = 16;

/// The largest payload accepted; a larger length in a header is taken as corruption.
pub const MAX_PAYLOAD_BYTES: usize = 64 << 20;

const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The data ends inside a frame.
    #[error("torn frame: the data ends inside it")]
    Torn,
    /// The frame's bytes do not match its checksum, or its length is impossible.
    #[error("corrupt frame: {0}")]
    Corrupt(&'static str),
    #[error("cannot read the frame: {0}")]
    Io(#[from] std::io::Error),
}

/// A frame read back: its sequence number and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub seq: u64,
    pub payload: Vec<u8>,
}

impl Frame {
    /// Bytes this frame takes on disk.
    pub fn encoded_len(&self) -> u64 {
        (HEADER_BYTES + self.payload.len()) as u64
    }
}

fn checksum(length: &[u8; 4], seq: &[u8; 8], payload: &[u8]) -> u32 {
    let mut digest = CRC32C.digest();
    digest.update(length);
    digest.update(seq);
    digest.update(payload);
    digest.finalize()
}

/// Appends the frame of (`seq`, `payload`) to `out`. The payload must not exceed
/// [`MAX_PAYLOAD_BYTES`] (the caller checks; see [`fits`]).
pub fn encode(seq: u64, payload: &[u8], out: &mut Vec<u8>) {
    let length = u32::try_from(payload.len())
        .unwrap_or(u32::MAX)
        .to_le_bytes();
    let seq = seq.to_le_bytes();
    let crc = checksum(&length, &seq, payload);
    out.reserve(HEADER_BYTES + payload.len());
    out.extend_from_slice(&length);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&seq);
    out.extend_from_slice(payload);
}

/// Whether a payload is small enough for a frame.
pub fn fits(payload: &[u8]) -> bool {
    payload.len() <= MAX_PAYLOAD_BYTES
}

/// Reads as many bytes as `buf` holds, or fewer at the end of the data; returns how many.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Reads the next frame; `Ok(None)` at a clean end of the data (between frames).
pub fn read_frame(reader: &mut impl Read) -> Result<Option<Frame>, FrameError> {
    let mut header = [0u8; HEADER_BYTES];
    match read_up_to(reader, &mut header)? {
        0 => return Ok(None),
        n if n < HEADER_BYTES => return Err(FrameError::Torn),
        _ => {}
    }
    let mut length = [0u8; 4];
    let mut crc = [0u8; 4];
    let mut seq = [0u8; 8];
    length.copy_from_slice(&header[0..4]);
    crc.copy_from_slice(&header[4..8]);
    seq.copy_from_slice(&header[8..16]);
    let payload_len = u32::from_le_bytes(length) as usize;
    if payload_len > MAX_PAYLOAD_BYTES {
        return Err(FrameError::Corrupt("its length is larger than any frame"));
    }
    let mut payload = vec![0u8; payload_len];
    if read_up_to(reader, &mut payload)? < payload_len {
        return Err(FrameError::Torn);
    }
    if checksum(&length, &seq, &payload) != u32::from_le_bytes(crc) {
        return Err(FrameError::Corrupt("its checksum does not match"));
    }
    Ok(Some(Frame {
        seq: u64::from_le_bytes(seq),
        payload,
    }))
}

/// Decodes every whole frame at the start of `bytes`: the frames, and the error that stopped
/// the reading (with the offset where it starts), if any.
pub fn decode_all(bytes: &[u8]) -> (Vec<Frame>, Option<(u64, FrameError)>) {
    let mut reader = bytes;
    let mut frames = Vec::new();
    let mut offset = 0;
    loop {
        match read_frame(&mut reader) {
            Ok(Some(frame)) => {
                offset += frame.encoded_len();
                frames.push(frame);
            }
            Ok(None) => return (frames, None),
            Err(e) => return (frames, Some((offset, e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encoded(frames: &[(u64, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (seq, payload) in frames {
            encode(*seq, payload, &mut out);
        }
        out
    }

    proptest! {
        #[test]
        fn frames_round_trip(frames in proptest::collection::vec((any::<u64>(), proptest::collection::vec(any::<u8>(), 0..300)), 0..20)) {
            let bytes = encoded(&frames);
            let (decoded, error) = decode_all(&bytes);
            prop_assert!(error.is_none());
            let decoded: Vec<(u64, Vec<u8>)> = decoded.into_iter().map(|f| (f.seq, f.payload)).collect();
            prop_assert_eq!(decoded, frames);
        }

        #[test]
        fn a_flipped_bit_is_detected(
            frames in proptest::collection::vec((any::<u64>(), proptest::collection::vec(any::<u8>(), 1..100)), 1..8),
            position in any::<proptest::sample::Index>(),
            bit in 0u8..8,
        ) {
            let mut bytes = encoded(&frames);
            let at = position.index(bytes.len());
            bytes[at] ^= 1 << bit;
            let (decoded, error) = decode_all(&bytes);
            // Every frame before the damaged one reads back intact; the damaged one is never
            // returned as if it were good.
            prop_assert!(error.is_some(), "a flipped bit at {} went unnoticed", at);
            prop_assert!(decoded.len() < frames.len());
            for (got, (seq, payload)) in decoded.iter().zip(&frames) {
                prop_assert_eq!((got.seq, &got.payload), (*seq, payload));
            }
        }

        #[test]
        fn a_cut_anywhere_keeps_the_whole_frames_before_it(
            frames in proptest::collection::vec((any::<u64>(), proptest::collection::vec(any::<u8>(), 0..100)), 1..8),
            cut in any::<proptest::sample::Index>(),
        ) {
            let bytes = encoded(&frames);
            let cut = cut.index(bytes.len());
            let (decoded, error) = decode_all(&bytes[..cut]);
            let whole: u64 = decoded.iter().map(Frame::encoded_len).sum();
            match error {
                None => prop_assert_eq!(whole, cut as u64),
                Some((offset, e)) => {
                    prop_assert_eq!(offset, whole);
                    prop_assert!(matches!(e, FrameError::Torn), "{}", e);
                }
            }
        }
    }

    #[test]
    fn an_impossible_length_is_corruption_not_an_allocation() {
        let mut bytes = encoded(&[(1, b"abc".to_vec())]);
        bytes[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        let (decoded, error) = decode_all(&bytes);
        assert!(decoded.is_empty());
        assert!(
            matches!(error, Some((0, FrameError::Corrupt(_)))),
            "{error:?}"
        );
    }
}
