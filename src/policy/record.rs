//! A custody record: which carrier, whose it is, who may use it for what, and since when.
//!
//! One TOML file per carrier in the registry (`custody/<serial>.toml`):
//!
//! ```toml
//! status = "active"                     # active | suspended | revoked
//! accounts = ["alice"]                  # OS logins (or "#1001" for a uid) allowed to use it
//! rights = ["sign", "auth"]             # sign, auth, enroll, decrypt
//! origins = []                          # web origins allowed (empty: any origin the holder paired)
//! custodian = "Zhang San"               # who keeps the carrier
//! certificates = ["9f…"]                # SHA-256 fingerprints of its certificates
//! registered = "2025-03-01T10:00:00Z"
//! issued = "2025-03-01T10:00:00Z"
//! operator = "helpdesk-li"              # who registered it
//! updated = "2025-03-01T10:00:00Z"
//! updated_by = "helpdesk-li"
//!
//! [carrier]
//! serial = "5c1b0a3f"
//! model = "SoftHSM v2"
//! manufacturer = "SoftHSM project"
//!
//! [holder]
//! name = "Zhang San"
//! id = "E1001"
//! unit = "Finance"
//! ```

use serde::{Deserialize, Serialize};

use crate::agent::gate::Operation;

/// Whether a record lets its carrier be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// In use by its holder.
    #[default]
    Active,
    /// Temporarily barred (lost and searched for, holder on leave); can be reactivated.
    Suspended,
    /// Permanently withdrawn (the carrier was reset, lost for good, or the holder left).
    Revoked,
}

impl Status {
    /// The name in files and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Suspended => "suspended",
            Status::Revoked => "revoked",
        }
    }
}

/// A use right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Right {
    /// Make signatures.
    Sign,
    /// Log in to web sites (authentication tokens).
    Auth,
    /// Generate keys, make requests, store certificates.
    Enroll,
    /// Decrypt (no carrier operation uses it yet; recorded for the unit's books).
    Decrypt,
}

impl Right {
    /// The name in files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Right::Sign => "sign",
            Right::Auth => "auth",
            Right::Enroll => "enroll",
            Right::Decrypt => "decrypt",
        }
    }

    /// Parses one name.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "sign" => Some(Right::Sign),
            "auth" | "authenticate" => Some(Right::Auth),
            "enroll" | "enrol" => Some(Right::Enroll),
            "decrypt" => Some(Right::Decrypt),
            _ => None,
        }
    }

    /// Parses `sign,auth`.
    pub fn parse_list(text: &str) -> Result<Vec<Right>, String> {
        let mut out = Vec::new();
        for part in text.split(',').filter(|p| !p.trim().is_empty()) {
            let r = Right::parse(part)
                .ok_or_else(|| format!("`{}` is not a right: use sign, auth, enroll or decrypt", part.trim()))?;
            if !out.contains(&r) {
                out.push(r);
            }
        }
        if out.is_empty() {
            return Err("no rights given: use sign, auth, enroll or decrypt, separated by commas".into());
        }
        Ok(out)
    }

    /// The right an operation needs; `None` for operations every allowed account may do on its
    /// own carrier (listing, checking or changing its PIN, unblocking it with the PUK, reading its
    /// own private data objects). Writing and deleting objects change what the carrier holds:
    /// that is enrolment.
    pub fn needed_for(op: Operation) -> Option<Right> {
        match op {
            Operation::Sign => Some(Right::Sign),
            Operation::Authenticate => Some(Right::Auth),
            Operation::GenerateKey
            | Operation::CreateCsr
            | Operation::ImportCertificate
            | Operation::WriteData
            | Operation::DeleteObject => Some(Right::Enroll),
            Operation::List
            | Operation::ChangePin
            | Operation::UnblockPin
            | Operation::Initialize
            | Operation::VerifyPin
            | Operation::ReadData => None,
        }
    }
}

