//! Recorded AWS answers: the benchmark's endpoint that answers at once, so that what is measured is
//! the function's own cost per event and not the emulator's.
//!
//! A [`Tape`] given to [`Config::record`] keeps every answer the emulator gave while the harness
//! passed the function's calls on. Given to [`Config::replay`] on another harness, it answers those
//! calls itself, with no upstream: a request the recording saw with the same operation, path and body
//! gets that answer (whatever the order concurrent calls arrive in); any other request of the operation
//! (a body with a fresh token or timestamp) gets the next unused answer of the operation, in recorded
//! order. A request the tape cannot answer is a miss: answered 500 and counted, so a replay that went
//! another way than its recording shows (see [`Tape::misses`]).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderName, HeaderValue};

#[derive(Clone, Debug)]
pub(super) struct Answer {
    pub status: u16,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

#[derive(Debug, Default)]
struct Recorded {
    answers: Vec<Answer>,
    used: Vec<bool>,
    /// Indices of the answers by operation + path + body, and by operation alone.
    exact: HashMap<String, VecDeque<usize>>,
    by_operation: HashMap<String, VecDeque<usize>>,
    misses: Vec<String>,
}

/// See the module docs. Clones share the recording.
#[derive(Clone, Debug, Default)]
pub struct Tape {
    recorded: Arc<Mutex<Recorded>>,
}

fn exact_key(operation: &str, path: &str, body: &[u8]) -> String {
    format!("{operation} {path} {}", String::from_utf8_lossy(body))
}

impl Tape {
    /// A tape to record on.
    pub fn new() -> Tape {
        Tape::default()
    }

    /// A fresh copy of the recording to replay (every answer unused, no misses).
    pub fn rewound(&self) -> Tape {
        let r = self.lock();
        let copy = Recorded {
            answers: r.answers.clone(),
            used: vec![false; r.answers.len()],
            exact: r.exact.clone(),
            by_operation: r.by_operation.clone(),
            misses: Vec::new(),
        };
        Tape {
            recorded: Arc::new(Mutex::new(copy)),
        }
    }

    /// How many answers the tape holds.
    pub fn len(&self) -> usize {
        self.lock().answers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The requests a replay could not answer (`<operation> <path>`).
    pub fn misses(&self) -> Vec<String> {
        self.lock().misses.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.recorded.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn record(&self, operation: &str, path: &str, request: &[u8], answer: Answer) {
        let mut r = self.lock();
        let i = r.answers.len();
        r.answers.push(answer);
        r.used.push(false);
        r.exact
            .entry(exact_key(operation, path, request))
            .or_default()
            .push_back(i);
        r.by_operation
            .entry(operation.to_owned())
            .or_default()
            .push_back(i);
    }

    pub(super) fn answer(&self, operation: &str, path: &str, request: &[u8]) -> Option<Answer> {
        let mut r = self.lock();
        let r = &mut *r;
        let mut take = |queue: Option<&mut VecDeque<usize>>| {
            let queue = queue?;
            while let Some(i) = queue.pop_front() {
                if !r.used[i] {
                    r.used[i] = true;
                    return Some(i);
                }
            }
            None
        };
        let found = take(r.exact.get_mut(&exact_key(operation, path, request)))
            .or_else(|| take(r.by_operation.get_mut(operation)));
        match found {
            Some(i) => Some(r.answers[i].clone()),
            None => {
                r.misses.push(format!("{operation} {path}"));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(body: &str) -> Answer {
        Answer {
            status: 200,
            headers: vec![],
            body: Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn same_requests_get_their_own_answers_in_any_order_others_the_next_unused() {
        let tape = Tape::new();
        tape.record("ListChildren", "/", b"ou-a", answer("children of a"));
        tape.record("ListChildren", "/", b"ou-b", answer("children of b"));
        tape.record("PutItem", "/", b"t=1", answer("put 1"));
        tape.record("PutItem", "/", b"t=2", answer("put 2"));
        let replay = tape.rewound();
        let body = |a: Option<Answer>| a.map(|a| String::from_utf8_lossy(&a.body).into_owned());
        // Concurrent calls arriving the other way round still get their own answers.
        assert_eq!(
            body(replay.answer("ListChildren", "/", b"ou-b")).as_deref(),
            Some("children of b")
        );
        assert_eq!(
            body(replay.answer("ListChildren", "/", b"ou-a")).as_deref(),
            Some("children of a")
        );
        // A body the recording never saw (a fresh timestamp): the operation's answers in order.
        assert_eq!(
            body(replay.answer("PutItem", "/", b"t=9")).as_deref(),
            Some("put 1")
        );
        assert_eq!(
            body(replay.answer("PutItem", "/", b"t=2")).as_deref(),
            Some("put 2")
        );
        assert!(replay.answer("PutItem", "/", b"t=3").is_none());
        assert_eq!(replay.misses(), vec!["PutItem /".to_owned()]);
        // The recording itself is untouched: it can be replayed again.
        assert!(tape.misses().is_empty());
        assert_eq!(tape.rewound().len(), 4);
    }
}
