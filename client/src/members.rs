//! The client's picture of the cluster: the members' client URLs, the leader as last
//! seen, and whose turn it is to take the next read.

use crate::ClientError;

#[derive(Debug)]
pub(crate) struct Members {
    /// Client URLs without a trailing slash, in the order they were learnt.
    urls: Vec<String>,
    leader: Option<String>,
    /// Index of the member the next read (or retry) goes to.
    turn: usize,
}

impl Members {
    pub(crate) fn new(urls: impl Iterator<Item = String>) -> Result<Self, ClientError> {
        let mut members = Self {
            urls: Vec::new(),
            leader: None,
            turn: 0,
        };
        for url in urls {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ClientError::Invalid(format!(
                    "{url:?} is not a client URL (like http://127.0.0.1:8081)"
                )));
            }
            members.add(&url);
        }
        if members.urls.is_empty() {
            return Err(ClientError::Invalid("no cluster URL given".to_owned()));
        }
        Ok(members)
    }

    pub(crate) fn urls(&self) -> &[String] {
        &self.urls
    }

    pub(crate) fn len(&self) -> usize {
        self.urls.len()
    }

    pub(crate) fn leader(&self) -> Option<&str> {
        self.leader.as_deref()
    }

    pub(crate) fn add(&mut self, url: &str) {
        let url = url.trim_end_matches('/');
        if !self.urls.iter().any(|known| known == url) {
            self.urls.push(url.to_owned());
        }
    }

    pub(crate) fn set_leader(&mut self, url: &str) {
        self.add(url);
        self.leader = Some(url.trim_end_matches('/').to_owned());
    }

    /// After `target` (a full request URL) did not answer: if it was the leader, the
    /// leader is unknown again.
    pub(crate) fn forget_leader(&mut self, target: &str) {
        if self
            .leader
            .as_deref()
            .is_some_and(|leader| target == leader || target.starts_with(&format!("{leader}/")))
        {
            self.leader = None;
        }
    }

    /// Where an operation starts: writes at the leader when known (a follower would
    /// redirect them there anyway), reads at each member in turn (any member serves a
    /// linearizable read, so spreading them spreads the load).
    pub(crate) fn start(&mut self, write: bool) -> String {
        match (&self.leader, write) {
            (Some(leader), true) => leader.clone(),
            _ => self.next(),
        }
    }

    /// The next member in turn.
    pub(crate) fn next(&mut self) -> String {
        let url = self.urls[self.turn % self.urls.len()].clone();
        self.turn = self.turn.wrapping_add(1);
        url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(urls: &[&str]) -> Members {
        Members::new(urls.iter().map(|u| (*u).to_owned())).expect("valid URLs")
    }

    #[test]
    fn urls_are_checked_and_deduplicated() {
        assert!(Members::new(std::iter::empty()).is_err());
        assert!(Members::new(["127.0.0.1:8081".to_owned()].into_iter()).is_err());
        let m = members(&["http://a:1/", "http://a:1", "http://b:2"]);
        assert_eq!(m.urls(), ["http://a:1", "http://b:2"]);
    }

    #[test]
    fn writes_go_to_the_leader_and_reads_take_turns() {
        let mut m = members(&["http://a:1", "http://b:2"]);
        assert_eq!(m.start(false), "http://a:1");
        assert_eq!(m.start(false), "http://b:2");
        assert_eq!(m.start(true), "http://a:1");
        m.set_leader("http://c:3/");
        assert_eq!(m.urls().len(), 3);
        assert_eq!(m.start(true), "http://c:3");
        assert_ne!(m.start(false), "");
    }

    #[test]
    fn a_leader_that_does_not_answer_is_forgotten() {
        let mut m = members(&["http://a:1"]);
        m.set_leader("http://b:2");
        m.forget_leader("http://b:20/api/v1/printers");
        m.forget_leader("http://a:1/api/v1/printers");
        assert_eq!(m.leader(), Some("http://b:2"));
        m.forget_leader("http://b:2/api/v1/printers");
        assert_eq!(m.leader(), None);
    }
}
