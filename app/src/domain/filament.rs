//! A filament spool: its material, colour and how many grams it holds.

use super::{Id, Text};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The materials the farm prints with. Input is case-insensitive; output is upper case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum FilamentType {
    #[serde(rename = "PLA")]
    Pla,
    #[serde(rename = "PETG")]
    Petg,
    #[serde(rename = "ABS")]
    Abs,
    #[serde(rename = "TPU")]
    Tpu,
}

impl FilamentType {
    pub const ALL: [FilamentType; 4] = [Self::Pla, Self::Petg, Self::Abs, Self::Tpu];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pla => "PLA",
            Self::Petg => "PETG",
            Self::Abs => "ABS",
            Self::Tpu => "TPU",
        }
    }
}

impl fmt::Display for FilamentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The input named no known filament type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be one of PLA, PETG, ABS, TPU")]
pub struct UnknownFilamentType;

impl FromStr for FilamentType {
    type Err = UnknownFilamentType;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(raw.trim()))
            .ok_or(UnknownFilamentType)
    }
}

/// A stored spool. `remaining_weight_in_grams <= total_weight_in_grams` always holds:
/// it is checked on creation and remaining only ever goes down (by a job reaching `Done`,
/// which is only allowed for weight that was reserved out of `remaining`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Filament {
    pub id: Id,
    #[serde(rename = "type")]
    pub kind: FilamentType,
    pub color: Text,
    pub total_weight_in_grams: u64,
    pub remaining_weight_in_grams: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filament_types_parse_in_any_case_and_print_upper_case() {
        for (raw, want) in [
            ("pla", FilamentType::Pla),
            ("PLA", FilamentType::Pla),
            ("PeTg", FilamentType::Petg),
            ("abs", FilamentType::Abs),
            (" tpu ", FilamentType::Tpu),
        ] {
            assert_eq!(raw.parse::<FilamentType>(), Ok(want), "{raw}");
            assert_eq!(want.to_string(), want.as_str());
        }
        for bad in ["", "nylon", "PLA+", "p l a"] {
            assert_eq!(
                bad.parse::<FilamentType>(),
                Err(UnknownFilamentType),
                "{bad}"
            );
        }
    }
}
