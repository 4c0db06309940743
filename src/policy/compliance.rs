//! Is a carrier a compliant carrier? Only the catalog's word counts, and only the unit's word:
//! the built-in seed plus the unit's `catalog.d` in the system directory. A holder's own catalog
//! (`~/.config/ukey/catalog.d`) is ignored here — it may teach ukey a new model, but cannot
//! declare anything compliant.
//!
//! The model is matched by ukey itself from what the carrier reports (ATR, USB ids, PKCS#11
//! module, reader name); the driver's own `catalog_entry` is used only when none of these match.
//! A software token (`CarrierInfo::software`) is never compliant, whatever any catalog says.

use std::path::Path;

use serde::Serialize;

use ukey_api::{CarrierInfo, CarrierKind};
use ukey_catalog::{Catalog, CatalogDirs, Entry};

/// What the catalog says about one carrier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Compliance {
    /// The catalog entry, when one matched.
    pub entry: Option<String>,
    /// Manufacturer and model from the entry.
    pub model: Option<String>,
    /// Compliant carrier.
    pub compliant: bool,
    /// Why, for a person.
    pub reason: String,
}

/// The unit's catalog (seed + system layer).
#[derive(Debug)]
pub struct UnitCatalog {
    catalog: Catalog,
}

impl UnitCatalog {
    /// Loads the seed and the unit's `catalog.d` (problems are logged; the rest loads).
    pub fn load(system_catalog_dir: &Path) -> Self {
        let (catalog, problems) = ukey_catalog::load(&CatalogDirs::new(Some(system_catalog_dir.to_path_buf()), None));
        for p in problems {
            log::warn!("carrier catalog: {p}");
        }
        UnitCatalog { catalog }
    }

    /// Classifies a carrier.
    pub fn classify(&self, info: &CarrierInfo) -> Compliance {
        if info.software || info.kind == CarrierKind::Soft {
            return Compliance {
                entry: Some("ukey-soft".into()),
                model: Some("ukey built-in software token".into()),
                compliant: false,
                reason: "a software token keeps its keys in files on this computer; it is not a compliant carrier"
                    .into(),
            };
        }
        match self.find(info) {
            Some(entry) => Compliance {
                entry: Some(entry.id.clone()),
                model: Some(entry.display_name()),
                compliant: entry.is_compliant(),
                reason: if entry.compliance.reason.is_empty() {
                    if entry.is_compliant() {
                        "the catalog lists it as a compliant carrier".into()
                    } else {
                        "the catalog lists it as not compliant".into()
                    }
                } else {
                    entry.compliance.reason.clone()
                },
            },
            None => Compliance {
                entry: None,
                model: None,
                compliant: false,
                reason: format!(
                    "its model ({} {}) is not in the unit's carrier catalog, so it is not known to be compliant; the unit can add it under catalog.d",
                    info.manufacturer.trim(),
                    info.model.trim()
                ),
            },
        }
    }

    fn find(&self, info: &CarrierInfo) -> Option<&Entry> {
        let by_atr = info.atr.as_deref().and_then(|a| self.catalog.match_atr(a));
        let by_usb = || info.usb.and_then(|u| self.catalog.match_usb(u.vendor, u.product));
        let by_module = || {
            (info.kind == CarrierKind::Pkcs11)
                .then(|| module_of(&info.location))
                .flatten()
                .and_then(|m| self.catalog.match_module(m))
        };
        let by_reader =
            || (info.kind == CarrierKind::Pcsc).then(|| self.catalog.match_reader(&info.location)).flatten();
        let by_driver = || info.catalog_entry.as_deref().and_then(|id| self.catalog.entry(id));
        by_atr.or_else(by_usb).or_else(by_module).or_else(by_reader).or_else(by_driver)
    }
}

/// The module path in a PKCS#11 carrier's location (`/usr/lib/x.so slot 3`).
fn module_of(location: &str) -> Option<&str> {
    let path = location.rsplit_once(" slot ").map(|(m, _)| m).unwrap_or(location);
    (!path.is_empty()).then_some(path)
}

#[cfg(test)]
mod tests {
    use ukey_api::CarrierId;

    use super::*;

    fn info(kind: CarrierKind, location: &str, atr: Option<Vec<u8>>) -> CarrierInfo {
        CarrierInfo {
            id: CarrierId::new(kind, &["1"]),
            kind,
            label: "t".into(),
            manufacturer: "m".into(),
            model: "x".into(),
            serial: "1".into(),
            location: location.into(),
            atr,
            usb: None,
            catalog_entry: None,
            software: kind == CarrierKind::Soft,
            read_only: false,
            initialized: true,
        }
    }

    #[test]
    fn soft_tokens_are_never_compliant_and_unknown_models_are_not_either() {
        let dir = tempfile::tempdir().unwrap();
        let cat = UnitCatalog::load(&dir.path().join("catalog.d"));
        assert!(!cat.classify(&info(CarrierKind::Soft, "/x", None)).compliant);
        let unknown = cat.classify(&info(CarrierKind::Pkcs11, "/usr/lib/softhsm/libsofthsm2.so slot 1", None));
        assert!(!unknown.compliant && unknown.entry.is_none(), "{unknown:?}");
        let yubikey_atr = hex::decode("3BFD1300008131FE158073C021C057597562694B657940").unwrap();
        let yk = cat.classify(&info(CarrierKind::Pcsc, "Yubico YubiKey OTP+FIDO+CCID 00 00", Some(yubikey_atr)));
        assert!(yk.compliant, "{yk:?}");
        assert_eq!(module_of("/a/b.so slot 12"), Some("/a/b.so"));
    }
}
