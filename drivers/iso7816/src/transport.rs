//! The seam between card applications and whatever carries APDUs (PC/SC today, HID framing
//! later), and the exchange loop every application shares on top of it: command chaining,
//! `61xx` GET RESPONSE, `6Cxx` re-send with the right Le. Every loop is bounded, so a card that
//! answers nonsense gets a clear error, never a hang.

use ukey_api::{Error, Result};
use zeroize::Zeroizing;

use crate::apdu::{Command, Le, MAX_EXTENDED_LC, MAX_SHORT_LC, MAX_SHORT_LE, Response};
use crate::status::{Context, StatusWord};
use crate::trace;

/// Most GET RESPONSE rounds for one command (64 rounds of 256 bytes = 16 KiB, more than any PIV
/// object holds; extended APDUs carry larger answers in one round).
pub const MAX_GET_RESPONSE_ROUNDS: usize = 64;
/// Largest response assembled from GET RESPONSE rounds.
pub const MAX_RESPONSE_LEN: usize = 128 * 1024;
/// Most `6Cxx` re-sends for one command.
const MAX_WRONG_LE_RETRIES: usize = 2;

/// Sends raw APDU bytes and returns the raw answer (data and SW1 SW2), inside one exclusive
/// transaction opened by [`CardTransport::transaction`].
pub trait ApduPipe {
    /// One command, one answer.
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>>;
}

/// A card reached through some transport. The card application sees only this trait.
pub trait CardTransport: Send {
    /// The card's answer-to-reset.
    fn atr(&self) -> Vec<u8>;

    /// Where the card sits (reader name, device path), for messages.
    fn location(&self) -> String;

    /// Whether both the card and the path to it carry extended-length APDUs. By default, what
    /// the card announces in its ATR.
    fn supports_extended(&self) -> bool {
        crate::atr::extended_length_supported(&self.atr())
    }

    /// Runs `work` with exclusive use of the card: no other process's APDUs are interleaved
    /// with the ones `work` sends. A transport may re-run `work` once, from the start, when the
    /// card was reset before `work` sent anything (so `work` must begin by selecting its
    /// application, as every transaction should: another process may have selected a
    /// different one in between).
    fn transaction(&mut self, work: &mut dyn FnMut(&mut dyn ApduPipe) -> Result<()>) -> Result<()>;
}

/// Runs `work` in one transaction of `transport` and returns its value; the typed wrapper over
/// [`CardTransport::transaction`].
pub fn with_transaction<T>(
    transport: &mut dyn CardTransport,
    mut work: impl FnMut(&mut Channel<'_>) -> Result<T>,
) -> Result<T> {
    let extended = transport.supports_extended();
    let mut out = None;
    transport.transaction(&mut |pipe| {
        let mut channel = Channel::new(pipe, extended);
        out = Some(work(&mut channel)?);
        Ok(())
    })?;
    out.ok_or_else(|| Error::Device("the card transport ended the transaction without running it".into()))
}

/// The exchange loop on top of a pipe: one logical command in, one complete response out.
pub struct Channel<'a> {
    pipe: &'a mut dyn ApduPipe,
    extended: bool,
}

impl<'a> Channel<'a> {
    /// A channel over `pipe`; `extended` says whether extended-length APDUs may be sent.
    pub fn new(pipe: &'a mut dyn ApduPipe, extended: bool) -> Self {
        Channel { pipe, extended }
    }

    /// Whether extended-length APDUs are in use.
    pub fn extended(&self) -> bool {
        self.extended
    }

    /// Sends one raw APDU, with tracing.
    fn raw(&mut self, cmd: &Command) -> Result<Response> {
        let bytes = cmd.encode(self.extended)?;
        trace::command(&bytes);
        let answer = Zeroizing::new(self.pipe.transmit(&bytes)?);
        trace::response(&answer);
        Response::parse(&answer)
    }

    /// Sends a command and collects its whole response: chains long data, follows `61xx` with
    /// GET RESPONSE, re-sends on `6Cxx`. The status word is returned, not judged: see
    /// [`Channel::call`].
    pub fn transmit(&mut self, cmd: &Command) -> Result<Response> {
        let max_lc = if self.extended { MAX_EXTENDED_LC } else { MAX_SHORT_LC };
        let links = cmd.chain(max_lc);
        let last = links.len().saturating_sub(1);
        let mut response = None;
        for (i, link) in links.iter().enumerate() {
            let r = self.send_with_le_fix(link)?;
            if i < last && !r.sw.is_success() {
                // The card refused a link of the chain: its word says why.
                return Ok(r);
            }
            response = Some(r);
        }
        let first = response.ok_or_else(|| Error::Device("empty command chain".into()))?;
        self.collect(cmd, first)
    }

    /// Sends a link; on `6Cxx` re-sends it with Le = xx (bounded).
    fn send_with_le_fix(&mut self, link: &Command) -> Result<Response> {
        let mut r = self.raw(link)?;
        let mut tries = 0;
        while r.sw.sw1() == 0x6C {
            tries += 1;
            if tries > MAX_WRONG_LE_RETRIES {
                return Err(Error::Device(format!(
                    "the card keeps answering {} (wrong Le) to INS {:02X}; it may be faulty",
                    r.sw, link.ins
                )));
            }
            let le = match r.sw.sw2() {
                0 => MAX_SHORT_LE,
                n => usize::from(n),
            };
            r = self.raw(&link.clone().with_le(Le::Exact(le)))?;
        }
        Ok(r)
    }

