//! Events as they happen: each build's events get a sequence number, go to every subscriber at
//! once (a broadcast channel) and to the database in batches (one writer thread, one
//! transaction per batch, so a 10,000-node build is not 10,000 commits). While a build runs,
//! its events are also kept in memory, so that a subscriber that comes late gets all of them
//! in order and then the live ones, with nothing lost between the two.

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use crate::state::{Record, State};

/// One event of one build, as JSON (the `--events` object with a field `build`).
#[derive(Debug)]
pub struct LiveEvent {
    pub build: i64,
    pub seq: i64,
    pub json: String,
    /// The event ends the build's stream (a `build-state` with a final state).
    pub last: bool,
}

/// What a subscriber gets: the events so far, then the live ones.
pub struct Subscription {
    pub backlog: Vec<Arc<LiveEvent>>,
    pub live: broadcast::Receiver<Arc<LiveEvent>>,
}

enum Job {
    Record(Box<Record>),
    Flush(mpsc::Sender<()>),
}

/// The event hub.
pub struct Live {
    running: Mutex<HashMap<i64, Vec<Arc<LiveEvent>>>>,
    tx: broadcast::Sender<Arc<LiveEvent>>,
    writer: Mutex<mpsc::Sender<Job>>,
}

impl Live {
    /// Starts the database writer.
    pub fn new(state: Arc<State>) -> Live {
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("refine-serve-writer".into())
            .spawn(move || write_loop(&state, &rx))
            .expect("a thread for the database writer");
        let (tx, _) = broadcast::channel(4096);
        Live {
            running: Mutex::new(HashMap::new()),
            tx,
            writer: Mutex::new(jobs),
        }
    }

    /// Records a change of a node (in order with the events).
    pub fn record(&self, record: Record) {
        let _ = self.writer().send(Job::Record(Box::new(record)));
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, mpsc::Sender<Job>> {
        self.writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Vec<Arc<LiveEvent>>>> {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Publishes an event of `build`: `event` is a JSON object, to which `build` is added.
    pub fn emit(&self, build: i64, mut event: serde_json::Value, last: bool) {
        if let Some(map) = event.as_object_mut() {
            map.insert("build".into(), build.into());
        }
        let json = event.to_string();
        let mut running = self.running();
        let log = running.entry(build).or_default();
        let seq = log.len() as i64;
        let event = Arc::new(LiveEvent {
            build,
            seq,
            json: json.clone(),
            last,
        });
        log.push(event.clone());
        let _ = self.writer().send(Job::Record(Box::new(Record::Event {
            build,
            seq,
            body: json,
        })));
        // No subscriber is not an error.
        let _ = self.tx.send(event);
    }

    /// Waits until everything recorded so far is in the database.
    pub fn flush(&self) {
        let (ack, done) = mpsc::channel();
        if self.writer().send(Job::Flush(ack)).is_ok() {
            let _ = done.recv();
        }
    }

    /// The build's stream has ended: once its events are in the database, they are served
    /// from there.
    pub fn finish(&self, build: i64) {
        self.flush();
        self.running().remove(&build);
    }

    /// Subscribes to every build's events (`build` none), or to one build's from its first.
    pub fn subscribe(&self, state: &State, build: Option<i64>) -> Subscription {
        let running = self.running();
        let live = self.tx.subscribe();
        let Some(build) = build else {
            return Subscription {
                backlog: Vec::new(),
                live,
            };
        };
        if let Some(log) = running.get(&build) {
            return Subscription {
                backlog: log.clone(),
                live,
            };
        }
        drop(running);
        // Not in memory: either over (every event is in the database) or not started (the
        // live channel will carry all of them; the database answers none or a few twice,
        // which the stream drops by sequence number).
        let backlog = state
            .events(build)
            .unwrap_or_default()
            .into_iter()
            .map(|(seq, json)| {
                let last = is_last(&json);
                Arc::new(LiveEvent {
                    build,
                    seq,
                    json,
                    last,
                })
            })
            .collect();
        Subscription { backlog, live }
    }
}

/// Whether a stored event ends its build's stream.
fn is_last(json: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(json).is_ok_and(|v| {
        v["event"] == "build-state"
            && !matches!(v["state"].as_str(), Some("queued" | "running") | None)
    })
}

/// How long the writer gathers records before it commits them. Each commit dirties pages of
/// the file system the store is usually on, and every action's commit point syncs that file
/// system (`syncfs`): a commit per event made a 100-action build through the server a quarter
/// slower than `refine build`. Readers lose nothing meanwhile: a running build's events are
/// served from memory, and a flush (the end of a build) commits at once.
const BATCH_WINDOW: std::time::Duration = std::time::Duration::from_millis(250);

fn write_loop(state: &State, jobs: &mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let deadline = std::time::Instant::now() + BATCH_WINDOW;
        let mut records = Vec::new();
        let mut acks = Vec::new();
        let mut next = Some(first);
        while let Some(job) = next {
            match job {
                Job::Record(r) => records.push(*r),
                Job::Flush(ack) => acks.push(ack),
            }
            let wait = deadline.saturating_duration_since(std::time::Instant::now());
            next = if records.len() >= 4096 {
                None
            } else if acks.is_empty() && !wait.is_zero() {
                jobs.recv_timeout(wait).ok()
            } else {
                jobs.try_recv().ok()
            };
        }
        if !records.is_empty()
            && let Err(e) = state.apply(&records)
        {
            // The build goes on; what it did is in its events and the store either way.
            crate::say(&format!(
                "warning: the server's database did not take {} records: {e}",
                records.len()
            ));
        }
        for ack in acks {
            let _ = ack.send(());
        }
    }
}
