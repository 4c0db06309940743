//! The `Carrier` trait: one certificate carrier and everything ukey can ask of it.
//!
//! Every operation is a short transaction of its own: it authenticates with the credential it is
//! given, does its work and logs out, so no PIN stays active on the carrier between calls (the
//! agent decides about caching, not the driver). Implementations serialise their own operations
//! (one at a time per carrier) and must not block other carriers.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::identity::CarrierInfo;
use crate::mechanism::{InputForm, KeyAlgorithm, Mechanism, MechanismKind, SignInput};
use crate::object::{CertificateObject, DataObjectInfo, KeyObject, ObjectId, ObjectList};
use crate::pin::{PinRole, PinState};
use crate::secret::{Pin, SecretBytes};

/// How an operation authenticates.
#[derive(Debug, Clone)]
pub enum Credential {
    /// A PIN typed by the holder (or SO PIN / PUK, by role of the operation).
    Pin(Pin),
    /// The PIN is entered on the reader's or token's own PIN pad.
    ProtectedPath,
}

/// What a carrier can do, so callers pick a mechanism it offers and hand it the input it wants.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Signature mechanisms and the input each wants.
    pub sign: Vec<(MechanismKind, InputForm)>,
    /// Key algorithms the carrier can generate.
    pub generate: Vec<KeyAlgorithm>,
    /// Certificates can be written.
    pub import_certificate: bool,
    /// Data objects can be written.
    pub data_objects: bool,
    /// The user PIN can be changed by the holder.
    pub change_pin: bool,
    /// The user PIN can be unblocked with the SO PIN / PUK.
    pub unblock_pin: bool,
    /// The carrier can be initialised or reset.
    pub initialize: bool,
    /// PIN length rules: minimum and maximum characters.
    pub pin_length: Option<(usize, usize)>,
}

impl Capabilities {
    /// The input form the carrier wants for a mechanism, or `None` if it does not offer it.
    pub fn input_for(&self, mechanism: MechanismKind) -> Option<InputForm> {
        self.sign.iter().find(|(m, _)| *m == mechanism).map(|(_, f)| *f)
    }
}

/// A request to generate a key pair on the carrier.
#[derive(Debug, Clone)]
pub struct KeyGenRequest {
    /// Algorithm and size.
    pub algorithm: KeyAlgorithm,
    /// Label for the key (and its certificate later).
    pub label: String,
    /// Id to use; the driver picks one (and reports it) when `None`. For PIV this names the slot.
    pub id: Option<ObjectId>,
}

/// A request to store a certificate next to its key.
#[derive(Debug, Clone)]
pub struct CertificateImport {
    /// DER of the certificate.
    pub der: Vec<u8>,
    /// Label; defaults to the label of the matching key.
    pub label: Option<String>,
    /// Id of the key it belongs to; the driver finds the key by public key when `None`.
    pub id: Option<ObjectId>,
}

/// A request to write a data object.
#[derive(Debug, Clone)]
pub struct DataObjectWrite {
    /// Label.
    pub label: String,
    /// Owning application name.
    pub application: String,
    /// Carrier-specific id (PIV tag), optional.
    pub id: Option<ObjectId>,
    /// Content.
    pub value: SecretBytes,
    /// Reading needs the user PIN.
    pub private: bool,
}

/// A request to initialise (or re-initialise, wiping everything) a carrier.
#[derive(Debug, Clone)]
pub struct InitRequest {
    /// The SO PIN / PUK that authorises it (for a fresh soft token: the one to set).
    pub so_pin: Pin,
    /// The new token label.
    pub label: String,
    /// The user PIN to set afterwards, if the carrier allows setting it in the same step.
    pub user_pin: Option<Pin>,
}

/// One certificate carrier.
pub trait Carrier: Send + Sync {
    /// Identity; stable for the life of this handle.
    fn info(&self) -> &CarrierInfo;

    /// What the carrier can do.
    fn capabilities(&self) -> Result<Capabilities>;

    /// The input form the carrier wants for `mechanism` (`None`: it cannot make it), as
    /// [`Capabilities::input_for`] answers. A one-shot `ukey sign` needs only this; a driver
    /// that can answer it without reading everything [`Carrier::capabilities`] reports
    /// overrides it.
    fn sign_input_form(&self, mechanism: MechanismKind) -> Result<Option<InputForm>> {
        Ok(self.capabilities()?.input_for(mechanism))
    }

    /// PIN state, read without spending a try.
    fn pin_state(&self) -> Result<PinState>;

    /// Lists certificates, keys and data objects (public objects only; private data objects are
    /// listed when the carrier shows them without login). Unreadable objects go to `problems`.
    fn objects(&self) -> Result<ObjectList>;

    /// Signs with a private key. The input is prepared by the core (`crypto::prepare_input`)
    /// in the form [`Capabilities::input_for`] asked for. Returns the raw signature: `r ‖ s`
    /// (each component the curve's field size) for EC and SM2, the signature block for RSA.
    fn sign(&self, key: &ObjectId, mechanism: &Mechanism, input: &SignInput, auth: &Credential) -> Result<Vec<u8>>;

    /// Generates a key pair on the carrier and returns the new key.
    fn generate_key(&self, request: &KeyGenRequest, auth: &Credential) -> Result<KeyObject>;

    /// Stores a certificate; refuses one whose public key matches no key on the carrier.
    fn import_certificate(&self, request: &CertificateImport, auth: &Credential) -> Result<CertificateObject>;

    /// Writes (creates or replaces) a data object.
    fn write_data(&self, request: &DataObjectWrite, auth: &Credential) -> Result<DataObjectInfo>;

    /// Reads a data object by label (and id where the carrier uses ids); `auth` for private ones.
    fn read_data(&self, label: &str, auth: Option<&Credential>) -> Result<SecretBytes>;

    /// Deletes a key, certificate or data object by id and label. Refused where the carrier
    /// cannot delete (PIV keys are overwritten, not deleted).
    fn delete_object(&self, id: &ObjectId, label: Option<&str>, auth: &Credential) -> Result<()>;

    /// Checks a PIN. A wrong PIN spends a try and says how many are left.
    fn verify_pin(&self, role: PinRole, auth: &Credential) -> Result<()>;

    /// Changes a PIN, authenticating with the old one.
    fn change_pin(&self, role: PinRole, old: &Credential, new: &Pin) -> Result<()>;

    /// Unblocks the user PIN with the SO PIN / PUK and sets a new user PIN.
    fn unblock_pin(&self, so: &Credential, new_user_pin: &Pin) -> Result<()>;

    /// Initialises or resets the carrier: wipes keys, certificates and data, sets the label and
    /// PINs. Refused unless the SO credential is right or the carrier is in its reset state.
    fn initialize(&self, request: &InitRequest) -> Result<()>;
}
