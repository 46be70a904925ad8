//! A printer of the farm: who made it and which model it is.

use super::{Id, Text};
use serde::{Deserialize, Serialize};

/// A stored printer. Built from a request by [`crate::api::NewPrinter::into_printer`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Printer {
    pub id: Id,
    pub company: Text,
    pub model: Text,
}
