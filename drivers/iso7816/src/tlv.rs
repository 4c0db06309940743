//! BER-TLV (ISO/IEC 7816-4 §5.2, the subset smart cards use): multi-byte tags, definite lengths
//! in short and long form. Parsing is strict and bounded: a truncated or oversized element is an
//! error that says so, never a panic or a read past the buffer.

use ukey_api::Error;

/// Longest tag accepted (bytes); cards use at most three.
const MAX_TAG_LEN: usize = 4;
/// Longest length field accepted after the `8x` byte; four bytes cover anything a card holds.
const MAX_LEN_BYTES: usize = 4;

/// What is wrong with a TLV encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlvError {
    /// The data ended inside a tag, length or value.
    #[error("TLV data ends early: {0}")]
    Truncated(&'static str),
    /// The tag is longer than any card uses.
    #[error("TLV tag longer than {MAX_TAG_LEN} bytes")]
    TagTooLong,
    /// Indefinite length (`80`) or a length field of more than four bytes.
    #[error("TLV length form {0:#04X} is not allowed")]
    BadLength(u8),
    /// A required element is missing.
    #[error("TLV element {0:X} is missing")]
    Missing(u32),
}

impl From<TlvError> for Error {
    fn from(e: TlvError) -> Self {
        Error::Device(format!("the card sent malformed data ({e}); it may be damaged or not the expected application"))
    }
}

/// One element: its tag (bytes packed big-endian into a `u32`, so `5F C1 05` is `0x5FC105`) and
/// its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The tag.
    pub tag: u32,
    /// The value bytes.
    pub value: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// Whether the tag marks a constructed element (its value is more TLVs).
    pub fn is_constructed(&self) -> bool {
        let first = if self.tag > 0xFF_FFFF {
            self.tag >> 24
        } else if self.tag > 0xFFFF {
            self.tag >> 16
        } else if self.tag > 0xFF {
            self.tag >> 8
        } else {
            self.tag
        };
        first & 0x20 != 0
    }

    /// The elements inside a constructed element.
    pub fn children(&self) -> Result<Vec<Tlv<'a>>, TlvError> {
        parse_all(self.value)
    }
}

/// Reads one element from the front of `data`; returns it and the rest.
pub fn parse_one(data: &[u8]) -> Result<(Tlv<'_>, &[u8]), TlvError> {
    let (&first, mut rest) = data.split_first().ok_or(TlvError::Truncated("no tag"))?;
    let mut tag = u32::from(first);
    if first & 0x1F == 0x1F {
        let mut len = 1;
        loop {
            let (&b, r) = rest.split_first().ok_or(TlvError::Truncated("inside a multi-byte tag"))?;
            rest = r;
            len += 1;
            if len > MAX_TAG_LEN {
                return Err(TlvError::TagTooLong);
            }
            tag = (tag << 8) | u32::from(b);
            if b & 0x80 == 0 {
                break;
            }
        }
    }
    let (&l, r) = rest.split_first().ok_or(TlvError::Truncated("no length"))?;
    rest = r;
    let len = if l < 0x80 {
        usize::from(l)
    } else {
        let n = usize::from(l & 0x7F);
        if n == 0 || n > MAX_LEN_BYTES {
            return Err(TlvError::BadLength(l));
        }
        if rest.len() < n {
            return Err(TlvError::Truncated("inside a long-form length"));
        }
        let (bytes, r) = rest.split_at(n);
        rest = r;
        bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    if rest.len() < len {
        return Err(TlvError::Truncated("value shorter than its length"));
    }
    let (value, rest) = rest.split_at(len);
    Ok((Tlv { tag, value }, rest))
}

/// Reads every element of `data`; fails if any is malformed.
pub fn parse_all(mut data: &[u8]) -> Result<Vec<Tlv<'_>>, TlvError> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let (tlv, rest) = parse_one(data)?;
        out.push(tlv);
        data = rest;
    }
    Ok(out)
}

/// The value of the first element with `tag` among `data`'s top-level elements.
pub fn find(data: &[u8], tag: u32) -> Result<Option<&[u8]>, TlvError> {
    Ok(parse_all(data)?.into_iter().find(|t| t.tag == tag).map(|t| t.value))
}

/// Like [`find`], but a missing element is an error.
pub fn require(data: &[u8], tag: u32) -> Result<&[u8], TlvError> {
    find(data, tag)?.ok_or(TlvError::Missing(tag))
}

/// Appends the tag bytes (no leading zero bytes).
pub fn encode_tag(tag: u32, out: &mut Vec<u8>) {
    let bytes = tag.to_be_bytes();
    let skip = bytes.iter().take(3).take_while(|b| **b == 0).count();
    out.extend_from_slice(bytes.get(skip..).unwrap_or(&bytes));
}

