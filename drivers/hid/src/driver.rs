//! The HID driver: every HID device the carrier catalog knows as a HID carrier, opened with the
//! framing its entry names and the PIV application from `ukey-iso7816`.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ukey_api::identity::UsbId;
use ukey_api::{Carrier, CarrierId, CarrierKind, Driver, DriverStatus, Error, EventSink, Result, Watch};
use ukey_catalog::{Application, Catalog};
use ukey_iso7816::{PivCarrier, PivOptions};

use crate::exchange::Timeouts;
use crate::hidapi_device::HidapiSource;
use crate::matching::{Candidate, candidates};
use crate::source::DeviceSource;
use crate::transport::HidTransport;
use crate::watch;

/// Overrides the hot-plug poll interval, in milliseconds (default 1000).
pub const ENV_POLL_MS: &str = "UKEY_HID_POLL_MS";
/// The hot-plug poll interval when [`ENV_POLL_MS`] is not set.
pub const DEFAULT_POLL: Duration = Duration::from_secs(1);

/// Tokens that carry APDUs in HID reports.
pub struct HidDriver {
    source: Arc<dyn DeviceSource>,
    catalog: Arc<Catalog>,
    options: PivOptions,
    timeouts: Timeouts,
    poll: Duration,
    problems: Arc<Mutex<Vec<DriverStatus>>>,
}

/// Opens the carrier on a candidate device: the framing and application its catalog entry
/// names, the PIV application on top; the identity is completed from the catalog and USB.
pub fn open_carrier(
    source: &dyn DeviceSource,
    candidate: &Candidate,
    options: &PivOptions,
    timeouts: Timeouts,
) -> Result<PivCarrier> {
    let framing = candidate.framing.clone().map_err(Error::NotSupported)?;
    if !candidate.applications.contains(&Application::Piv) {
        return Err(Error::NotSupported(format!(
            "{} {} ({}) holds its keys in an application ukey does not speak over HID yet (it speaks PIV)",
            candidate.manufacturer, candidate.model, candidate.entry
        )));
    }
    let device = source.open(&candidate.device)?;
    let transport = HidTransport::new(device, framing, timeouts);
    let mut carrier = PivCarrier::open(Box::new(transport), CarrierKind::Hid, options.clone())?;
    let info = carrier.info_mut();
    info.atr = None;
    info.usb = Some(UsbId { vendor: candidate.device.vendor_id, product: candidate.device.product_id });
    info.catalog_entry = Some(candidate.entry.clone());
    info.manufacturer = candidate.manufacturer.clone();
    info.model = candidate.model.clone();
    if info.serial.is_empty()
        && let Some(serial) = &candidate.device.serial
    {
        // No CHUID: the USB serial number is the next stable name (the hidraw path is not).
        info.serial = serial.clone();
        let ids = format!("{:04x}-{:04x}", candidate.device.vendor_id, candidate.device.product_id);
        info.id = CarrierId::new(CarrierKind::Hid, &["usb", &ids, serial]);
    }
    Ok(carrier)
}

impl HidDriver {
    /// A driver over `source`, recognising carriers with `catalog`.
    pub fn new(source: Arc<dyn DeviceSource>, catalog: Arc<Catalog>, options: PivOptions) -> Self {
        HidDriver {
            source,
            catalog,
            options,
            timeouts: Timeouts::default(),
            poll: poll_from_env(),
            problems: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// The driver on real devices (hidapi), with the catalog of the environment's directories.
    pub fn from_env() -> Self {
        let (catalog, problems) = ukey_catalog::load_from_env();
        for p in problems {
            log::debug!("catalog: {p}");
        }
        Self::new(Arc::new(HidapiSource::new()), Arc::new(catalog), PivOptions::default())
    }

    /// Uses other timeouts (tests use short ones).
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Polls for hot-plug every `poll`.
    pub fn with_poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    fn note_problems(&self, found: Vec<DriverStatus>) {
        *self.problems.lock().unwrap_or_else(PoisonError::into_inner) = found;
    }

    fn candidates(&self) -> Result<Vec<Candidate>> {
        Ok(candidates(&self.catalog, &self.source.enumerate()?))
    }
}

fn poll_from_env() -> Duration {
    std::env::var(ENV_POLL_MS)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis)
        .unwrap_or(DEFAULT_POLL)
}

impl Driver for HidDriver {
    fn kind(&self) -> CarrierKind {
        CarrierKind::Hid
    }

    fn carriers(&self) -> Result<Vec<Arc<dyn Carrier>>> {
        let mut carriers: Vec<Arc<dyn Carrier>> = Vec::new();
        let mut problems = Vec::new();
        for candidate in self.candidates()? {
            match open_carrier(self.source.as_ref(), &candidate, &self.options, self.timeouts) {
                Ok(c) => carriers.push(Arc::new(c)),
                // Unplugged while we looked.
                Err(Error::TokenRemoved) => {}
                Err(e) => problems.push(DriverStatus {
                    subject: format!("{} ({} {})", candidate.device.path, candidate.manufacturer, candidate.model),
                    ok: false,
                    message: format!("the HID token could not be opened: {e}"),
                }),
            }
        }
        self.note_problems(problems);
        Ok(carriers)
    }

    fn watch(&self, sink: EventSink) -> Result<Box<dyn Watch>> {
        let source = self.source.clone();
        let catalog = self.catalog.clone();
        let options = self.options.clone();
        let timeouts = self.timeouts;
        let opener: watch::Opener = Arc::new(move |candidate: &Candidate| {
            open_carrier(source.as_ref(), candidate, &options, timeouts).map(|c| c.info().clone())
        });
        let lister: watch::Lister = {
            let source = self.source.clone();
            Arc::new(move || Ok(candidates(&catalog, &source.enumerate()?)))
        };
        Ok(Box::new(watch::start(lister, opener, sink, self.poll)?))
    }

    fn status(&self) -> Vec<DriverStatus> {
        let mut out = match self.source.enumerate() {
            Ok(devices) => {
                let known = candidates(&self.catalog, &devices);
                vec![DriverStatus {
                    subject: "hid".into(),
                    ok: true,
                    message: format!(
                        "{} HID interface(s); {} known to the catalog as HID carriers{}",
                        devices.len(),
                        known.len(),
                        if known.is_empty() {
                            String::new()
                        } else {
                            format!(
                                ": {}",
                                known
                                    .iter()
                                    .map(|c| format!("{} {} at {}", c.manufacturer, c.model, c.device.path))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        }
                    ),
                }]
            }
            Err(e) => vec![DriverStatus { subject: "hid".into(), ok: false, message: e.to_string() }],
        };
        out.extend(self.problems.lock().unwrap_or_else(PoisonError::into_inner).iter().cloned());
        out
    }
}
