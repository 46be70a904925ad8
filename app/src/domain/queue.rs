//! The farm queue: which queued job a printer may take, and the order jobs go in.
//!
//! A job names what it needs, not necessarily where it prints: a printer (or none: any),
//! a spool (or none: any spool of a [`Material`]). A connected printer that is idle, has a
//! clear bed and says which spool is loaded takes the first job of the queue it fits
//! ([`spool_for`]); the dispatch then records the printer and the spool, and a job that
//! named only a material reserves its grams on that spool from then on.
//!
//! The order is a sort key per job ([`crate::PrintJob::queue_rank`]): new jobs go last,
//! moving one takes the midpoint between its new neighbours ([`rank_between`]), and when
//! two neighbours leave no room the queue is numbered afresh. Pure rules, no state.

use super::{Filament, FilamentType, Id, PrintJob, Printer, Text, Timestamp};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The distance between the ranks of jobs queued one after the other: room for about
/// twenty moves between any two of them before the queue is numbered afresh.
pub const RANK_GAP: i64 = 1 << 20;

/// The material and colour a job's spool must have when it names no spool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Material {
    #[serde(rename = "type")]
    pub kind: FilamentType,
    /// Compared without regard to case or surrounding spaces ("Red" fits "red ").
    pub color: Text,
}

impl Material {
    pub fn fits(&self, spool: &Filament) -> bool {
        spool.kind == self.kind
            && spool
                .color
                .as_str()
                .trim()
                .eq_ignore_ascii_case(self.color.as_str().trim())
    }
}

/// A printer's spool as the queue sees it: the spool, and what its jobs leave of it.
#[derive(Debug, Clone, Copy)]
pub struct LoadedSpool<'a> {
    pub filament: &'a Filament,
    pub available_grams: u64,
}

/// Why a queued job does not go to a printer (the refusal of a dispatch says it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unfit {
    NoStoredFile,
    NotConnected,
    /// The printer finished a print and waits until someone clears its bed.
    AwaitingClear,
    OtherPrinter,
    NoSpoolLoaded,
    OtherSpool,
    OtherMaterial,
    NotEnoughFilament {
        available: u64,
    },
}

impl fmt::Display for Unfit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoStoredFile => f.write_str("it has no stored file"),
            Self::NotConnected => f.write_str("the printer has no connection"),
            Self::AwaitingClear => f.write_str("the printer waits for its bed to be cleared"),
            Self::OtherPrinter => f.write_str("it is for another printer"),
            Self::NoSpoolLoaded => f.write_str("the printer says no spool is loaded"),
            Self::OtherSpool => f.write_str("the printer has another spool loaded"),
            Self::OtherMaterial => {
                f.write_str("the printer's spool is not of the material and colour it needs")
            }
            Self::NotEnoughFilament { available } => {
                write!(f, "the printer's spool has only {available} g available")
            }
        }
    }
}

/// The spool `job` prints with if `printer` takes it now, or why it may not.
///
/// - Only a job of a stored file goes to a connected printer with a clear bed.
/// - A job that names a printer goes to that printer only.
/// - A job that names a spool goes where that spool is loaded; to the printer it names
///   also when that printer says nothing about its spool (how printers were before they
///   said: such jobs keep going where they went).
/// - A job that names a material goes to a printer whose loaded spool is of that material
///   and colour and still has the job's grams available (they are reserved only now).
pub fn spool_for(
    job: &PrintJob,
    printer: &Printer,
    loaded: Option<LoadedSpool>,
) -> Result<Id, Unfit> {
    if job.file_id.is_none() {
        return Err(Unfit::NoStoredFile);
    }
    if !printer.is_connected() {
        return Err(Unfit::NotConnected);
    }
    if printer.awaiting_clear.is_some() {
        return Err(Unfit::AwaitingClear);
    }
    let named_here = match &job.printer_id {
        Some(id) if id != &printer.id => return Err(Unfit::OtherPrinter),
        Some(_) => true,
        None => false,
    };
    match (&job.filament_id, loaded) {
        (Some(spool), None) if named_here => Ok(spool.clone()),
        (Some(_), None) | (None, None) => Err(Unfit::NoSpoolLoaded),
        (Some(spool), Some(loaded)) if &loaded.filament.id == spool => Ok(spool.clone()),
        (Some(_), Some(_)) => Err(Unfit::OtherSpool),
        (None, Some(loaded)) => {
            let fits = job
                .material
                .as_ref()
                .is_some_and(|m| m.fits(loaded.filament));
            if !fits {
                return Err(Unfit::OtherMaterial);
            }
            if loaded.available_grams < job.print_weight_in_grams {
                return Err(Unfit::NotEnoughFilament {
                    available: loaded.available_grams,
                });
            }
            Ok(loaded.filament.id.clone())
        }
    }
}

