//! What a card says about itself in its answer-to-reset (ISO/IEC 7816-3 §8.2, 7816-4 §8.1.1):
//! the historical bytes and, among them, whether it takes extended-length APDUs.

/// The historical bytes of an ATR, or `None` when the ATR is malformed or truncated.
pub fn historical_bytes(atr: &[u8]) -> Option<&[u8]> {
    let t0 = *atr.get(1)?;
    let k = usize::from(t0 & 0x0F);
    let mut pos = 2usize;
    let mut y = t0 >> 4;
    // Interface bytes: each TDi says which of TA/TB/TC/TD(i+1) follow. Bounded by the ATR size.
    loop {
        let present = (y & 0x1) + ((y >> 1) & 0x1) + ((y >> 2) & 0x1);
        pos += usize::from(present);
        if y & 0x8 == 0 {
            break;
        }
        y = *atr.get(pos)? >> 4;
        pos += 1;
        if pos > atr.len() {
            return None;
        }
    }
    atr.get(pos..pos.checked_add(k)?)
}

/// Whether the card announces extended Lc/Le support in its card-capabilities data
/// (compact-TLV tag `7`, third software-function byte, bit `40`).
pub fn extended_length_supported(atr: &[u8]) -> bool {
    let Some(hist) = historical_bytes(atr) else { return false };
    let body = match hist.split_first() {
        Some((0x80, rest)) => rest,
        // Category 00: the last three bytes are a status indicator, not compact-TLV.
        Some((0x00, rest)) => rest.get(..rest.len().saturating_sub(3)).unwrap_or(&[]),
        _ => return false,
    };
    let mut rest = body;
    while let Some((&head, tail)) = rest.split_first() {
        let (tag, len) = (head >> 4, usize::from(head & 0x0F));
        let Some(value) = tail.get(..len) else { return false };
        if tag == 0x7 {
            return value.get(2).is_some_and(|b| b & 0x40 != 0);
        }
        rest = tail.get(len..).unwrap_or(&[]);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vpicc_default_atr() {
        let atr = [0x3b, 0x95, 0x13, 0x81, 0x01, 0x80, 0x73, 0xff, 0x01, 0x00, 0x0B];
        assert_eq!(historical_bytes(&atr), Some(&[0x80, 0x73, 0xff, 0x01, 0x00][..]));
        assert!(!extended_length_supported(&atr));
    }

    #[test]
    fn historical_bytes_and_capabilities() {
        // 3B F8 13 00 00 81 31 FE 15 59 75 62 69 6B 65 79 34 D4 (YubiKey 4): historical "Yubikey4".
        let atr = hex::decode("3BF81300008131FE15597562696B657934D4").unwrap();
        assert_eq!(historical_bytes(&atr), Some(&b"Yubikey4"[..]));
        // Card capabilities 73 00 00 C0: third byte has bit 40, extended lengths.
        let atr = [0x3B, 0x05, 0x80, 0x73, 0x00, 0x00, 0xC0];
        assert!(extended_length_supported(&atr));
    }

    #[test]
    fn garbage_atr_is_harmless() {
        for atr in [&[][..], &[0x3B], &[0x3B, 0xFF], &[0x3B, 0xF0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]] {
            let _ = historical_bytes(atr);
            assert!(!extended_length_supported(atr));
        }
    }
}
