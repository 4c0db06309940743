//! Schema checks: turns a [`RawEntry`] into an [`Entry`], or into every problem found in it, each
//! with the line it is on. An entry with any error is skipped; the rest of its file still loads.

use std::ops::Range;
use std::path::Path;

use toml::Spanned;

use crate::atr::AtrPattern;
use crate::entry::{
    Application, Certification, Compliance, Entry, HidFraming, Interface, Layer, Modules, Origin, PinPolicy,
    Sm2Conventions, Sm2Input, UsbId,
};
use crate::problem::{CatalogProblem, ProblemKind};
use crate::raw::{RawAtr, RawEntry, RawModules, RawPin, RawSm2};

/// Longest id accepted: ids end up in file names, URIs and log lines.
const MAX_ID_LEN: usize = 64;

/// Where the entry being checked sits.
pub(crate) struct EntryContext<'a> {
    /// The whole file text, to turn spans into lines.
    pub text: &'a str,
    /// The file, for problems and the entry's origin.
    pub file: &'a Path,
    /// Its layer.
    pub layer: Layer,
    /// Line of the entry's table.
    pub line: usize,
}

impl EntryContext<'_> {
    fn line_of(&self, span: Range<usize>) -> usize {
        line_of(self.text, span.start)
    }
}

/// 1-based line of a byte offset.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes().get(..end).map_or(0, |b| b.iter().filter(|c| **c == b'\n').count()) + 1
}

/// Collects problems for one entry.
struct Checker<'a, 'b> {
    cx: &'a EntryContext<'b>,
    id: Option<String>,
    problems: Vec<CatalogProblem>,
}

impl Checker<'_, '_> {
    fn error_at(&mut self, line: usize, kind: ProblemKind) {
        self.problems.push(CatalogProblem::error(self.cx.file, Some(line), self.id.clone(), kind));
    }

    fn error_at_span(&mut self, span: Range<usize>, kind: ProblemKind) {
        let line = self.cx.line_of(span);
        self.error_at(line, kind);
    }

    fn error(&mut self, kind: ProblemKind) {
        self.error_at(self.cx.line, kind);
    }

    fn required_text(&mut self, field: &'static str, value: Option<Spanned<String>>) -> String {
        match value {
            None => {
                self.error(ProblemKind::MissingField(field));
                String::new()
            }
            Some(v) if v.get_ref().trim().is_empty() => {
                self.error_at_span(v.span(), ProblemKind::EmptyField(field));
                String::new()
            }
            Some(v) => v.into_inner(),
        }
    }
}

