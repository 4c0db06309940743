//! ATR patterns: an answer-to-reset with a mask, the way pcsc-tools and OpenSC describe card
//! models. A pattern matches an ATR of the same length whose bits agree wherever the mask is set.

use std::fmt;

use serde::{Serialize, Serializer};

/// The longest ATR ISO/IEC 7816-3 allows (TS plus 32 bytes); longer patterns are typos.
pub const MAX_ATR_LEN: usize = 33;

/// Why a pattern text is not a valid ATR pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AtrPatternError {
    /// Nothing but separators.
    #[error("the pattern is empty")]
    Empty,
    /// A byte is not two hex digits (or `.` wildcards).
    #[error("byte {index} `{text}` is not two hex digits or `.` wildcards (write e.g. `3B`, `..` or `0.`)")]
    BadByte {
        /// 1-based position of the byte in the pattern.
        index: usize,
        /// The text found there.
        text: String,
    },
    /// More bytes than an ATR can have.
    #[error("{len} bytes is longer than any ATR (at most {MAX_ATR_LEN})")]
    TooLong {
        /// Number of bytes in the pattern.
        len: usize,
    },
    /// An explicit mask whose length differs from the value's.
    #[error("the mask has {mask} bytes but the value has {value}; give one mask byte per value byte")]
    MaskLength {
        /// Bytes in the value.
        value: usize,
        /// Bytes in the mask.
        mask: usize,
    },
    /// The explicit value contains wildcards (only the mask may leave bits open).
    #[error("an explicit value cannot contain `.` wildcards; put the open bits in the mask")]
    WildcardInValue,
    /// The mask ignores every bit, so the pattern would match any ATR of that length.
    #[error("the mask ignores every bit: the pattern would match every ATR of this length")]
    MatchesEverything,
}

/// An ATR pattern: value and mask of equal length. Build with [`AtrPattern::parse`] or
/// [`AtrPattern::with_mask`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AtrPattern {
    value: Vec<u8>,
    mask: Vec<u8>,
}

impl AtrPattern {
    /// Parses pcsc-tools style text: hex bytes separated by spaces or colons, `..` for any byte
    /// and `.` for any nibble (`0.` = high nibble 0, low nibble anything).
    pub fn parse(text: &str) -> Result<Self, AtrPatternError> {
        let mut value = Vec::new();
        let mut mask = Vec::new();
        for (i, token) in tokens(text).enumerate() {
            let (v, m) = parse_byte(token, true)
                .ok_or_else(|| AtrPatternError::BadByte { index: i + 1, text: token.to_string() })?;
            value.push(v);
            mask.push(m);
        }
        Self::checked(value, mask)
    }

    /// Builds a pattern from an explicit value and mask, both in hex text (OpenSC style:
    /// `3b:7f:96`, `ff:ff:00`). Value bits outside the mask are ignored.
    pub fn with_mask(value_text: &str, mask_text: &str) -> Result<Self, AtrPatternError> {
        let value = parse_plain(value_text)?;
        let mask = parse_plain(mask_text)?;
        if value.len() != mask.len() {
            return Err(AtrPatternError::MaskLength { value: value.len(), mask: mask.len() });
        }
        // OpenSC's tables give a real ATR as the value and blank parts of it with the mask:
        // bits outside the mask do not count, so they are cleared.
        let value = value.iter().zip(&mask).map(|(v, m)| v & m).collect();
        Self::checked(value, mask)
    }

    fn checked(value: Vec<u8>, mask: Vec<u8>) -> Result<Self, AtrPatternError> {
        if value.is_empty() {
            return Err(AtrPatternError::Empty);
        }
        if value.len() > MAX_ATR_LEN {
            return Err(AtrPatternError::TooLong { len: value.len() });
        }
        if mask.iter().all(|m| *m == 0) {
            return Err(AtrPatternError::MatchesEverything);
        }
        Ok(AtrPattern { value, mask })
    }

    /// True when `atr` has the pattern's length and agrees with it on every masked bit.
    pub fn matches(&self, atr: &[u8]) -> bool {
        atr.len() == self.value.len() && atr.iter().zip(&self.value).zip(&self.mask).all(|((a, v), m)| a & m == *v)
    }

    /// Number of bits the pattern fixes: when several patterns match, the one fixing the most
    /// bits describes the card best.
    pub fn specificity(&self) -> u32 {
        self.mask.iter().map(|m| m.count_ones()).sum()
    }

    /// Length in bytes of the ATRs this pattern can match.
    pub fn len(&self) -> usize {
        self.value.len()
    }

    /// Always false: an empty pattern is rejected when built.
    pub fn is_empty(&self) -> bool {
        self.value.is_empty()
    }

    /// The value bytes (bits outside the mask are zero).
    pub fn value(&self) -> &[u8] {
        &self.value
    }

