//! A card in a PC/SC reader as a [`CardTransport`]: a shared connection (other programs may use
//! the card between ukey's operations), `SCardBeginTransaction` around every operation (so two
//! processes never interleave APDUs), recovery from a card reset by another program and from a
//! pcscd restart, and `TokenRemoved` when the card leaves mid-operation.

use std::ffi::{CStr, CString};

use ukey_api::{Error, Result};
use ukey_iso7816::{ApduPipe, CardTransport};
use zeroize::Zeroizing;

use crate::context::PcscContext;
use crate::errors;

/// Why a transaction was cut short in a way a reconnect can repair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interruption {
    /// Another program reset the card: reconnect the handle, the card is the same.
    Reset,
    /// pcscd went away: new context, new connection, same card if the ATR matches.
    Service,
}

fn interruption(e: pcsc::Error) -> Option<Interruption> {
    match e {
        // A card reset by another program may answer the first command with a protocol
        // mismatch until the handle reconnects (renegotiates): repaired like a reset.
        pcsc::Error::ResetCard | pcsc::Error::ProtoMismatch => Some(Interruption::Reset),
        // CommError: the socket to pcscd broke mid-call (the daemon was killed).
        pcsc::Error::NoService | pcsc::Error::ServiceStopped | pcsc::Error::InvalidHandle | pcsc::Error::CommError => {
            Some(Interruption::Service)
        }
        _ => None,
    }
}

/// One card in one reader.
pub struct PcscTransport {
    ctx: PcscContext,
    reader: CString,
    card: Option<pcsc::Card>,
    atr: Vec<u8>,
}

fn connect(ctx: &PcscContext, reader: &CStr) -> Result<(pcsc::Card, Vec<u8>)> {
    let what = || format!("connect to the card in {}", reader.to_string_lossy());
    let mut context = ctx.get()?;
    let card = match context.connect(reader, pcsc::ShareMode::Shared, pcsc::Protocols::ANY) {
        Ok(card) => card,
        // A context from before a pcscd crash still looks valid to the client library; only a
        // call shows it is dead. One fresh context, then the daemon's own answer stands.
        Err(e) if interruption(e) == Some(Interruption::Service) => {
            ctx.invalidate();
            context = ctx.get()?;
            context
                .connect(reader, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)
                .map_err(|e| errors::map(e, &what()))?
        }
        Err(e) => return Err(errors::map(e, &what())),
    };
    // The ATR as the reader state reports it: the ATR attribute is refused by some reader
    // drivers (vpcd among them).
    let mut state = [pcsc::ReaderState::new(reader.to_owned(), pcsc::State::UNAWARE)];
    context
        .get_status_change(std::time::Duration::ZERO, &mut state)
        .map_err(|e| errors::map(e, "read the card's ATR"))?;
    let atr = state[0].atr().to_vec();
    Ok((card, atr))
}

/// How long to let pcscd notice a removal after a command failed.
const REMOVAL_SETTLE: std::time::Duration = std::time::Duration::from_millis(1000);

/// Whether a card still sits in `reader`, after giving pcscd a moment to notice a removal.
fn card_present(ctx: &PcscContext, reader: &CStr) -> bool {
    let Ok(context) = ctx.get() else { return false };
    let mut state = [pcsc::ReaderState::new(reader.to_owned(), pcsc::State::UNAWARE)];
    if context.get_status_change(std::time::Duration::ZERO, &mut state).is_err() {
        return false;
    }
    if !state[0].event_state().contains(pcsc::State::PRESENT) {
        return false;
    }
    state[0].sync_current_state();
    match context.get_status_change(REMOVAL_SETTLE, &mut state) {
        Ok(()) => state[0].event_state().contains(pcsc::State::PRESENT),
        // No change within the settle time: the card is still there.
        Err(_) => true,
    }
}

impl PcscTransport {
    /// Connects (shared) to the card in `reader`.
    pub fn connect(ctx: &PcscContext, reader: &CStr) -> Result<Self> {
        let (card, atr) = connect(ctx, reader)?;
        Ok(PcscTransport { ctx: ctx.clone(), reader: reader.to_owned(), card: Some(card), atr })
    }

    /// The reader's name.
    pub fn reader(&self) -> &CStr {
        &self.reader
    }