/// Checks one entry. `Ok` only when nothing is wrong with it.
pub(crate) fn validate(raw: RawEntry, cx: &EntryContext<'_>) -> Result<Entry, Vec<CatalogProblem>> {
    let mut ck = Checker { cx, id: raw.id.as_ref().map(|s| s.get_ref().clone()), problems: Vec::new() };

    let id = ck.required_text("id", raw.id.clone());
    if !id.is_empty() && !valid_id(&id) {
        let line = raw.id.as_ref().map_or(cx.line, |s| cx.line_of(s.span()));
        ck.error_at(line, ProblemKind::BadId(id.clone()));
    }
    let manufacturer = ck.required_text("manufacturer", raw.manufacturer);
    let model = ck.required_text("model", raw.model);

    let interface = match raw.interface {
        None => {
            ck.error(ProblemKind::MissingField("interface"));
            None
        }
        Some(s) => {
            let found = Interface::from_name(s.get_ref());
            if found.is_none() {
                ck.error_at_span(s.span(), ProblemKind::UnknownInterface(s.get_ref().clone()));
            }
            found
        }
    };

    let applications = raw.applications.iter().filter_map(|a| application(&mut ck, a)).collect();
    let usb = raw.usb.iter().filter_map(|u| usb_id(&mut ck, u)).collect::<Vec<_>>();
    let atr = raw.atr.iter().filter_map(|a| atr_pattern(&mut ck, a)).collect::<Vec<_>>();
    let readers = non_empty_texts(&mut ck, "readers", raw.readers);
    let aids = raw.aids.iter().filter_map(|a| aid(&mut ck, a)).collect();
    let fallback = raw.fallback.as_ref().and_then(|f| application(&mut ck, f));
    let modules = modules(&mut ck, raw.modules);
    let generic_modules = module_names(&mut ck, raw.generic_modules);

    let hid_framing = match raw.hid_framing {
        None => None,
        Some(s) => {
            let found = HidFraming::from_name(s.get_ref());
            if found.is_none() {
                ck.error_at_span(s.span(), ProblemKind::UnknownHidFraming(s.get_ref().clone()));
            }
            found
        }
    };
    match (interface, &hid_framing) {
        (Some(Interface::Hid), None) => ck.error(ProblemKind::HidFramingMismatch(
            "a hid entry needs `hid_framing` (ctaphid-msg or vendor:NAME): the HID driver cannot guess how APDUs travel",
        )),
        (Some(i), Some(_)) if i != Interface::Hid => ck.error(ProblemKind::HidFramingMismatch(
            "`hid_framing` is only for entries with interface = \"hid\"",
        )),
        _ => {}
    }

    let sm2 = raw.sm2.map(|s| sm2(&mut ck, s));
    let pin = raw.pin.map(|p| pin(&mut ck, p));
    let certification = raw
        .certification
        .into_iter()
        .map(|c| Certification { scheme: c.scheme, number: c.number, source: c.source })
        .collect();
    let compliance = match raw.compliance {
        None => {
            ck.error(ProblemKind::MissingField("compliance"));
            None
        }
        Some(c) => {
            if c.reason.trim().is_empty() {
                ck.error(ProblemKind::EmptyField("compliance.reason"));
            }
            Some(Compliance { compliant: c.compliant, reason: c.reason })
        }
    };
    let sources: Vec<String> = raw.sources.into_iter().filter(|s| !s.trim().is_empty()).collect();
    if sources.is_empty() {
        ck.error(ProblemKind::NoSources);
    }

    let identified = !usb.is_empty()
        || !atr.is_empty()
        || !readers.is_empty()
        || modules.all().next().is_some()
        || fallback.is_some();
    if interface.is_some_and(|i| i != Interface::Software) && !identified && ck.problems.is_empty() {
        ck.error(ProblemKind::NoIdentifier);
    }

    // Sub-tables that failed have already added their problems.
    let (Some(interface), Some(compliance)) = (interface, compliance) else { return Err(ck.problems) };
    let (Some(sm2), Some(pin)) = (sm2.map_or(Some(None), |s| s.map(Some)), pin.map_or(Some(None), |p| p.map(Some)))
    else {
        return Err(ck.problems);
    };
    if !ck.problems.is_empty() {
        return Err(ck.problems);
    }
    Ok(Entry {
        id,
        manufacturer,
        model,
        interface,
        applications,
        usb,
        atr,
        readers,
        aids,
        fallback,
        modules,
        generic_modules,
        hid_framing,
        sm2,
        pin,
        certification,
        compliance,
        sources,
        origin: Origin { layer: cx.layer, file: cx.file.to_path_buf(), line: cx.line },
    })
}

fn valid_id(id: &str) -> bool {
    id.len() <= MAX_ID_LEN
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
}

fn application(ck: &mut Checker<'_, '_>, name: &Spanned<String>) -> Option<Application> {
    let found = Application::from_name(name.get_ref());
    if found.is_none() {
        ck.error_at_span(name.span(), ProblemKind::UnknownApplication(name.get_ref().clone()));
    }
    found
}

fn usb_id(ck: &mut Checker<'_, '_>, raw: &Spanned<crate::raw::RawUsb>) -> Option<UsbId> {
    let check = |ck: &mut Checker<'_, '_>, field: &'static str, value: i64| match u16::try_from(value) {
        Ok(v) => Some(v),
        Err(_) => {
            ck.error_at_span(raw.span(), ProblemKind::UsbIdOutOfRange { field, value });
            None
        }
    };
    let vendor = check(ck, "vendor", raw.get_ref().vendor);
    let product = check(ck, "product", raw.get_ref().product);
    Some(UsbId { vendor: vendor?, product: product? })
}

fn atr_pattern(ck: &mut Checker<'_, '_>, raw: &Spanned<RawAtr>) -> Option<AtrPattern> {
    let (parsed, written) = match raw.get_ref() {
        RawAtr::Text(text) => (AtrPattern::parse(text), text.clone()),
        RawAtr::Masked { value, mask } => (AtrPattern::with_mask(value, mask), format!("{value} / {mask}")),
    };
    match parsed {
        Ok(p) => Some(p),
        Err(error) => {
            ck.error_at_span(raw.span(), ProblemKind::BadAtr { pattern: written, error });
            None
        }
    }
}

