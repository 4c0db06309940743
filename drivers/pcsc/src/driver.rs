//! The PC/SC driver: every card with a PIV application in any reader pcscd knows is a carrier.

use std::ffi::CStr;
use std::sync::{Arc, Mutex};

use ukey_api::{Carrier, CarrierInfo, CarrierKind, Driver, DriverStatus, Error, EventSink, Result, Watch};
use ukey_iso7816::{PivCarrier, PivOptions};

use crate::context::PcscContext;
use crate::errors::PCSCD_HINT;
use crate::reader_watch::{self, Opener};
use crate::transport::PcscTransport;

/// Limits ukey to the readers whose names contain one of these comma-separated parts (for
/// machines where other readers belong to other programs, and for tests that lease a reader).
pub const ENV_READERS: &str = "UKEY_PCSC_READERS";

/// Whether ukey may use `reader` under the [`ENV_READERS`] filter.
pub fn reader_allowed(reader: &CStr) -> bool {
    reader_matches(std::env::var(ENV_READERS).ok().as_deref(), reader)
}

/// Whether `reader` passes `filter` (comma-separated name parts; empty or absent allows all).
fn reader_matches(filter: Option<&str>, reader: &CStr) -> bool {
    match filter {
        Some(filter) if !filter.trim().is_empty() => {
            let name = reader.to_string_lossy();
            filter.split(',').map(str::trim).filter(|p| !p.is_empty()).any(|p| name.contains(p))
        }
        _ => true,
    }
}

/// Smart cards in PC/SC readers, spoken to in APDUs.
pub struct PcscDriver {
    ctx: PcscContext,
    options: PivOptions,
    problems: Arc<Mutex<Vec<DriverStatus>>>,
}

impl Default for PcscDriver {
    fn default() -> Self {
        Self::new(PivOptions::default())
    }
}

/// Opens the PIV carrier on the card in `reader`.
pub fn open_carrier(ctx: &PcscContext, reader: &CStr, options: &PivOptions) -> Result<PivCarrier> {
    if !reader_allowed(reader) {
        return Err(Error::NotSupported(format!("reader {} is excluded by {ENV_READERS}", reader.to_string_lossy())));
    }
    let transport = PcscTransport::connect(ctx, reader)?;
    PivCarrier::open(Box::new(transport), CarrierKind::Pcsc, options.clone())
}

impl PcscDriver {
    /// A driver; nothing talks to pcscd until it is used, so starting ukey never fails for a
    /// missing daemon (the driver's status says so instead).
    pub fn new(options: PivOptions) -> Self {
        PcscDriver { ctx: PcscContext::new(), options, problems: Arc::new(Mutex::new(Vec::new())) }
    }

    fn note_problems(&self, found: Vec<DriverStatus>) {
        if let Ok(mut p) = self.problems.lock() {
            *p = found;
        }
    }
}

impl Driver for PcscDriver {
    fn kind(&self) -> CarrierKind {
        CarrierKind::Pcsc
    }

    fn carriers(&self) -> Result<Vec<Arc<dyn Carrier>>> {
        let mut carriers: Vec<Arc<dyn Carrier>> = Vec::new();
        let mut problems = Vec::new();
        let readers = match self.ctx.readers() {
            Ok(readers) => readers,
            // No pcscd means no smart cards, not a failure of ukey: `status` says how to start it.
            Err(Error::Device(m)) if m.contains("pcscd") => {
                log::debug!("{m}");
                return Ok(carriers);
            }
            Err(e) => return Err(e),
        };
        for reader in readers {
            match open_carrier(&self.ctx, &reader, &self.options) {
                // Keys ukey generates must stay visible to the next process: see
                // `PivCarrier::with_placeholder_certificates`.
                Ok(c) => carriers.push(Arc::new(c.with_placeholder_certificates())),
                // An empty reader, or a card without PIV: nothing to list.
                Err(Error::TokenRemoved | Error::NotSupported(_)) => {}
                Err(e) => problems.push(DriverStatus {
                    subject: reader.to_string_lossy().into_owned(),
                    ok: false,
                    message: format!("the card could not be opened: {e}"),
                }),
            }
        }
        self.note_problems(problems);
        Ok(carriers)
    }

    fn watch(&self, sink: EventSink) -> Result<Box<dyn Watch>> {
        let ctx = self.ctx.clone();
        let options = self.options.clone();
        let open: Opener = Arc::new(move |reader: &CStr| -> Result<CarrierInfo> {
            open_carrier(&ctx, reader, &options).map(|c| c.info().clone())
        });
        Ok(Box::new(reader_watch::start(sink, open)?))
    }

    fn status(&self) -> Vec<DriverStatus> {
        let mut out = match self.ctx.readers() {
            Ok(readers) => vec![DriverStatus {
                subject: "pcscd".into(),
                ok: true,
                message: if readers.is_empty() {
                    "running; no smart card reader is connected".into()
                } else {
                    format!(
                        "running; readers: {}",
                        readers.iter().map(|r| r.to_string_lossy().into_owned()).collect::<Vec<_>>().join(", ")
                    )
                },
            }],
            Err(e) => vec![DriverStatus {
                subject: "pcscd".into(),
                ok: false,
                message: match e {
                    Error::Device(m) if m.contains("pcscd") => m,
                    other => format!("{other}; {PCSCD_HINT}"),
                },
            }],
        };
        if let Ok(p) = self.problems.lock() {
            out.extend(p.iter().cloned());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_filter_matches_parts() {
        let name = c"Virtual PCD 00 01";
        assert!(reader_matches(Some("Nothing, PCD 00 01"), name));
        assert!(!reader_matches(Some("Yubico"), name));
        assert!(reader_matches(Some(" "), name));
        assert!(reader_matches(None, name));
    }
}
