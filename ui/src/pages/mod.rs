//! One module per dashboard page (docs/spec.md, "Dashboard"). Pages read the
//! [`super::FarmStore`] from the context and lay out what [`super::model`] computes; they
//! never build URLs.

pub mod cluster;
pub mod filaments;
pub mod history;
pub mod jobs;
pub mod overview;
pub mod printers;