fn aid(ck: &mut Checker<'_, '_>, raw: &Spanned<String>) -> Option<Vec<u8>> {
    let text: String = raw.get_ref().chars().filter(|c| !c.is_whitespace() && *c != ':').collect();
    let bytes = (text.len() % 2 == 0)
        .then(|| {
            (0..text.len())
                .step_by(2)
                .map(|i| text.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
                .collect::<Option<Vec<u8>>>()
        })
        .flatten()
        .filter(|b| (5..=16).contains(&b.len()));
    if bytes.is_none() {
        ck.error_at_span(raw.span(), ProblemKind::BadAid(raw.get_ref().clone()));
    }
    bytes
}

fn non_empty_texts(ck: &mut Checker<'_, '_>, field: &'static str, raw: Vec<Spanned<String>>) -> Vec<String> {
    let mut out = Vec::new();
    for item in raw {
        if item.get_ref().trim().is_empty() {
            ck.error_at_span(item.span(), ProblemKind::EmptyField(field));
        } else {
            out.push(item.into_inner());
        }
    }
    out
}

fn module_names(ck: &mut Checker<'_, '_>, raw: Vec<Spanned<String>>) -> Vec<String> {
    let mut out = Vec::new();
    for item in raw {
        let name = item.get_ref();
        if name.trim().is_empty() {
            ck.error_at_span(item.span(), ProblemKind::EmptyField("modules"));
        } else if name.contains('/') || name.contains('\\') {
            ck.error_at_span(item.span(), ProblemKind::ModulePath(name.clone()));
        } else {
            out.push(item.into_inner());
        }
    }
    out
}

fn modules(ck: &mut Checker<'_, '_>, raw: RawModules) -> Modules {
    Modules {
        linux: module_names(ck, raw.linux),
        windows: module_names(ck, raw.windows),
        macos: module_names(ck, raw.macos),
    }
}

fn sm2(ck: &mut Checker<'_, '_>, raw: Spanned<RawSm2>) -> Option<Sm2Conventions> {
    let line = ck.cx.line_of(raw.span());
    let raw = raw.into_inner();
    let number = |ck: &mut Checker<'_, '_>, field: &'static str, v: Option<i64>| match v {
        Some(n) if n < 0 => {
            ck.error_at(line, ProblemKind::NegativeNumber { field, value: n });
            None
        }
        other => other.map(i64::unsigned_abs),
    };
    let mechanism = number(ck, "mechanism", raw.mechanism);
    let key_type = number(ck, "key_type", raw.key_type);
    let signs = match raw.signs {
        None => {
            ck.error_at(line, ProblemKind::MissingField("sm2.signs"));
            None
        }
        Some(s) => {
            let found = Sm2Input::from_name(s.get_ref());
            if found.is_none() {
                ck.error_at_span(s.span(), ProblemKind::UnknownSm2Input(s.get_ref().clone()));
            }
            found
        }
    };
    let source = match raw.source {
        Some(s) if !s.trim().is_empty() => Some(s),
        _ => {
            ck.error_at(line, ProblemKind::MissingField("sm2.source"));
            None
        }
    };
    Some(Sm2Conventions { mechanism, key_type, signs: signs?, source: source? })
}

fn pin(ck: &mut Checker<'_, '_>, raw: Spanned<RawPin>) -> Option<PinPolicy> {
    let line = ck.cx.line_of(raw.span());
    let raw = raw.into_inner();
    let small = |ck: &mut Checker<'_, '_>, field: &str, v: Option<i64>| match v {
        None => Some(None),
        Some(n) => match u8::try_from(n) {
            Ok(b) if b > 0 => Some(Some(b)),
            _ => {
                ck.error_at(line, ProblemKind::BadPinPolicy(format!("{field} = {n} is not between 1 and 255")));
                None
            }
        },
    };
    let min_length = small(ck, "min_length", raw.min_length);
    let max_length = small(ck, "max_length", raw.max_length);
    let tries = small(ck, "tries", raw.tries);
    if let (Some(Some(min)), Some(Some(max))) = (min_length, max_length) {
        if min > max {
            ck.error_at(line, ProblemKind::BadPinPolicy(format!("min_length {min} is above max_length {max}")));
            return None;
        }
    }
    let source = match raw.source {
        Some(s) if !s.trim().is_empty() => s,
        _ => {
            ck.error_at(line, ProblemKind::MissingField("pin.source"));
            return None;
        }
    };
    Some(PinPolicy { min_length: min_length?, max_length: max_length?, tries: tries?, source })
}
