//! Command APDU decoding (ISO 7816-4 §5.1): short and extended Lc/Le, the four cases.

use crate::status::Sw;

/// One decoded command APDU, borrowing its data from the raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command<'a> {
    /// Class byte (bit 0x10 = command chaining).
    pub cla: u8,
    /// Instruction byte.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// Command data (empty when Lc is absent).
    pub data: &'a [u8],
    /// Ne, the maximum response length the host accepts; `None` when Le is absent.
    pub ne: Option<usize>,
    /// Whether Lc/Le used the extended (three-byte / two-byte) form.
    pub extended: bool,
}

/// CLA bit that marks a command as "not the last of a chain".
pub const CLA_CHAINING: u8 = 0x10;

impl<'a> Command<'a> {
    /// Decodes a command APDU; a length that fits none of the ISO cases is `6700`.
    pub fn parse(raw: &'a [u8]) -> Result<Self, Sw> {
        let (header, body) = raw.split_at_checked(4).ok_or(Sw::WRONG_LENGTH)?;
        let [cla, ins, p1, p2] = <[u8; 4]>::try_from(header).map_err(|_| Sw::WRONG_LENGTH)?;
        let cmd = |data: &'a [u8], ne: Option<usize>, extended: bool| Command { cla, ins, p1, p2, data, ne, extended };
        match body {
            // Case 1: header only.
            [] => Ok(cmd(&[], None, false)),
            // Case 2 short: Le alone.
            [le] => Ok(cmd(&[], Some(short_ne(*le)), false)),
            // Extended forms start with a zero byte.
            [0, rest @ ..] if rest.len() >= 2 => {
                let lc_or_le = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                let after = &rest[2..];
                if after.is_empty() {
                    // Case 2 extended.
                    return Ok(cmd(&[], Some(extended_ne(lc_or_le)), true));
                }
                if lc_or_le == 0 {
                    return Err(Sw::WRONG_LENGTH);
                }
                let data = after.get(..lc_or_le).ok_or(Sw::WRONG_LENGTH)?;
                match &after[lc_or_le..] {
                    [] => Ok(cmd(data, None, true)),
                    [a, b] => Ok(cmd(data, Some(extended_ne(usize::from(u16::from_be_bytes([*a, *b])))), true)),
                    _ => Err(Sw::WRONG_LENGTH),
                }
            }
            [lc, rest @ ..] if *lc != 0 => {
                let lc = usize::from(*lc);
                let data = rest.get(..lc).ok_or(Sw::WRONG_LENGTH)?;
                match &rest[lc..] {
                    [] => Ok(cmd(data, None, false)),
                    [le] => Ok(cmd(data, Some(short_ne(*le)), false)),
                    _ => Err(Sw::WRONG_LENGTH),
                }
            }
            _ => Err(Sw::WRONG_LENGTH),
        }
    }

    /// Whether this command announces that more of the chain follows.
    pub fn is_chained(&self) -> bool {
        self.cla & CLA_CHAINING != 0
    }
}

fn short_ne(le: u8) -> usize {
    if le == 0 { 256 } else { usize::from(le) }
}

fn extended_ne(le: usize) -> usize {
    if le == 0 { 65536 } else { le }
}

/// Builds the raw bytes of a command APDU, choosing the short form when it fits.
///
/// Tests and the harness use it to talk to the card; `ne` of 256 (short) or 65536 (extended) is
/// encoded as Le = 00.
pub fn build(cla: u8, ins: u8, p1: u8, p2: u8, data: &[u8], ne: Option<usize>) -> Vec<u8> {
    let mut out = vec![cla, ins, p1, p2];
    let extended = data.len() > 255 || ne.is_some_and(|n| n > 256);
    if extended {
        out.push(0);
        if !data.is_empty() {
            out.extend_from_slice(&(data.len() as u16).to_be_bytes());
            out.extend_from_slice(data);
        }
        if let Some(n) = ne {
            out.extend_from_slice(&((n % 65536) as u16).to_be_bytes());
        }
    } else {
        if !data.is_empty() {
            out.push(data.len() as u8);
            out.extend_from_slice(data);
        }
        if let Some(n) = ne {
            out.push((n % 256) as u8);
        }
    }
    out
}
