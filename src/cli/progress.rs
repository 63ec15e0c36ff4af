//! How `refine build` shows a build as it runs: a progress bar on a terminal, plain lines
//! otherwise, and every event as a JSON line in the `--events` file.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Mutex;

use refine_engine::exec::{Event, Observer};

use super::Failure;

/// Prints progress and writes the events file.
pub struct Reporter {
    events: Option<Mutex<std::io::BufWriter<fs_err::File>>>,
    bar: Option<indicatif::ProgressBar>,
    /// Targets done, and in all.
    total: Mutex<(usize, usize)>,
}

impl Reporter {
    /// A reporter writing events to `events`, if given, with a bar if stderr is a terminal.
    pub fn new(events: Option<&Path>) -> Result<Reporter, Failure> {
        let events = match events {
            Some(p) => Some(Mutex::new(std::io::BufWriter::new(
                fs_err::File::create(p).map_err(|e| Failure::bad_input(miette::miette!("{e}")))?,
            ))),
            None => None,
        };
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{pos}/{len}] {elapsed} {wide_msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        Ok(Reporter {
            events,
            bar,
            total: Mutex::new((0, 0)),
        })
    }

    /// Clears the bar, so that what follows starts on a line of its own.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn line(&self, text: String) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    fn record(&self, event: &Event) {
        if let Some(f) = &self.events {
            let mut f = f.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let _ = serde_json::to_writer(&mut *f, event);
            let _ = writeln!(f);
            let _ = f.flush();
        }
    }
}

impl Observer for Reporter {
    fn event(&self, event: &Event) {
        self.record(event);
        let mut total = self
            .total
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match event {
            // A new build (`refine request lock` builds a pass of probes at a time) counts
            // from zero.
            Event::Plan { nodes } => {
                *total = (0, nodes.len());
                if let Some(bar) = &self.bar {
                    bar.set_length(nodes.len() as u64);
                    bar.set_position(0);
                }
            }
            Event::CacheHit { label, .. } => {
                total.0 += 1;
                // Plain output names only what runs: a no-op build prints one summary line.
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                    bar.set_message(format!("cached {label}"));
                }
            }
            Event::ActionStart { label, kind, .. } => match &self.bar {
                Some(bar) => bar.set_message(format!("{kind} {label}")),
                None => eprintln!("[{}/{}] building {label}", total.0, total.1),
            },
            Event::ActionFinish { label, seconds, .. } => {
                total.0 += 1;
                match &self.bar {
                    Some(bar) => {
                        bar.inc(1);
                        bar.println(format!("built {label} in {seconds:.1} s"));
                    }
                    None => eprintln!("[{}/{}] built {label} in {seconds:.1} s", total.0, total.1),
                }
            }
            Event::ActionFail {
                label, reason, log, ..
            } => {
                total.0 += 1;
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                }
                let log = log
                    .as_ref()
                    .map(|l| format!("\n  full log: {l}"))
                    .unwrap_or_default();
                drop(total);
                self.line(format!("FAILED {label}: {reason}{log}"));
            }
            Event::Skipped { label, because } => {
                drop(total);
                self.line(format!("skipped {label}: {because}"));
            }
            _ => {}
        }
    }
}