/// The carrier a record is for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CarrierRef {
    /// Serial number as the carrier reports it: the key of the registry.
    pub serial: String,
    /// Model as reported when it was registered.
    pub model: String,
    /// Manufacturer as reported.
    pub manufacturer: String,
}

/// The holder.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Holder {
    /// Full name.
    pub name: String,
    /// The unit's identifier for the person (staff number).
    pub id: String,
    /// The unit or department.
    pub unit: String,
}

/// One custody record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CustodyRecord {
    /// Active, suspended or revoked.
    pub status: Status,
    /// Why the status was last changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// OS accounts allowed to use the carrier.
    pub accounts: Vec<String>,
    /// Use rights.
    pub rights: Vec<Right>,
    /// Web origins allowed; empty: any origin the holder paired.
    pub origins: Vec<String>,
    /// Who keeps the carrier.
    pub custodian: String,
    /// SHA-256 fingerprints (hex) of the certificates on it.
    pub certificates: Vec<String>,
    /// When it was registered.
    pub registered: String,
    /// When the certificate was issued to the holder.
    pub issued: String,
    /// Who registered it.
    pub operator: String,
    /// Last change.
    pub updated: String,
    /// Who made the last change.
    pub updated_by: String,
    /// The carrier.
    pub carrier: CarrierRef,
    /// The holder.
    pub holder: Holder,
}

impl CustodyRecord {
    /// "Zhang San (Finance)": how refusals name the holder.
    pub fn holder_label(&self) -> String {
        if self.holder.unit.is_empty() {
            self.holder.name.clone()
        } else {
            format!("{} ({})", self.holder.name, self.holder.unit)
        }
    }

    /// Whether the account (login, or `#uid`) is allowed.
    pub fn allows_account(&self, login: Option<&str>, uid: u32) -> bool {
        let by_uid = format!("#{uid}");
        self.accounts.iter().any(|a| Some(a.as_str()) == login || *a == by_uid)
    }

    /// Checks a record before it is written: what must be there for enforcement to work.
    pub fn validate(&self) -> Result<(), String> {
        if self.carrier.serial.trim().is_empty() {
            return Err("the carrier has no serial number; ukey identifies carriers by serial".into());
        }
        if self.holder.name.trim().is_empty() {
            return Err("the holder's name is missing (--holder-name)".into());
        }
        if self.accounts.is_empty() {
            return Err("no account may use it: give at least one --account".into());
        }
        if self.rights.is_empty() {
            return Err("no rights: give --rights sign,auth (or enroll, decrypt)".into());
        }
        for fp in &self.certificates {
            if fp.len() != 64 || !fp.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("`{fp}` is not a SHA-256 certificate fingerprint"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_parse_and_map_to_operations() {
        assert_eq!(Right::parse_list("sign, auth,sign").unwrap(), vec![Right::Sign, Right::Auth]);
        assert!(Right::parse_list("sign,fly").unwrap_err().contains("fly"));
        assert!(Right::parse_list("").is_err());
        assert_eq!(Right::needed_for(Operation::CreateCsr), Some(Right::Enroll));
        assert_eq!(Right::needed_for(Operation::ChangePin), None);
    }

    #[test]
    fn a_record_round_trips_through_toml() {
        let mut r = CustodyRecord {
            accounts: vec!["alice".into(), "#1002".into()],
            rights: vec![Right::Sign],
            ..Default::default()
        };
        r.carrier.serial = "0001".into();
        r.holder.name = "Zhang San".into();
        r.holder.unit = "Finance".into();
        let text = toml::to_string(&r).unwrap();
        let back: CustodyRecord = toml::from_str(&text).unwrap();
        assert_eq!(back, r);
        assert!(
            r.allows_account(Some("alice"), 5) && r.allows_account(None, 1002) && !r.allows_account(Some("bob"), 7)
        );
        assert_eq!(r.holder_label(), "Zhang San (Finance)");
        assert!(r.validate().is_ok());
    }
}
