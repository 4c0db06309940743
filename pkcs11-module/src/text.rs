//! The fixed-width, blank-padded text fields of PKCS#11 info structures.

/// `text` in a blank-padded field of `N` bytes, cut at a character boundary when too long.
pub fn blank_padded<const N: usize>(text: &str) -> [u8; N] {
    let mut out = [b' '; N];
    let mut end = text.len().min(N);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    out[..end].copy_from_slice(&text.as_bytes()[..end]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_and_cuts_at_character_boundaries() {
        assert_eq!(&blank_padded::<6>("ab"), b"ab    ");
        assert_eq!(&blank_padded::<3>("abcdef"), b"abc");
        // "é" is two bytes: it is dropped whole rather than cut in half.
        assert_eq!(&blank_padded::<2>("aé"), b"a ");
    }
}
