//! BER-TLV as PIV uses it (SP 800-73-4 Part 1 §3, ISO 7816-4 §5.2): multi-byte tags such as
//! `5FC102`, one-to-four-byte lengths. Tags are carried as `u32` in their transmitted byte order
//! (`0x5FC102`, `0x7F49`, `0x7C`).

use thiserror::Error;

/// Why a byte string is not well-formed BER-TLV.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TlvError {
    /// The data ended inside a tag, a length or a value.
    #[error("TLV data is truncated")]
    Truncated,
    /// A length form this card does not accept (indefinite, or more than three length bytes).
    #[error("unsupported TLV length encoding")]
    BadLength,
    /// A tag longer than three bytes.
    #[error("TLV tag is too long")]
    BadTag,
}

/// One decoded data object, borrowing its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The tag in transmitted byte order.
    pub tag: u32,
    /// The value bytes.
    pub value: &'a [u8],
}

/// Reads one TLV from the front of `data`; returns it and the rest.
pub fn read(data: &[u8]) -> Result<(Tlv<'_>, &[u8]), TlvError> {
    let (&first, mut rest) = data.split_first().ok_or(TlvError::Truncated)?;
    let mut tag = u32::from(first);
    if first & 0x1F == 0x1F {
        let mut count = 0;
        loop {
            let (&b, r) = rest.split_first().ok_or(TlvError::Truncated)?;
            rest = r;
            count += 1;
            if count > 2 {
                return Err(TlvError::BadTag);
            }
            tag = (tag << 8) | u32::from(b);
            if b & 0x80 == 0 {
                break;
            }
        }
    }
    let (&len0, r) = rest.split_first().ok_or(TlvError::Truncated)?;
    rest = r;
    let len = match len0 {
        0x00..=0x7F => usize::from(len0),
        0x81..=0x83 => {
            let n = usize::from(len0 & 0x7F);
            let (bytes, r) = rest.split_at_checked(n).ok_or(TlvError::Truncated)?;
            rest = r;
            bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
        }
        _ => return Err(TlvError::BadLength),
    };
    let (value, rest) = rest.split_at_checked(len).ok_or(TlvError::Truncated)?;
    Ok((Tlv { tag, value }, rest))
}

/// Decodes a concatenation of TLVs that must fill `data` exactly.
pub fn read_all(mut data: &[u8]) -> Result<Vec<Tlv<'_>>, TlvError> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let (tlv, rest) = read(data)?;
        out.push(tlv);
        data = rest;
    }
    Ok(out)
}

/// Finds the first TLV with `tag` in a well-formed concatenation.
pub fn find(data: &[u8], tag: u32) -> Result<Option<&[u8]>, TlvError> {
    Ok(read_all(data)?.into_iter().find(|t| t.tag == tag).map(|t| t.value))
}

/// Appends the encoding of `tag` (one to three bytes, leading zero bytes dropped).
pub fn push_tag(out: &mut Vec<u8>, tag: u32) {
    let bytes = tag.to_be_bytes();
    let skip = bytes.iter().take(3).take_while(|b| **b == 0).count();
    out.extend_from_slice(&bytes[skip..]);
}

/// Appends a BER length (short form below 128, else 81/82/83 forms).
pub fn push_len(out: &mut Vec<u8>, len: usize) {
    match len {
        0..=0x7F => out.push(len as u8),
        0x80..=0xFF => out.extend_from_slice(&[0x81, len as u8]),
        0x100..=0xFFFF => {
            out.push(0x82);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(0x83);
            out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
        }
    }
}

/// Encodes one TLV.
pub fn encode(tag: u32, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 6);
    push(&mut out, tag, value);
    out
}

/// Appends one TLV to `out`.
pub fn push(out: &mut Vec<u8>, tag: u32, value: &[u8]) {
    push_tag(out, tag);
    push_len(out, value.len());
    out.extend_from_slice(value);
}
