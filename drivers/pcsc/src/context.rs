//! The PC/SC context, kept valid across pcscd restarts: every user asks [`PcscContext::get`] for
//! a context and gets a fresh one when the old one went away with its daemon.

use std::sync::{Arc, Mutex};

use ukey_api::{Error, Result};

use crate::errors;

/// A shared, self-repairing PC/SC context.
#[derive(Clone, Default)]
pub struct PcscContext {
    inner: Arc<Mutex<Option<pcsc::Context>>>,
}

impl PcscContext {
    /// A context holder; nothing is established until first use, so creating a driver never
    /// fails because pcscd is down.
    pub fn new() -> Self {
        Self::default()
    }

    /// A valid context, re-established when pcscd restarted since the last call.
    pub fn get(&self) -> Result<pcsc::Context> {
        let mut slot = self.inner.lock().map_err(|_| Error::Device("PC/SC context lock poisoned".into()))?;
        if let Some(ctx) = slot.as_ref() {
            if ctx.is_valid().is_ok() {
                return Ok(ctx.clone());
            }
            log::info!("the PC/SC context is no longer valid (pcscd restarted?); establishing a new one");
        }
        let ctx = pcsc::Context::establish(pcsc::Scope::User).map_err(|e| errors::map(e, "connect to pcscd"))?;
        *slot = Some(ctx.clone());
        Ok(ctx)
    }

    /// Forgets the current context, so the next [`PcscContext::get`] establishes a new one.
    pub fn invalidate(&self) {
        if let Ok(mut slot) = self.inner.lock() {
            *slot = None;
        }
    }

    /// The reader names pcscd knows now.
    pub fn readers(&self) -> Result<Vec<std::ffi::CString>> {
        let ctx = self.get()?;
        match ctx.list_readers_owned() {
            Ok(r) => Ok(r),
            Err(pcsc::Error::NoReadersAvailable) => Ok(Vec::new()),
            Err(e @ (pcsc::Error::NoService | pcsc::Error::ServiceStopped | pcsc::Error::InvalidHandle)) => {
                self.invalidate();
                // One retry with a fresh context: the daemon may be back already.
                let ctx = self.get()?;
                match ctx.list_readers_owned() {
                    Ok(r) => Ok(r),
                    Err(pcsc::Error::NoReadersAvailable) => Ok(Vec::new()),
                    Err(_) => Err(errors::map(e, "list readers")),
                }
            }
            Err(e) => Err(errors::map(e, "list readers")),
        }
    }
}