/// Appends a definite length in the shortest form.
pub fn encode_len(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
        return;
    }
    let bytes = (len as u64).to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    let significant = bytes.get(skip..).unwrap_or(&[]);
    out.push(0x80 | significant.len() as u8);
    out.extend_from_slice(significant);
}

/// Appends one element.
pub fn encode(tag: u32, value: &[u8], out: &mut Vec<u8>) {
    encode_tag(tag, out);
    encode_len(value.len(), out);
    out.extend_from_slice(value);
}

/// One element as a new vector.
pub fn encoded(tag: u32, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 8);
    encode(tag, value, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn multi_byte_tags_and_long_lengths() {
        let mut v = Vec::new();
        encode(0x5FC105, &[0xAA; 300], &mut v);
        assert_eq!(&v[..6], &[0x5F, 0xC1, 0x05, 0x82, 0x01, 0x2C]);
        let (tlv, rest) = parse_one(&v).unwrap();
        assert_eq!(tlv.tag, 0x5FC105);
        assert_eq!(tlv.value.len(), 300);
        assert!(rest.is_empty());
        assert_eq!(encoded(0x7F49, &[1]), vec![0x7F, 0x49, 0x01, 0x01]);
        assert_eq!(encoded(0x53, &[0; 0x80])[..3], [0x53, 0x81, 0x80]);
    }

    #[test]
    fn constructed_children() {
        let inner = [encoded(0x82, &[]), encoded(0x81, &[1, 2])].concat();
        let outer = encoded(0x7C, &inner);
        let (tlv, _) = parse_one(&outer).unwrap();
        assert!(tlv.is_constructed());
        let kids = tlv.children().unwrap();
        assert_eq!(kids.len(), 2);
        assert_eq!(kids[1].value, &[1, 2]);
        assert!(!kids[0].is_constructed());
        assert!(Tlv { tag: 0x7F49, value: &[] }.is_constructed());
        assert_eq!(require(&inner, 0x81).unwrap(), &[1, 2]);
        assert_eq!(require(&inner, 0x99), Err(TlvError::Missing(0x99)));
    }

    #[test]
    fn garbage_is_an_error() {
        assert_eq!(parse_one(&[]), Err(TlvError::Truncated("no tag")));
        assert_eq!(parse_one(&[0x53]), Err(TlvError::Truncated("no length")));
        assert!(matches!(parse_one(&[0x53, 0x05, 1, 2]), Err(TlvError::Truncated(_))));
        assert!(matches!(parse_one(&[0x53, 0x82, 0x01]), Err(TlvError::Truncated(_))));
        assert_eq!(parse_one(&[0x53, 0x80]), Err(TlvError::BadLength(0x80)));
        assert_eq!(parse_one(&[0x53, 0x85, 0, 0, 0, 0, 1]), Err(TlvError::BadLength(0x85)));
        assert_eq!(parse_one(&[0x5F, 0xFF, 0xFF, 0xFF, 0x01, 0x00]), Err(TlvError::TagTooLong));
        assert!(matches!(parse_one(&[0x5F, 0xC1]), Err(TlvError::Truncated(_))));
        // A huge declared length never allocates or reads past the buffer.
        assert!(matches!(parse_one(&[0x53, 0x84, 0xFF, 0xFF, 0xFF, 0xFF, 1]), Err(TlvError::Truncated(_))));
    }

    proptest! {
        #[test]
        fn never_panics_on_random_bytes(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_all(&data);
        }

        /// Whatever parses re-encodes to elements that parse back the same (the `tlv` fuzz target
        /// checks this on arbitrary input; here on inputs shaped like TLV).
        #[test]
        fn accepted_input_re_encodes(data in proptest::collection::vec(
            (prop_oneof![Just(vec![0x53u8]), Just(vec![0x5F, 0xC1, 0x05]), proptest::collection::vec(any::<u8>(), 1..3)],
             proptest::collection::vec(any::<u8>(), 0..140)), 0..4)) {
            let mut bytes = Vec::new();
            for (tag, value) in &data {
                bytes.extend_from_slice(tag);
                encode_len(value.len(), &mut bytes);
                bytes.extend_from_slice(value);
            }
            if let Ok(all) = parse_all(&bytes) {
                let mut again = Vec::new();
                for t in &all {
                    encode(t.tag, t.value, &mut again);
                }
                prop_assert_eq!(parse_all(&again).unwrap(), all);
            }
        }

        #[test]
        fn round_trips(tag in prop_oneof![0u32..=0x1E, 0x5F00u32..=0x5F7F, Just(0x5FC105u32)],
                       value in proptest::collection::vec(any::<u8>(), 0..600)) {
            let enc = encoded(tag, &value);
            let (tlv, rest) = parse_one(&enc).unwrap();
            prop_assert_eq!(tlv.tag, tag);
            prop_assert_eq!(tlv.value, &value[..]);
            prop_assert!(rest.is_empty());
        }
    }
}
