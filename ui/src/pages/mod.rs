//! One module per dashboard page (docs/spec.md, "Dashboard"), and one per part that
//! pages share or that makes a page too long to read: a history (`history`), a printer's
//! condition (`printer_state`) and connection (`connection`), the queue form's G-code
//! (`gcode`). Pages read the [`super::FarmStore`] from the context and lay out what
//! [`super::model`] computes; they never build API URLs.

pub mod cluster;
pub mod connection;
pub mod filaments;
pub mod gcode;
pub mod history;
pub mod jobs;
pub mod overview;
pub mod printer_state;
pub mod printers;
