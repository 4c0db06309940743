//! Command and response APDUs (ISO/IEC 7816-4 §5.1): the byte encodings, in short and extended
//! form, and command chaining for data that does not fit one command.
//!
//! Command data may hold a PIN or a key, so it lives in a zeroizing buffer and is never printed
//! by `Debug`.

use std::fmt;

use ukey_api::{Error, Result};
use zeroize::Zeroizing;

use crate::status::StatusWord;

/// Longest data field (Lc) of a short APDU.
pub const MAX_SHORT_LC: usize = 255;
/// Largest Le of a short APDU (encoded as `00`).
pub const MAX_SHORT_LE: usize = 256;
/// Longest data field (Lc) of an extended APDU.
pub const MAX_EXTENDED_LC: usize = 65_535;
/// Largest Le of an extended APDU (encoded as `00 00`).
pub const MAX_EXTENDED_LE: usize = 65_536;

/// The CLA bit that says "more commands of this chain follow" (ISO 7816-4 §5.1.1.1).
pub const CLA_CHAINING: u8 = 0x10;

/// How many response bytes a command asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Le {
    /// No Le field: the command expects no response data.
    None,
    /// As many bytes as the card has, up to the largest Le of the encoding used (Le = `00`).
    Max,
    /// Exactly this many bytes (1..=65536).
    Exact(usize),
}

/// One command APDU, before encoding.
#[derive(Clone, PartialEq, Eq)]
pub struct Command {
    /// Class byte (without the chaining bit; [`Command::chain`] sets it).
    pub cla: u8,
    /// Instruction byte.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// Data field; wiped on drop because it may carry a PIN or key.
    pub data: Zeroizing<Vec<u8>>,
    /// Expected response length.
    pub le: Le,
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Command({:02X} {:02X} {:02X} {:02X}, {} data bytes, le {:?})",
            self.cla,
            self.ins,
            self.p1,
            self.p2,
            self.data.len(),
            self.le
        )
    }
}

impl Command {
    /// A command without data and without Le (case 1).
    pub fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Self {
        Command { cla, ins, p1, p2, data: Zeroizing::new(Vec::new()), le: Le::None }
    }

    /// Sets the data field.
    pub fn with_data(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.data = Zeroizing::new(data.into());
        self
    }

    /// Sets Le.
    pub fn with_le(mut self, le: Le) -> Self {
        self.le = le;
        self
    }

    /// Encodes the command. `extended` picks the extended length form when the data or Le does
    /// not fit the short form; a command that fits stays short (every card accepts those).
    pub fn encode(&self, extended: bool) -> Result<Zeroizing<Vec<u8>>> {
        let lc = self.data.len();
        let le = match self.le {
            Le::None => None,
            Le::Max => Some(if extended && lc > MAX_SHORT_LC { MAX_EXTENDED_LE } else { MAX_SHORT_LE }),
            Le::Exact(n) if (1..=MAX_EXTENDED_LE).contains(&n) => Some(n),
            Le::Exact(n) => return Err(Error::InvalidInput(format!("APDU Le {n} is outside 1..=65536"))),
        };
        let needs_extended = lc > MAX_SHORT_LC || le.is_some_and(|n| n > MAX_SHORT_LE);
        if needs_extended && !extended {
            return Err(Error::NotSupported(format!(
                "a {lc}-byte command needs extended APDUs, which this card or reader does not offer"
            )));
        }
        if lc > MAX_EXTENDED_LC {
            return Err(Error::InvalidInput(format!("APDU data of {lc} bytes exceeds the 65535-byte maximum")));
        }
        let mut out = Zeroizing::new(Vec::with_capacity(lc + 9));
        out.extend_from_slice(&[self.cla, self.ins, self.p1, self.p2]);
        if needs_extended {
            if lc > 0 {
                out.push(0x00);
                out.extend_from_slice(&(lc as u16).to_be_bytes());
                out.extend_from_slice(&self.data);
            }
            if let Some(n) = le {
                if lc == 0 {
                    out.push(0x00);
                }
                // 65536 wraps to 00 00, which is how the standard writes it.
                out.extend_from_slice(&((n % MAX_EXTENDED_LE) as u16).to_be_bytes());
            }
        } else {
            if lc > 0 {
                out.push(lc as u8);
                out.extend_from_slice(&self.data);
            }
            if let Some(n) = le {
                out.push((n % MAX_SHORT_LE) as u8);
            }
        }
        Ok(out)
    }

