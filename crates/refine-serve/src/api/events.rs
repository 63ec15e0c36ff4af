//! `/v1/events`: server-sent events, one per build event (the `--events` objects of
//! docs/events.md, each with the field `build`), `id: BUILD:SEQ`. With `?build=ID` the
//! stream starts at that build's first event and ends after its last (`build-state` with a
//! final state); without, it carries every build's events from now on.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::{ApiError, Query};
use crate::Hub;
use crate::live::LiveEvent;

#[derive(Deserialize, utoipa::IntoParams)]
pub struct EventParams {
    /// Follow one build from its first event to its last.
    pub build: Option<i64>,
}

struct Follow {
    backlog: VecDeque<Arc<LiveEvent>>,
    live: tokio::sync::broadcast::Receiver<Arc<LiveEvent>>,
    build: Option<i64>,
    /// The last sequence number sent of the followed build.
    sent: i64,
    done: bool,
    stop: tokio::sync::watch::Receiver<bool>,
    hub: Arc<Hub>,
}

fn sse(e: &LiveEvent) -> Event {
    Event::default()
        .id(format!("{}:{}", e.build, e.seq))
        .data(e.json.clone())
}

#[utoipa::path(get, path = "/v1/events", params(EventParams),
    responses((status = 200, content_type = "text/event-stream", description = "Build events, as docs/events.md describes them, each with `build`")),
    security(("bearer" = [])))]
pub async fn stream(
    State(hub): State<Arc<Hub>>,
    Query(params): Query<EventParams>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    if let Some(id) = params.build
        && hub.state.build(id)?.is_none()
    {
        return Err(ApiError::not_found(&format!("build {id}")));
    }
    let sub = hub.live.subscribe(&hub.state, params.build);
    let follow = Follow {
        backlog: sub.backlog.into(),
        live: sub.live,
        build: params.build,
        sent: -1,
        done: false,
        stop: hub.stop.subscribe(),
        hub: hub.clone(),
    };
    let events = futures_util::stream::unfold(follow, |mut f| async move {
        loop {
            if f.done {
                return None;
            }
            let event = if let Some(e) = f.backlog.pop_front() {
                e
            } else {
                tokio::select! {
                    received = f.live.recv() => match received {
                        Ok(e) => e,
                        // A subscriber too slow for the channel misses events rather than
                        // holding the build up; a follower of one build catches up from the
                        // build's log (what it has sent is skipped by sequence number).
                        Err(RecvError::Lagged(_)) => {
                            if f.build.is_some() {
                                let sub = f.hub.live.subscribe(&f.hub.state, f.build);
                                f.backlog = sub.backlog.into();
                                f.live = sub.live;
                            }
                            continue;
                        }
                        Err(RecvError::Closed) => return None,
                    },
                    _ = f.stop.wait_for(|s| *s) => return None,
                }
            };
            if let Some(build) = f.build {
                if event.build != build || event.seq <= f.sent {
                    continue;
                }
                f.sent = event.seq;
                f.done = event.last;
            }
            return Some((Ok(sse(&event)), f));
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
