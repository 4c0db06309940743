//! ukey: the CLI, the local agent, the custody policy and the audit log, on top of the carrier
//! drivers under `drivers/`.

pub mod agent;
pub mod audit;
pub mod cli;
pub mod config;
pub mod doctor;
pub mod policy;
pub mod registry;
pub mod resolve;
