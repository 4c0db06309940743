//! placeholder, replaced by the driver's implementation
