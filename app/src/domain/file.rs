//! A stored G-code file: what the farm knows of it (name, size, hash, what its slicer
//! says it needs). Its bytes are not part of the replicated state: each node keeps them
//! in its own file store, and the log only records that a majority holds them
//! (`server/src/files`).

use super::{Id, Text, Timestamp};
use serde::{Deserialize, Serialize};

/// A stored G-code file, as `GET /api/v1/files/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GcodeFile {
    pub id: Id,
    /// The name it was uploaded under (`?name=`).
    pub name: Text,
    /// Bytes.
    pub size: u64,
    /// SHA-256 of the bytes, lowercase hex: how every node checks its copy.
    pub sha256: String,
    /// Filament the slicer says the print uses, in grams.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub filament_grams: Option<Quantity>,
    /// Filament length, in millimetres.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub filament_mm: Option<Quantity>,
    /// The slicer's estimate of the print time, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub print_seconds: Option<u64>,
    /// Which slicer made it ("PrusaSlicer 2.7.1").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slicer: Option<Text>,
    /// When it was stored (stamped on apply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploaded_at: Option<Timestamp>,
}

impl GcodeFile {
    /// The weight a job of this file reserves when it names none: the slicer's grams
    /// rounded up (never under-reserve), at least 1 g.
    pub fn job_weight(&self) -> Option<u64> {
        let grams = self.filament_grams?.get();
        // `Quantity` is finite and non-negative; the cap keeps the cast exact.
        Some((grams.ceil().min(super::MAX_WEIGHT_GRAMS as f64) as u64).max(1))
    }
}

/// A finite, non-negative measure read from a file (grams, millimetres). Compared by its
/// bits, so the state stays `Eq` and its digest stable: the value is decided once, by the
/// node that read the file, and copied as is into the log.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Quantity(f64);

/// A measure that is negative, infinite or NaN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be a finite number, at least 0")]
pub struct BadQuantity;

impl Quantity {
    pub fn new(value: f64) -> Result<Self, BadQuantity> {
        match value.is_finite() && value >= 0.0 {
            true => Ok(Self(value)),
            false => Err(BadQuantity),
        }
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Quantity {
    type Error = BadQuantity;
    fn try_from(value: f64) -> Result<Self, BadQuantity> {
        Self::new(value)
    }
}

impl From<Quantity> for f64 {
    fn from(quantity: Quantity) -> f64 {
        quantity.0
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for Quantity {}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(grams: Option<f64>) -> GcodeFile {
        GcodeFile {
            id: Id::parse("f1").expect("valid id"),
            name: Text::parse("benchy.gcode").expect("valid text"),
            size: 10,
            sha256: "00".repeat(32),
            filament_grams: grams.map(|g| Quantity::new(g).expect("valid grams")),
            filament_mm: None,
            print_seconds: None,
            slicer: None,
            uploaded_at: None,
        }
    }

    #[test]
    fn a_job_of_a_file_reserves_its_grams_rounded_up() {
        assert_eq!(file(Some(3.01)).job_weight(), Some(4));
        assert_eq!(file(Some(12.0)).job_weight(), Some(12));
        assert_eq!(file(Some(0.0)).job_weight(), Some(1));
        assert_eq!(
            file(Some(1e30)).job_weight(),
            Some(super::super::MAX_WEIGHT_GRAMS)
        );
        assert_eq!(file(None).job_weight(), None);
    }

    #[test]
    fn quantities_are_finite_and_not_negative() {
        for bad in [-0.5, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(Quantity::new(bad), Err(BadQuantity), "{bad}");
        }
        assert!(serde_json::from_str::<Quantity>("-1").is_err());
        let q: Quantity = serde_json::from_str("3.71").expect("a quantity");
        assert_eq!(q.get(), 3.71);
        assert_eq!(serde_json::to_string(&q).expect("serialises"), "3.71");
    }
}
