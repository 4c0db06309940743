//! The loaded catalog and its lookups. Indexes are built once at load time so matching an ATR,
//! a USB id or a module name costs a hash lookup or a short scan (a few µs at most).

use std::collections::HashMap;
use std::path::PathBuf;

use crate::atr::MAX_ATR_LEN;
use crate::entry::{Application, Entry, UsbId};
use crate::problem::{CatalogProblem, ProblemKind};

/// One ATR pattern in the index: which entry and pattern, and how it ranks.
#[derive(Debug, Clone)]
struct AtrCandidate {
    entry: usize,
    pattern: usize,
}

/// The carrier models ukey knows, after the seed, system and user layers are merged.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    entries: Vec<Entry>,
    by_id: HashMap<String, usize>,
    /// Candidates per ATR length, most specific first.
    atr_by_len: Vec<Vec<AtrCandidate>>,
    usb: HashMap<UsbId, usize>,
    modules: HashMap<String, usize>,
    /// Reader-name prefixes, longest first.
    readers: Vec<(String, usize)>,
    fallbacks: HashMap<Application, usize>,
    files: Vec<PathBuf>,
}

impl Catalog {
    /// Builds the indexes over merged entries (ids unique). When two entries claim the same USB
    /// id, module, reader prefix or fallback, the one from the higher layer (then the lower id)
    /// keeps it and the other gets a warning in `problems`.
    pub(crate) fn build(mut entries: Vec<Entry>, files: Vec<PathBuf>, problems: &mut Vec<CatalogProblem>) -> Self {
        // Winner order: higher layer first, then id.
        entries.sort_by(|a, b| b.origin.layer.cmp(&a.origin.layer).then_with(|| a.id.cmp(&b.id)));
        let mut cat = Catalog { atr_by_len: vec![Vec::new(); MAX_ATR_LEN + 1], files, ..Catalog::default() };
        let mut claim = |map_name: String, existing: Option<&usize>, entries: &[Entry], idx: usize| -> bool {
            match existing {
                None => true,
                Some(&winner) => {
                    let (Some(loser), Some(win)) = (entries.get(idx), entries.get(winner)) else { return false };
                    problems.push(CatalogProblem::warning(
                        &loser.origin.file,
                        Some(loser.origin.line),
                        Some(loser.id.clone()),
                        ProblemKind::Shadowed { what: map_name, winner: win.id.clone() },
                    ));
                    false
                }
            }
        };
        for (idx, entry) in entries.iter().enumerate() {
            for usb in &entry.usb {
                if claim(format!("USB id {usb}"), cat.usb.get(usb), &entries, idx) {
                    cat.usb.insert(*usb, idx);
                }
            }
            for module in entry.modules.all() {
                if claim(format!("module {module}"), cat.modules.get(module), &entries, idx) {
                    cat.modules.insert(module.to_string(), idx);
                }
            }
            for reader in &entry.readers {
                let existing = cat.readers.iter().find(|(r, _)| r == reader).map(|(_, i)| i);
                if claim(format!("reader prefix \"{reader}\""), existing, &entries, idx) {
                    cat.readers.push((reader.clone(), idx));
                }
            }
            if let Some(app) = entry.fallback {
                if claim(format!("the {app} fallback"), cat.fallbacks.get(&app), &entries, idx) {
                    cat.fallbacks.insert(app, idx);
                }
            }
            for (pattern, atr) in entry.atr.iter().enumerate() {
                if let Some(list) = cat.atr_by_len.get_mut(atr.len()) {
                    list.push(AtrCandidate { entry: idx, pattern });
                }
            }
        }
        // Most specific pattern first; the sort is stable, so ties keep the winner order above.
        for list in &mut cat.atr_by_len {
            list.sort_by_key(|c| {
                std::cmp::Reverse(
                    entries.get(c.entry).and_then(|e| e.atr.get(c.pattern)).map_or(0, |p| p.specificity()),
                )
            });
        }
        cat.readers.sort_by_key(|(r, _)| std::cmp::Reverse(r.len()));
        cat.by_id = entries.iter().enumerate().map(|(i, e)| (e.id.clone(), i)).collect();
        cat.entries = entries;
        cat
    }

    /// Every entry, highest layer first, then by id.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Entries sorted by id, for listings and generated files.
    pub fn entries_by_id(&self) -> Vec<&Entry> {
        let mut v: Vec<&Entry> = self.entries.iter().collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no entry loaded.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The files the entries came from (`seed:NAME.toml` for the embedded seed), in load order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The entry with this id.
    pub fn entry(&self, id: &str) -> Option<&Entry> {
        self.by_id.get(id).and_then(|i| self.entries.get(*i))
    }

    /// The model whose ATR pattern matches `atr`; when several do, the pattern fixing the most
    /// bits wins (an exact ATR beats a family pattern).
    pub fn match_atr(&self, atr: &[u8]) -> Option<&Entry> {
        let candidates = self.atr_by_len.get(atr.len())?;
        candidates.iter().find_map(|c| {
            let entry = self.entries.get(c.entry)?;
            entry.atr.get(c.pattern).filter(|p| p.matches(atr)).map(|_| entry)
        })
    }

    /// The model with this USB vendor and product id.
    pub fn match_usb(&self, vendor: u16, product: u16) -> Option<&Entry> {
        self.usb.get(&UsbId { vendor, product }).and_then(|i| self.entries.get(*i))
    }

    /// The model whose vendor PKCS#11 module this is; `module` may be a path, only its file
    /// name counts. Shared modules such as OpenSC's identify no model and match nothing.
    pub fn match_module(&self, module: &str) -> Option<&Entry> {
        let name = module.rsplit(['/', '\\']).next().unwrap_or(module);
        self.modules.get(name).and_then(|i| self.entries.get(*i))
    }

    /// The model a PC/SC reader name identifies (virtual readers); the longest prefix wins.
    pub fn match_reader(&self, reader: &str) -> Option<&Entry> {
        self.readers
            .iter()
            .find(|(prefix, _)| reader.starts_with(prefix.as_str()))
            .and_then(|(_, i)| self.entries.get(*i))
    }

    /// The generic entry for a card that has `application` but matched no model.
    pub fn fallback(&self, application: Application) -> Option<&Entry> {
        self.fallbacks.get(&application).and_then(|i| self.entries.get(*i))
    }
}