    /// Follows `61xx` with GET RESPONSE until the card has said everything (bounded).
    fn collect(&mut self, cmd: &Command, first: Response) -> Result<Response> {
        let mut data = first.data;
        let mut sw = first.sw;
        let mut rounds = 0;
        while sw.sw1() == 0x61 {
            rounds += 1;
            if rounds > MAX_GET_RESPONSE_ROUNDS || data.len() > MAX_RESPONSE_LEN {
                return Err(Error::Device(format!(
                    "the card kept announcing more data (61xx) after {} bytes to INS {:02X}; it may be faulty",
                    data.len(),
                    cmd.ins
                )));
            }
            let le = match sw.sw2() {
                0 => MAX_SHORT_LE,
                n => usize::from(n),
            };
            let get = Command::new(cmd.cla & 0x03, 0xC0, 0x00, 0x00).with_le(Le::Exact(le));
            let r = self.send_with_le_fix(&get)?;
            data.extend_from_slice(&r.data);
            sw = r.sw;
        }
        Ok(Response { data, sw })
    }

    /// Sends a command and returns its data if the card answered `90 00`; any other status word
    /// becomes the contract error [`StatusWord::check`] names for it.
    pub fn call(&mut self, cmd: &Command, ctx: Context<'_>) -> Result<Zeroizing<Vec<u8>>> {
        let r = self.transmit(cmd)?;
        r.sw.check(ctx)?;
        Ok(r.data)
    }

    /// Sends a command and returns the status word alone, for commands whose non-success words
    /// are answers (the empty VERIFY that reports retries).
    pub fn status(&mut self, cmd: &Command) -> Result<StatusWord> {
        Ok(self.transmit(cmd)?.sw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ScriptedCard;

    fn run<T>(card: &mut ScriptedCard, f: impl FnMut(&mut Channel<'_>) -> Result<T>) -> Result<T> {
        with_transaction(card, f)
    }

    #[test]
    fn get_response_loop_collects_everything() {
        let mut card = ScriptedCard::new()
            .expect("00CB3FFF035C017E00", "0102036103")
            .expect("00C0000003", "0405066100")
            .expect("00C0000000", "07089000");
        let cmd = Command::new(0, 0xCB, 0x3F, 0xFF).with_data(vec![0x5C, 0x01, 0x7E]).with_le(Le::Max);
        let data = run(&mut card, |ch| ch.call(&cmd, Context::new("read"))).unwrap();
        assert_eq!(&data[..], &[1, 2, 3, 4, 5, 6, 7, 8]);
        card.assert_done();
    }

    #[test]
    fn wrong_le_is_resent_with_the_right_one() {
        let mut card = ScriptedCard::new().expect("00CA010200", "6C05").expect("00CA010205", "01020304059000");
        let cmd = Command::new(0, 0xCA, 0x01, 0x02).with_le(Le::Max);
        let data = run(&mut card, |ch| ch.call(&cmd, Context::new("read"))).unwrap();
        assert_eq!(data.len(), 5);
        card.assert_done();
    }

    #[test]
    fn endless_61xx_is_an_error_not_a_hang() {
        let mut card = ScriptedCard::new().expect("00CA000000", "6110").repeat_forever("00C0000010", "AA6110");
        let cmd = Command::new(0, 0xCA, 0, 0).with_le(Le::Max);
        let err = run(&mut card, |ch| ch.call(&cmd, Context::new("read"))).unwrap_err();
        assert!(matches!(err, Error::Device(_)), "{err:?}");
        assert!(err.to_string().contains("61xx"));
    }

    #[test]
    fn endless_6cxx_is_an_error() {
        let mut card = ScriptedCard::new().repeat_forever_prefix("00CA0000", "6C05");
        let cmd = Command::new(0, 0xCA, 0, 0).with_le(Le::Max);
        let err = run(&mut card, |ch| ch.call(&cmd, Context::new("read"))).unwrap_err();
        assert!(err.to_string().contains("wrong Le"), "{err}");
    }

    #[test]
    fn long_data_is_chained_in_short_mode() {
        let data = vec![0x11; 300];
        let mut first = "10DB3FFFFF".to_string();
        first.push_str(&"11".repeat(255));
        let mut second = "00DB3FFF2D".to_string();
        second.push_str(&"11".repeat(45));
        let mut card = ScriptedCard::new().expect(&first, "9000").expect(&second, "9000");
        let cmd = Command::new(0, 0xDB, 0x3F, 0xFF).with_data(data.clone());
        run(&mut card, |ch| ch.call(&cmd, Context::new("write"))).unwrap();
        card.assert_done();

        // With extended APDUs the same command goes in one piece.
        let mut one = "00DB3FFF00012C".to_string();
        one.push_str(&"11".repeat(300));
        let mut card = ScriptedCard::new().extended().expect(&one, "9000");
        run(&mut card, |ch| ch.call(&cmd, Context::new("write"))).unwrap();
        card.assert_done();
    }

    #[test]
    fn refused_chain_link_stops_the_chain() {
        let mut first = "10DB3FFFFF".to_string();
        first.push_str(&"11".repeat(255));
        let mut card = ScriptedCard::new().expect(&first, "6884");
        let cmd = Command::new(0, 0xDB, 0x3F, 0xFF).with_data(vec![0x11; 300]);
        let err = run(&mut card, |ch| ch.call(&cmd, Context::new("write"))).unwrap_err();
        assert!(matches!(err, Error::NotSupported(_)), "{err:?}");
        card.assert_done();
    }

    #[test]
    fn short_answers_are_errors() {
        let mut card = ScriptedCard::new().expect("00CA0000", "90");
        let cmd = Command::new(0, 0xCA, 0, 0);
        assert!(matches!(run(&mut card, |ch| ch.call(&cmd, Context::new("read"))), Err(Error::Device(_))));
    }
}