    /// Splits the command into a chain of commands carrying at most `chunk` data bytes each
    /// (ISO 7816-4 §5.1.1.1): every link but the last has the chaining bit set in CLA, and only
    /// the last carries Le. A command that fits is returned alone, unchanged.
    pub fn chain(&self, chunk: usize) -> Vec<Command> {
        let chunk = chunk.max(1);
        if self.data.len() <= chunk {
            return vec![self.clone()];
        }
        let pieces: Vec<&[u8]> = self.data.chunks(chunk).collect();
        let last = pieces.len() - 1;
        pieces
            .into_iter()
            .enumerate()
            .map(|(i, piece)| Command {
                cla: if i < last { self.cla | CLA_CHAINING } else { self.cla },
                ins: self.ins,
                p1: self.p1,
                p2: self.p2,
                data: Zeroizing::new(piece.to_vec()),
                le: if i < last { Le::None } else { self.le },
            })
            .collect()
    }
}

/// One response APDU: data and status word.
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    /// Response data; wiped on drop (it may carry decrypted or private material).
    pub data: Zeroizing<Vec<u8>>,
    /// SW1 SW2.
    pub sw: StatusWord,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Response({} data bytes, SW {})", self.data.len(), self.sw)
    }
}

impl Response {
    /// Splits raw response bytes into data and status word; fewer than two bytes is a broken card
    /// or reader.
    pub fn parse(raw: &[u8]) -> Result<Self> {
        match raw.len().checked_sub(2) {
            Some(n) => {
                let (data, sw) = raw.split_at(n);
                let sw = StatusWord::new(sw.first().copied().unwrap_or(0), sw.get(1).copied().unwrap_or(0));
                Ok(Response { data: Zeroizing::new(data.to_vec()), sw })
            }
            None => Err(Error::Device(format!(
                "the card answered {} byte(s), too short for a status word; remove and reinsert it",
                raw.len()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn hex(bytes: &[u8]) -> String {
        hex::encode_upper(bytes)
    }

    #[test]
    fn case1_has_header_only() {
        assert_eq!(hex(&Command::new(0x00, 0x20, 0x00, 0x80).encode(false).unwrap()), "00200080");
    }

    #[test]
    fn case2_short_max_is_00() {
        let c = Command::new(0x00, 0xC0, 0, 0).with_le(Le::Max);
        assert_eq!(hex(&c.encode(false).unwrap()), "00C0000000");
        let c = Command::new(0x00, 0xC0, 0, 0).with_le(Le::Exact(0x1A));
        assert_eq!(hex(&c.encode(true).unwrap()), "00C000001A");
    }

    #[test]
    fn case3_and_case4_short() {
        let c = Command::new(0x00, 0xA4, 0x04, 0x00).with_data(vec![0xA0, 0x00]);
        assert_eq!(hex(&c.encode(false).unwrap()), "00A4040002A000");
        let c = c.with_le(Le::Max);
        assert_eq!(hex(&c.encode(false).unwrap()), "00A4040002A00000");
    }

    #[test]
    fn extended_forms() {
        let data = vec![0xAB; 300];
        let c = Command::new(0x00, 0x87, 0x07, 0x9A).with_data(data.clone()).with_le(Le::Max);
        let enc = c.encode(true).unwrap();
        assert_eq!(hex(&enc[..7]), "0087079A00012C");
        assert_eq!(enc.len(), 4 + 3 + 300 + 2);
        assert_eq!(hex(&enc[enc.len() - 2..]), "0000");
        // Case 2 extended: 00 then two Le bytes.
        let c = Command::new(0x00, 0xCB, 0x3F, 0xFF).with_le(Le::Exact(1000));
        assert_eq!(hex(&c.encode(true).unwrap()), "00CB3FFF0003E8");
        // Short data with an extended Le stays consistent: all-extended.
        let c = Command::new(0x00, 0xCB, 0x3F, 0xFF).with_data(vec![1]).with_le(Le::Exact(65536));
        assert_eq!(hex(&c.encode(true).unwrap()), "00CB3FFF000001010000");
    }

    #[test]
    fn extended_needed_but_absent_is_refused() {
        let c = Command::new(0, 0xDB, 0x3F, 0xFF).with_data(vec![0; 256]);
        assert!(matches!(c.encode(false), Err(Error::NotSupported(_))));
        let c = Command::new(0, 0xDB, 0x3F, 0xFF).with_le(Le::Exact(0));
        assert!(matches!(c.encode(true), Err(Error::InvalidInput(_))));
        let c = Command::new(0, 0xDB, 0x3F, 0xFF).with_data(vec![0; 65_536]);
        assert!(c.encode(true).is_err());
    }

    #[test]
    fn chaining_splits_data_and_keeps_le_for_last() {
        let c = Command::new(0x00, 0xDB, 0x3F, 0xFF).with_data(vec![7; 600]).with_le(Le::Max);
        let chain = c.chain(255);
        assert_eq!(chain.len(), 3);
        assert_eq!(chain[0].cla, 0x10);
        assert_eq!(chain[1].cla, 0x10);
        assert_eq!(chain[2].cla, 0x00);
        assert_eq!(chain.iter().map(|c| c.data.len()).collect::<Vec<_>>(), vec![255, 255, 90]);
        assert_eq!(chain[0].le, Le::None);
        assert_eq!(chain[2].le, Le::Max);
        assert_eq!(c.clone().chain(1000), vec![c]);
    }

    #[test]
    fn response_parse() {
        let r = Response::parse(&[1, 2, 0x90, 0x00]).unwrap();
        assert_eq!(&r.data[..], &[1, 2]);
        assert_eq!(r.sw, StatusWord::SUCCESS);
        assert!(Response::parse(&[0x90]).is_err());
        assert!(Response::parse(&[]).is_err());
    }

    /// The card's side of ISO 7816-4 §5.1: header, Lc and data, Le, in short or extended form.
    fn decode(bytes: &[u8]) -> Option<(Vec<u8>, Vec<u8>, Option<usize>)> {
        let (header, body) = bytes.split_at_checked(4)?;
        let short_le = |b: u8| if b == 0 { MAX_SHORT_LE } else { usize::from(b) };
        let ext = |hi: u8, lo: u8| usize::from(u16::from_be_bytes([hi, lo]));
        let ext_le = |hi: u8, lo: u8| if hi == 0 && lo == 0 { MAX_EXTENDED_LE } else { ext(hi, lo) };
        let (data, le) = match body {
            [] => (vec![], None),
            [le] => (vec![], Some(short_le(*le))),
            [0, hi, lo] => (vec![], Some(ext_le(*hi, *lo))),
            [0, hi, lo, rest @ ..] if rest.len() == ext(*hi, *lo) => (rest.to_vec(), None),
            [0, hi, lo, rest @ ..] if rest.len() == ext(*hi, *lo) + 2 => {
                let (data, le) = rest.split_at(ext(*hi, *lo));
                (data.to_vec(), Some(ext_le(le[0], le[1])))
            }
            [lc, rest @ ..] if rest.len() == usize::from(*lc) => (rest.to_vec(), None),
            [lc, rest @ ..] if rest.len() == usize::from(*lc) + 1 => {
                let (data, le) = rest.split_at(usize::from(*lc));
                (data.to_vec(), Some(short_le(le[0])))
            }
            _ => return None,
        };
        Some((header.to_vec(), data, le))
    }

    proptest! {
        /// Encoding, short or extended, decodes back to the same command (the `apdu` fuzz
        /// target checks the same on arbitrary input).
        #[test]
        fn encode_then_decode_is_identity(
            header in proptest::array::uniform4(any::<u8>()),
            data in proptest::collection::vec(any::<u8>(), 0..400),
            le in prop_oneof![
                Just(Le::None),
                Just(Le::Max),
                (1usize..=MAX_EXTENDED_LE).prop_map(Le::Exact),
            ],
            extended in any::<bool>(),
        ) {
            let [cla, ins, p1, p2] = header;
            let command = Command::new(cla, ins, p1, p2).with_data(data.clone()).with_le(le);
            let Ok(encoded) = command.encode(extended) else {
                prop_assert!(!extended && (data.len() > MAX_SHORT_LC || matches!(le, Le::Exact(n) if n > MAX_SHORT_LE)));
                return Ok(());
            };
            let (got_header, got_data, got_le) = decode(&encoded).expect("an encoded APDU decodes");
            prop_assert_eq!(got_header, header.to_vec());
            prop_assert_eq!(got_data, data);
            match le {
                Le::None => prop_assert_eq!(got_le, None),
                Le::Exact(n) => prop_assert_eq!(got_le, Some(n)),
                Le::Max => prop_assert!(got_le == Some(MAX_SHORT_LE) || got_le == Some(MAX_EXTENDED_LE)),
            }
        }

        /// Chaining keeps every data byte in order and puts Le on the last link only.
        #[test]
        fn chaining_keeps_data(data in proptest::collection::vec(any::<u8>(), 0..700), chunk in 0usize..300) {
            let command = Command::new(0x00, 0xDB, 0x3F, 0xFF).with_data(data.clone()).with_le(Le::Max);
            let links = command.chain(chunk);
            let joined: Vec<u8> = links.iter().flat_map(|l| l.data.iter().copied()).collect();
            prop_assert_eq!(joined, data);
            let (last, rest) = links.split_last().expect("one link at least");
            prop_assert_eq!(last.le, Le::Max);
            prop_assert_eq!(last.cla, 0x00);
            for link in rest {
                prop_assert_eq!(link.le, Le::None);
                prop_assert_eq!(link.cla, CLA_CHAINING);
                prop_assert!(!link.data.is_empty() && link.data.len() <= chunk.max(1));
            }
        }
    }

    #[test]
    fn debug_hides_data() {
        let c = Command::new(0, 0x20, 0, 0x80).with_data(b"123456\xff\xff".to_vec());
        assert!(!format!("{c:?}").contains("31"));
    }
}
