//! APDUs: response parsing and status-word judging never panic on any card answer; command
//! encoding (short and extended) decodes back to the same command under the ISO 7816-4 case
//! rules, and command chaining keeps the data and puts Le on the last link only.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ukey_api::PinRole;
use ukey_iso7816::apdu::{CLA_CHAINING, MAX_EXTENDED_LE, MAX_SHORT_LE};
use ukey_iso7816::{Command, Context, Le, Response, StatusWord};

/// Decodes an encoded command APDU (the card's view): header, Lc and data, Le.
fn decode(bytes: &[u8]) -> Option<(u8, u8, u8, u8, Vec<u8>, Option<usize>)> {
    let (header, body) = bytes.split_at_checked(4)?;
    let (cla, ins, p1, p2) = (header[0], header[1], header[2], header[3]);
    let short_le = |b: u8| if b == 0 { MAX_SHORT_LE } else { usize::from(b) };
    let ext = |hi: u8, lo: u8| usize::from(u16::from_be_bytes([hi, lo]));
    let ext_le = |hi: u8, lo: u8| if hi == 0 && lo == 0 { MAX_EXTENDED_LE } else { ext(hi, lo) };
    let (data, le) = match body {
        [] => (Vec::new(), None),
        [le] => (Vec::new(), Some(short_le(*le))),
        [0, hi, lo] => (Vec::new(), Some(ext_le(*hi, *lo))),
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
    Some((cla, ins, p1, p2, data, le))
}

fuzz_target!(|input: &[u8]| {
    // The whole input as a card answer.
    if let Ok(response) = Response::parse(input) {
        assert_eq!(response.data.len() + 2, input.len());
        let sw = response.sw;
        let _ = sw.meaning();
        let _ = sw.retries_left();
        let _ = format!("{sw} {response:?}");
        let judged = sw.check(Context::pin("verify the PIN", PinRole::User));
        assert_eq!(judged.is_ok(), sw.is_success() || sw == StatusWord::new(0x90, 0x00));
        let _ = sw.check(Context::admin("write"));
    } else {
        assert!(input.len() < 2);
    }

    // The input as a command to encode: header, Le selector, chaining chunk, then data.
    let Some((head, data)) = input.split_at_checked(8) else { return };
    let le = match head[4] % 4 {
        0 => Le::None,
        1 => Le::Max,
        _ => Le::Exact(usize::from(u16::from_be_bytes([head[5], head[6]])) + usize::from(head[4] & 0x80 != 0)),
    };
    let extended = head[4] & 0x40 != 0;
    let command = Command::new(head[0], head[1], head[2], head[3]).with_data(data.to_vec()).with_le(le);
    if let Ok(encoded) = command.encode(extended) {
        let (cla, ins, p1, p2, got_data, got_le) = decode(&encoded).expect("an encoded APDU must decode");
        assert_eq!((cla, ins, p1, p2), (head[0], head[1], head[2], head[3]));
        assert_eq!(got_data, data);
        match le {
            Le::None => assert_eq!(got_le, None),
            Le::Exact(n) => assert_eq!(got_le, Some(n)),
            Le::Max => assert!(got_le == Some(MAX_SHORT_LE) || got_le == Some(MAX_EXTENDED_LE)),
        }
    }
    let chunk = usize::from(head[7]);
    let links = command.chain(chunk);
    assert!(!links.is_empty());
    let joined: Vec<u8> = links.iter().flat_map(|l| l.data.iter().copied()).collect();
    assert_eq!(joined, data, "chaining lost or reordered data");
    let (last, rest) = links.split_last().expect("at least one link");
    assert_eq!(last.le, le);
    assert_eq!(last.cla, head[0]);
    for link in rest {
        assert_eq!(link.le, Le::None);
        assert_eq!(link.cla, head[0] | CLA_CHAINING);
        assert!(link.data.len() <= chunk.max(1));
    }
});
