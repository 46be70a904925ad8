//! A printer of the farm: who made it and which model it is.

use super::{Id, Text};
use serde::{Deserialize, Serialize};

/// A stored printer. Built only by [`crate::api::parse_create_printer`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Printer {
    pub id: Id,
    pub company: Text,
    pub model: Text,
}
