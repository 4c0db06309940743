//! The cards in the readers: does each answer, and does the catalog know its model (by ATR, or
//! by the reader it sits in)? An unknown card is probed for a PIV application, which ukey can
//! use without knowing the model.

use std::ffi::CStr;
use std::time::Duration;

use ukey_iso7816::PivOptions;
use ukey_pcsc::PcscContext;

use super::readers;
use super::{Environment, Finding};

/// Check id.
pub const ID: &str = "cards";

fn hex_atr(atr: &[u8]) -> String {
    atr.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(" ")
}

/// How to add a model to the catalog.
fn catalog_fix(env: &Environment<'_>, atr: &str) -> String {
    format!(
        "if this card is a carrier your unit uses, add a catalog entry with `atr = [\"{atr}\"]` in {}/catalog.d/ \
         (format: `ukey catalog list --json`, drivers/catalog/data/README.md), then run `ukey catalog check`",
        env.system_dir.display()
    )
}

/// One finding per card present in a reader ukey uses.
pub fn check(env: &Environment<'_>) -> Vec<Finding> {
    let (ctx, names) = match readers::list() {
        Ok(found) => found,
        Err(why) => {
            return vec![Finding::warn(ID, format!("cards cannot be examined: {why}"), "see the pcscd check")];
        }
    };
    let names: Vec<_> = names.into_iter().filter(|r| ukey_pcsc::driver::reader_allowed(r)).collect();
    if names.is_empty() {
        return vec![Finding::ok(ID, "no reader to examine")];
    }
    let mut states: Vec<pcsc::ReaderState> =
        names.iter().map(|r| pcsc::ReaderState::new(r.clone(), pcsc::State::UNAWARE)).collect();
    if let Err(e) = ctx.get_status_change(Duration::ZERO, &mut states)
        && e != pcsc::Error::Timeout
    {
        return vec![Finding::warn(ID, format!("pcscd did not report the reader states: {e}"), "see the pcscd check")];
    }
    let mut out = Vec::new();
    for state in &states {
        let event = state.event_state();
        if !event.contains(pcsc::State::PRESENT) {
            continue;
        }
        let reader = state.name();
        let subject = reader.to_string_lossy().into_owned();
        if event.contains(pcsc::State::MUTE) {
            out.push(
                Finding::fail(
                    ID,
                    format!("the card in {subject} does not answer (mute)"),
                    "take it out and insert it again, the right way round; a card that stays mute is damaged",
                )
                .about(subject),
            );
            continue;
        }
        out.push(examine(env, reader, state.atr()).about(subject));
    }
    if out.is_empty() {
        out.push(Finding::ok(ID, format!("no card in the {} reader(s)", names.len())));
    }
    out
}

fn examine(env: &Environment<'_>, reader: &CStr, atr: &[u8]) -> Finding {
    let atr_text = hex_atr(atr);
    let name = reader.to_string_lossy();
    let described = |entry: &ukey_catalog::Entry, how: &str| {
        let compliance = if entry.is_compliant() { "a compliant carrier" } else { "not a compliant carrier" };
        format!(
            "{} ({}) in {name}, known {how}; {compliance}: {}; ATR {atr_text}",
            entry.display_name(),
            entry.id,
            entry.compliance.reason
        )
    };
    if let Some(entry) = env.catalog.match_atr(atr) {
        return Finding::ok(ID, described(entry, "by its ATR"));
    }
    if let Some(entry) = env.catalog.match_reader(&name) {
        return Finding::ok(ID, described(entry, "by its reader"));
    }
    match ukey_pcsc::open_carrier(&PcscContext::new(), reader, &PivOptions::default()) {
        Ok(_) => Finding::warn(
            ID,
            format!(
                "the card in {name} has an ATR the catalog does not know ({atr_text}); it has a PIV application, so \
                 ukey can use it, but cannot tell whether its model is a compliant carrier"
            ),
            catalog_fix(env, &atr_text),
        ),
        Err(e) => Finding::warn(
            ID,
            format!(
                "the card in {name} has an ATR the catalog does not know ({atr_text}) and no application ukey speaks \
                 ({e})"
            ),
            format!(
                "if the vendor provides a PKCS#11 module for it, install that module; {}",
                catalog_fix(env, &atr_text)
            ),
        ),
    }
}
