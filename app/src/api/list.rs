//! The query of a list (`GET /api/v1/{printers,filaments,print_jobs}`): which page, in
//! which order, with which filters, and the link to the next page.
//!
//! Pages follow the id order (server-made ids are UUIDv7, so it is creation order) and
//! continue *after* a cursor, the id of the last object of the previous page: an object
//! that exists for the whole walk is seen exactly once, however the farm changes between
//! pages, because nothing ever moves in id order.

use super::{invalid, FieldProblem, RequestError};
use crate::domain::{Id, JobStatus};
use std::collections::HashMap;

/// The most objects one page may hold; a larger `limit` is refused (`422`).
pub const MAX_PAGE_LIMIT: usize = 1000;

/// Which way a list walks the id order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Order {
    /// Smallest id first (oldest first for server-made ids).
    #[default]
    Asc,
    /// Largest id first (newest first): the history of a busy farm.
    Desc,
}

impl Order {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Asc => "asc",
            Self::Desc => "desc",
        }
    }
}

/// Paging of a list: without `limit`, the whole list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paging {
    pub limit: Option<usize>,
    /// Continue after this id (in `order`).
    pub after: Option<Id>,
    pub order: Order,
}

/// The filters of `GET /api/v1/print_jobs`; each one given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    pub status: Option<JobStatus>,
    pub printer_id: Option<Id>,
    pub filament_id: Option<Id>,
}

impl JobFilter {
    pub fn from_params(params: &HashMap<String, String>) -> Result<Self, RequestError> {
        let id = |field: &'static str| {
            params
                .get(field)
                .map(|raw| Id::parse(raw).map_err(|e| invalid(field, e.into())))
                .transpose()
        };
        Ok(Self {
            status: params
                .get("status")
                .map(|raw| super::parse_status(raw))
                .transpose()?,
            printer_id: id("printer_id")?,
            filament_id: id("filament_id")?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    pub fn matches(&self, job: &crate::PrintJob) -> bool {
        self.status.is_none_or(|s| job.status == s)
            && self
                .printer_id
                .as_ref()
                .is_none_or(|p| job.printer_id.as_ref() == Some(p))
            && self
                .filament_id
                .as_ref()
                .is_none_or(|f| job.filament_id.as_ref() == Some(f))
    }

    /// The filters as query parameters (for the next page's link).
    pub fn params(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(status) = self.status {
            out.push(("status", status.as_str().to_owned()));
        }
        if let Some(id) = &self.printer_id {
            out.push(("printer_id", id.to_string()));
        }
        if let Some(id) = &self.filament_id {
            out.push(("filament_id", id.to_string()));
        }
        out
    }
}

impl Paging {
    /// `limit` (1 to [`MAX_PAGE_LIMIT`]), `after` (an id) and `order` (`asc`, `desc`).
    pub fn from_params(params: &HashMap<String, String>) -> Result<Self, RequestError> {
        let limit = params
            .get("limit")
            .map(|raw| match raw.trim().parse::<usize>() {
                Ok(n) if (1..=MAX_PAGE_LIMIT).contains(&n) => Ok(n),
                _ => Err(invalid("limit", FieldProblem::PageLimit)),
            })
            .transpose()?;
        let after = params
            .get("after")
            .map(|raw| Id::parse(raw).map_err(|e| invalid("after", e.into())))
            .transpose()?;
        let order = match params.get("order").map(|o| o.trim().to_ascii_lowercase()) {
            None => Order::Asc,
            Some(o) if o == "asc" => Order::Asc,
            Some(o) if o == "desc" => Order::Desc,
            Some(_) => return Err(invalid("order", FieldProblem::Order)),
        };
        Ok(Self {
            limit,
            after,
            order,
        })
    }

    /// The relative URL of the page after one that ended with `last`: the same path,
    /// limit, order and filters, continuing after `last`. Every value is URL-safe as it
    /// is (ids, statuses, numbers, words).
    pub fn next_link(
        &self,
        path: &str,
        last: &Id,
        filters: &[(&'static str, String)],
        consistency: Option<&str>,
    ) -> String {
        let mut params = vec![
            ("limit", self.limit.unwrap_or(MAX_PAGE_LIMIT).to_string()),
            ("after", last.to_string()),
        ];
        if self.order != Order::Asc {
            params.push(("order", self.order.as_str().to_owned()));
        }
        params.extend(filters.iter().cloned());
        if let Some(consistency) = consistency {
            params.push(("consistency", consistency.to_owned()));
        }
        let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("<{path}?{}>; rel=\"next\"", query.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn limits_must_be_between_one_and_the_maximum() {
        for good in ["1", "100", " 1000 "] {
            let paging = Paging::from_params(&params(&[("limit", good)])).expect(good);
            assert_eq!(paging.limit, good.trim().parse().ok());
        }
        for bad in [
            "0",
            "1001",
            "-1",
            "ten",
            "",
            "1e3",
            "99999999999999999999999",
        ] {
            let error = Paging::from_params(&params(&[("limit", bad)])).expect_err(bad);
            assert_eq!(error.field(), Some("limit"), "{bad}");
            assert!(!error.is_malformed(), "{bad}: a rule (422), not a shape");
        }
        assert_eq!(Paging::from_params(&params(&[])), Ok(Paging::default()));
    }

    #[test]
    fn cursors_are_ids_and_orders_are_asc_or_desc() {
        let paging =
            Paging::from_params(&params(&[("after", "j-9"), ("order", "DESC")])).expect("valid");
        assert_eq!(paging.after.map(|id| id.to_string()), Some("j-9".into()));
        assert_eq!(paging.order, Order::Desc);
        let error = Paging::from_params(&params(&[("after", "a/b")])).expect_err("bad id");
        assert_eq!(error.field(), Some("after"));
        let error = Paging::from_params(&params(&[("order", "newest")])).expect_err("bad order");
        assert_eq!(error.field(), Some("order"));
    }

    #[test]
    fn job_filters_parse_and_match_together() {
        let filter =
            JobFilter::from_params(&params(&[("status", "running"), ("printer_id", "p1")]))
                .expect("valid");
        let job = |printer: &str, status| crate::PrintJob {
            status,
            ..crate::PrintJob::queued(
                Id::parse("j").expect("id"),
                Id::parse(printer).expect("id"),
                Id::parse("f1").expect("id"),
                crate::domain::Text::parse("a.gcode").expect("text"),
                1,
            )
        };
        assert!(filter.matches(&job("p1", JobStatus::Running)));
        assert!(!filter.matches(&job("p2", JobStatus::Running)));
        assert!(!filter.matches(&job("p1", JobStatus::Queued)));
        assert!(JobFilter::default().matches(&job("p2", JobStatus::Done)));
        let error = JobFilter::from_params(&params(&[("filament_id", "")])).expect_err("empty");
        assert_eq!(error.field(), Some("filament_id"));
    }

    #[test]
    fn the_next_link_keeps_limit_order_and_filters() {
        let paging = Paging {
            limit: Some(50),
            after: None,
            order: Order::Desc,
        };
        let filter = JobFilter {
            status: Some(JobStatus::Done),
            ..JobFilter::default()
        };
        let link = paging.next_link(
            "/api/v1/print_jobs",
            &Id::parse("j-7").expect("id"),
            &filter.params(),
            Some("stale"),
        );
        assert_eq!(
            link,
            "</api/v1/print_jobs?limit=50&after=j-7&order=desc&status=Done&consistency=stale>; rel=\"next\""
        );
    }
}