    /// The mask bytes.
    pub fn mask(&self) -> &[u8] {
        &self.mask
    }
}

/// pcsc-tools style text when the mask is whole nibbles; `value/mask` hex otherwise.
impl fmt::Display for AtrPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nibble_masks = self.mask.iter().all(|m| matches!(m >> 4, 0 | 0xF) && matches!(m & 0xF, 0 | 0xF));
        if nibble_masks {
            let mut first = true;
            for (v, m) in self.value.iter().zip(&self.mask) {
                if !first {
                    f.write_str(" ")?;
                }
                first = false;
                write_nibble(f, v >> 4, m >> 4)?;
                write_nibble(f, v & 0xF, m & 0xF)?;
            }
            Ok(())
        } else {
            write!(f, "{}/{}", hex_colon(&self.value), hex_colon(&self.mask))
        }
    }
}

impl Serialize for AtrPattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

fn write_nibble(f: &mut fmt::Formatter<'_>, v: u8, m: u8) -> fmt::Result {
    if m == 0 { f.write_str(".") } else { write!(f, "{v:X}") }
}

fn hex_colon(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

fn tokens(text: &str) -> impl Iterator<Item = &str> {
    text.split([' ', ':', '\t']).filter(|t| !t.is_empty())
}

/// Parses text without wildcards (explicit value or mask).
fn parse_plain(text: &str) -> Result<Vec<u8>, AtrPatternError> {
    let mut out = Vec::new();
    for (i, token) in tokens(text).enumerate() {
        if token.contains('.') {
            return Err(AtrPatternError::WildcardInValue);
        }
        let (v, _) = parse_byte(token, false)
            .ok_or_else(|| AtrPatternError::BadByte { index: i + 1, text: token.to_string() })?;
        out.push(v);
    }
    if out.is_empty() {
        return Err(AtrPatternError::Empty);
    }
    Ok(out)
}

/// One byte of two characters: hex digits, or `.` (any nibble) when wildcards are allowed.
fn parse_byte(token: &str, wildcards: bool) -> Option<(u8, u8)> {
    let mut chars = token.chars();
    let (hi, lo) = (chars.next()?, chars.next()?);
    if chars.next().is_some() {
        return None;
    }
    let (hv, hm) = parse_nibble(hi, wildcards)?;
    let (lv, lm) = parse_nibble(lo, wildcards)?;
    Some(((hv << 4) | lv, (hm << 4) | lm))
}

fn parse_nibble(c: char, wildcards: bool) -> Option<(u8, u8)> {
    if c == '.' && wildcards {
        return Some((0, 0));
    }
    let digit = c.to_digit(16)?;
    Some((u8::try_from(digit).ok()?, 0xF))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_and_nibbles() {
        let p = AtrPattern::parse("3B .. 0. FF").unwrap();
        assert_eq!(p.value(), &[0x3B, 0, 0, 0xFF]);
        assert_eq!(p.mask(), &[0xFF, 0, 0xF0, 0xFF]);
        assert!(p.matches(&[0x3B, 0x12, 0x05, 0xFF]));
        assert!(!p.matches(&[0x3B, 0x12, 0x15, 0xFF]));
        assert!(!p.matches(&[0x3B, 0x12, 0x05]));
        assert_eq!(p.to_string(), "3B .. 0. FF");
        assert_eq!(p.specificity(), 20);
    }

    #[test]
    fn explicit_mask() {
        let p = AtrPattern::with_mask("3b:7f:96", "ff:ff:00").unwrap();
        assert!(p.matches(&[0x3B, 0x7F, 0x99]));
        assert_eq!(p.value(), &[0x3B, 0x7F, 0]);
        let odd = AtrPattern::with_mask("3b:70", "ff:f3").unwrap();
        assert_eq!(odd.to_string(), "3B:70/FF:F3");
    }

    #[test]
    fn bad_patterns_say_why() {
        assert!(matches!(AtrPattern::parse("3B 9G"), Err(AtrPatternError::BadByte { index: 2, .. })));
        assert!(matches!(AtrPattern::parse("3B 9"), Err(AtrPatternError::BadByte { index: 2, .. })));
        assert!(matches!(AtrPattern::parse("3B*"), Err(AtrPatternError::BadByte { index: 1, .. })));
        assert_eq!(AtrPattern::parse("  "), Err(AtrPatternError::Empty));
        assert_eq!(AtrPattern::parse(".. .."), Err(AtrPatternError::MatchesEverything));
        assert_eq!(AtrPattern::parse(&"3B ".repeat(34)), Err(AtrPatternError::TooLong { len: 34 }));
        assert_eq!(AtrPattern::with_mask("3b:7f", "ff"), Err(AtrPatternError::MaskLength { value: 2, mask: 1 }));
        assert_eq!(AtrPattern::with_mask("3b:..", "ff:00"), Err(AtrPatternError::WildcardInValue));
    }
}
