//! Driving printers through their hosts (OctoPrint, Moonraker).
//!
//! While a node leads, it drives every connected printer (`supervisor`): one driver per
//! printer (`printer`) polls the host (`octoprint`, `moonraker`, in the terms of `host`),
//! commits the printer's status when it changes, dispatches its next job, starts it,
//! adopts a print already under way and ends jobs on the printer's word. Every report is fenced by the
//! leader's term, and the rules that keep any job from being started twice are in
//! `DESIGN.md` here.
//!
//! Progress and temperatures stay out of the log: the drivers keep them in memory and
//! every node relays the leader's (`live`).
//!
//! Must not touch: the farm's state but through proposals (`Command::Drive`).

pub mod host;
mod http_host;
pub mod live;
pub mod moonraker;
pub mod octoprint;
pub mod printer;
pub mod supervisor;