    /// Repairs the connection after an interruption, refusing to continue with another card.
    fn recover(&mut self, why: Interruption) -> Result<()> {
        match (why, self.card.as_mut()) {
            (Interruption::Reset, Some(card)) => {
                log::info!("the card in {} was reset by another program; reconnecting", self.reader.to_string_lossy());
                card.reconnect(pcsc::ShareMode::Shared, pcsc::Protocols::ANY, pcsc::Disposition::LeaveCard)
                    .map_err(|e| errors::map(e, "reconnect to the card after a reset"))
            }
            _ => {
                log::info!("reconnecting to {} through a new PC/SC context", self.reader.to_string_lossy());
                if let Some(old) = self.card.take() {
                    // Leave the card as it is (see `Drop`); on a dead context this fails, harmlessly.
                    let _ = old.disconnect(pcsc::Disposition::LeaveCard);
                }
                self.ctx.invalidate();
                let (card, atr) = connect(&self.ctx, &self.reader)?;
                if atr != self.atr {
                    // A different card now sits in the reader: this handle's card is gone.
                    return Err(Error::TokenRemoved);
                }
                self.card = Some(card);
                Ok(())
            }
        }
    }
}

impl Drop for PcscTransport {
    /// Disconnects leaving the card as it is. The `pcsc` crate's own drop resets the card, which
    /// power-cycles it under every other program using it (their PIN state and selected
    /// application gone, their next command failing with a reset or protocol mismatch) each
    /// time a ukey process or carrier handle ends.
    fn drop(&mut self) {
        if let Some(card) = self.card.take()
            && let Err((_, e)) = card.disconnect(pcsc::Disposition::LeaveCard)
        {
            log::debug!("disconnecting from the card in {}: {e}", self.reader.to_string_lossy());
        }
    }
}

struct Pipe<'t, 'c> {
    tx: &'t pcsc::Transaction<'c>,
    sent: usize,
    interrupted: Option<Interruption>,
    removed: bool,
    failed: bool,
}

impl ApduPipe for Pipe<'_, '_> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>> {
        let mut buf = Zeroizing::new(vec![0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED]);
        match self.tx.transmit(apdu, &mut buf) {
            Ok(answer) => {
                self.sent += 1;
                Ok(answer.to_vec())
            }
            Err(e) => {
                self.failed = true;
                self.interrupted = interruption(e);
                if matches!(errors::map(e, ""), Error::TokenRemoved) {
                    self.removed = true;
                }
                Err(errors::map(e, "send a command to the card"))
            }
        }
    }
}

impl CardTransport for PcscTransport {
    fn atr(&self) -> Vec<u8> {
        self.atr.clone()
    }

    fn location(&self) -> String {
        self.reader.to_string_lossy().into_owned()
    }

    fn transaction(&mut self, work: &mut dyn FnMut(&mut dyn ApduPipe) -> Result<()>) -> Result<()> {
        for attempt in 0..2 {
            if self.card.is_none() {
                self.recover(Interruption::Service)?;
            }
            let Some(card) = self.card.as_mut() else { return Err(Error::TokenRemoved) };
            let outcome: std::result::Result<(), Interruption> = match card.transaction() {
                Ok(tx) => {
                    let mut pipe = Pipe { tx: &tx, sent: 0, interrupted: None, removed: false, failed: false };
                    let result = work(&mut pipe);
                    let (sent, interrupted, failed) = (pipe.sent, pipe.interrupted, pipe.failed);
                    // pcsc-lite reports a card pulled out mid-transaction as a broken transaction
                    // or link: ask the reader whether the card is still there.
                    let removed =
                        pipe.removed || (failed && interrupted.is_none() && !card_present(&self.ctx, &self.reader));
                    if let Err((_, e)) = tx.end(pcsc::Disposition::LeaveCard) {
                        log::debug!("ending the PC/SC transaction: {e}");
                    }
                    if interrupted == Some(Interruption::Service) {
                        // pcscd went away under this transaction: the shared context is dead,
                        // though the client library still calls it valid. Forget it, so the
                        // next user (this handle's next operation reconnects through
                        // `recover`, the watcher identifying a card) starts from a fresh one
                        // instead of failing on the stale one forever.
                        self.ctx.invalidate();
                    }
                    if removed {
                        return Err(Error::TokenRemoved);
                    }
                    match (result, interrupted) {
                        // Nothing reached the card yet: safe to repair and run again.
                        (Err(_), Some(why)) if sent == 0 && attempt == 0 => Err(why),
                        (r, _) => return r,
                    }
                }
                Err(e) => match interruption(e) {
                    Some(why) if attempt == 0 => Err(why),
                    _ => return Err(errors::map(e, "start a transaction on the card")),
                },
            };
            if let Err(why) = outcome {
                self.recover(why)?;
            }
        }
        Err(Error::Device("the card kept being reset by another program; try again".into()))
    }
}
