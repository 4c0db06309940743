//! udev rules for the catalog's carriers: generated from the catalog ([`render`]) and checked
//! for syntax ([`check_syntax`]) where `udevadm verify` is not available.

mod render;
mod syntax;

pub use render::{RULES_FILE_NAME, render};
pub use syntax::{RuleProblem, check_syntax};