/// A queued job's place: its rank (none: before every ranked job), then its queue time
/// and id, so jobs of equal rank keep their order of arrival.
pub type QueueKey = (i64, Option<Timestamp>, Id);

pub fn queue_key(job: &PrintJob) -> QueueKey {
    (
        job.queue_rank.unwrap_or(i64::MIN),
        job.created_at,
        job.id.clone(),
    )
}

/// Where a job is to go in the queue (`PUT /api/v1/queue/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueuePlace {
    First,
    Last,
    Before(Id),
    After(Id),
}

/// A rank strictly between `lower` and `upper` (either may be open), `None` when they
/// leave no room (the queue is then numbered afresh).
pub fn rank_between(lower: Option<i64>, upper: Option<i64>) -> Option<i64> {
    match (lower, upper) {
        (None, None) => Some(0),
        (Some(low), None) => low.checked_add(RANK_GAP),
        (None, Some(high)) => high.checked_sub(RANK_GAP),
        (Some(low), Some(high)) => {
            let (low, high) = (i128::from(low), i128::from(high));
            let mid = low + (high - low) / 2;
            // In range: low < mid < high, both i64.
            (high - low >= 2).then(|| i64::try_from(mid).unwrap_or(0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::printer::BedWait;
    use crate::domain::{Connection, ConnectionKind};

    fn id(raw: &str) -> Id {
        Id::parse(raw).expect("id")
    }

    fn text(raw: &str) -> Text {
        Text::parse(raw).expect("text")
    }

    fn spool(raw: &str, kind: FilamentType, color: &str) -> Filament {
        Filament {
            id: id(raw),
            kind,
            color: text(color),
            total_weight_in_grams: 1000,
            remaining_weight_in_grams: 1000,
        }
    }

    fn connected(raw: &str) -> Printer {
        Printer {
            connection: Some(Connection {
                kind: ConnectionKind::OctoPrint,
                url: "http://host".to_owned(),
                api_key_set: false,
                auto_dispatch: true,
                self_clearing: false,
            }),
            ..Printer::new(id(raw), text("Prusa"), text("MK4"))
        }
    }

    fn job(printer: Option<&str>, filament: Option<&str>, material: Option<Material>) -> PrintJob {
        let mut job = PrintJob::queued(id("j"), id("p"), id("f"), text("a.gcode"), 100);
        job.printer_id = printer.map(id);
        job.filament_id = filament.map(id);
        job.material = material;
        job.file_id = Some(id("file"));
        job
    }

    fn loaded(filament: &Filament, available_grams: u64) -> Option<LoadedSpool<'_>> {
        Some(LoadedSpool {
            filament,
            available_grams,
        })
    }

    fn red_pla() -> Material {
        Material {
            kind: FilamentType::Pla,
            color: text("Red"),
        }
    }

    #[test]
    fn a_job_for_a_printer_goes_there_only() {
        let red = spool("s1", FilamentType::Pla, "red");
        let for_p1 = job(Some("p1"), Some("s1"), None);
        assert_eq!(spool_for(&for_p1, &connected("p1"), None), Ok(id("s1")));
        assert_eq!(
            spool_for(&for_p1, &connected("p1"), loaded(&red, 0)),
            Ok(id("s1"))
        );
        assert_eq!(
            spool_for(&for_p1, &connected("p2"), loaded(&red, 500)),
            Err(Unfit::OtherPrinter)
        );
        let blue = spool("s2", FilamentType::Pla, "blue");
        assert_eq!(
            spool_for(&for_p1, &connected("p1"), loaded(&blue, 500)),
            Err(Unfit::OtherSpool),
            "a printer that says which spool it has gets only that spool's jobs"
        );
    }

    #[test]
    fn a_job_for_a_spool_goes_where_the_spool_is_loaded() {
        let red = spool("s1", FilamentType::Pla, "red");
        let other = spool("s2", FilamentType::Pla, "red");
        let for_spool = job(None, Some("s1"), None);
        assert_eq!(
            spool_for(&for_spool, &connected("p9"), loaded(&red, 0)),
            Ok(id("s1"))
        );
        assert_eq!(
            spool_for(&for_spool, &connected("p9"), loaded(&other, 900)),
            Err(Unfit::OtherSpool)
        );
        assert_eq!(
            spool_for(&for_spool, &connected("p9"), None),
            Err(Unfit::NoSpoolLoaded)
        );
    }

    #[test]
    fn a_job_for_a_material_needs_that_material_colour_and_grams() {
        let for_red = job(None, None, Some(red_pla()));
        let red = spool("s1", FilamentType::Pla, " RED ");
        assert_eq!(
            spool_for(&for_red, &connected("p"), loaded(&red, 100)),
            Ok(id("s1"))
        );
        assert_eq!(
            spool_for(&for_red, &connected("p"), loaded(&red, 99)),
            Err(Unfit::NotEnoughFilament { available: 99 })
        );
        let petg = spool("s2", FilamentType::Petg, "red");
        let blue = spool("s3", FilamentType::Pla, "blue");
        for other in [&petg, &blue] {
            assert_eq!(
                spool_for(&for_red, &connected("p"), loaded(other, 900)),
                Err(Unfit::OtherMaterial)
            );
        }
        assert_eq!(
            spool_for(&for_red, &connected("p"), None),
            Err(Unfit::NoSpoolLoaded)
        );
        let on_p1 = job(Some("p1"), None, Some(red_pla()));
        assert_eq!(
            spool_for(&on_p1, &connected("p1"), loaded(&red, 500)),
            Ok(id("s1"))
        );
        assert_eq!(
            spool_for(&on_p1, &connected("p2"), loaded(&red, 500)),
            Err(Unfit::OtherPrinter)
        );
    }

    #[test]
    fn nothing_goes_to_an_unconnected_printer_a_full_bed_or_without_a_file() {
        let red = spool("s1", FilamentType::Pla, "red");
        let any = job(None, Some("s1"), None);
        let unconnected = Printer::new(id("p"), text("Prusa"), text("MK4"));
        assert_eq!(
            spool_for(&any, &unconnected, loaded(&red, 500)),
            Err(Unfit::NotConnected)
        );
        let full = Printer {
            awaiting_clear: Some(BedWait {
                job_id: id("before"),
                since: Some(Timestamp::from_unix_ms(1)),
            }),
            ..connected("p")
        };
        assert_eq!(
            spool_for(&any, &full, loaded(&red, 500)),
            Err(Unfit::AwaitingClear)
        );
        let by_path = PrintJob {
            file_id: None,
            ..any.clone()
        };
        assert_eq!(
            spool_for(&by_path, &connected("p"), loaded(&red, 500)),
            Err(Unfit::NoStoredFile)
        );
    }

    #[test]
    fn a_rank_between_two_lies_strictly_between_or_there_is_no_room() {
        assert_eq!(rank_between(None, None), Some(0));
        assert_eq!(rank_between(Some(5), None), Some(5 + RANK_GAP));
        assert_eq!(rank_between(None, Some(5)), Some(5 - RANK_GAP));
        assert_eq!(rank_between(Some(0), Some(10)), Some(5));
        assert_eq!(rank_between(Some(0), Some(2)), Some(1));
        assert_eq!(rank_between(Some(0), Some(1)), None);
        assert_eq!(rank_between(Some(3), Some(3)), None);
        assert_eq!(rank_between(Some(i64::MAX), None), None);
        assert_eq!(rank_between(None, Some(i64::MIN)), None);
        let wide = rank_between(Some(i64::MIN), Some(i64::MAX)).expect("room");
        assert!(i64::MIN < wide && wide < i64::MAX);
        // Twenty moves into one gap fit before the queue must be renumbered.
        let (mut low, high) = (0, RANK_GAP);
        for _ in 0..19 {
            low = rank_between(Some(low), Some(high)).expect("room");
        }
        assert!(low < high);
    }
}
