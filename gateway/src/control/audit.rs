//! `AuditService`: reading and tailing the audit log.

use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use toolgate_proto::v1;
use v1::audit_service_server::AuditService;

use super::Control;
use super::convert::{millis, timestamp};
use super::error::{ControlError, Result};
use super::validate;
use crate::model::{AuditEvent, Outcome};

/// Events a live tail buffers for a slow client before it is cut off.
const STREAM_BUFFER: usize = 256;
/// Stored events read per step when replaying `since`.
const REPLAY_CHUNK: usize = 500;

fn to_proto(e: &AuditEvent) -> v1::AuditEvent {
    v1::AuditEvent {
        sequence: e.sequence,
        time: Some(timestamp(e.time)),
        actor: e.actor.clone(),
        action: e.action.clone(),
        target: e.target.clone(),
        outcome: match e.outcome {
            Outcome::Allowed => v1::Outcome::Allowed,
            Outcome::Denied => v1::Outcome::Denied,
            Outcome::Error => v1::Outcome::Error,
        }
        .into(),
        reason: e.reason.clone(),
        latency_ms: e.latency_ms,
        details_json: if e.details.is_null() {
            String::new()
        } else {
            e.details.to_string()
        },
        hash: e.hash.clone(),
    }
}

/// The filters shared by ListEvents and StreamEvents.
#[derive(Debug, Clone, Default)]
struct Filter {
    start: Option<i64>,
    end: Option<i64>,
    actor: String,
    action_prefix: String,
    target_prefix: String,
    outcome: Option<Outcome>,
}

impl Filter {
    fn matches(&self, e: &AuditEvent) -> bool {
        self.start.is_none_or(|t| e.time >= t)
            && self.end.is_none_or(|t| e.time < t)
            && (self.actor.is_empty() || e.actor == self.actor)
            && e.action.starts_with(&self.action_prefix)
            && e.target.starts_with(&self.target_prefix)
            && self.outcome.is_none_or(|o| e.outcome == o)
    }
}

fn outcome_from_proto(value: i32) -> Result<Option<Outcome>> {
    match v1::Outcome::try_from(value) {
        Ok(v1::Outcome::Unspecified) => Ok(None),
        Ok(v1::Outcome::Allowed) => Ok(Some(Outcome::Allowed)),
        Ok(v1::Outcome::Denied) => Ok(Some(Outcome::Denied)),
        Ok(v1::Outcome::Error) => Ok(Some(Outcome::Error)),
        Err(_) => Err(ControlError::invalid(
            "outcome",
            format!("unknown value {value}"),
        )),
    }
}

#[tonic::async_trait]
impl AuditService for Control {
    async fn list_events(
        &self,
        request: Request<v1::ListEventsRequest>,
    ) -> Result<Response<v1::ListEventsResponse>, Status> {
        let req = request.into_inner();
        let limit = validate::page_size("page_size", req.page_size, 100, 1000)?;
        let before = if req.page_token.is_empty() {
            None
        } else {
            Some(req.page_token.parse::<u64>().map_err(|_| {
                ControlError::invalid("page_token", "is not a token from a previous response")
            })?)
        };
        let filter = Filter {
            start: req
                .start_time
                .as_ref()
                .map(|t| millis(t, "start_time"))
                .transpose()?,
            end: req
                .end_time
                .as_ref()
                .map(|t| millis(t, "end_time"))
                .transpose()?,
            actor: req.actor,
            action_prefix: req.action_prefix,
            target_prefix: req.target_prefix,
            outcome: outcome_from_proto(req.outcome)?,
        };
        let (events, more) = self
            .store
            .audit_page(before, limit, |e| filter.matches(e))
            .await
            .map_err(ControlError::from)?;
        let next_page_token = match events.last() {
            Some(last) if more => last.sequence.to_string(),
            _ => String::new(),
        };
        Ok(Response::new(v1::ListEventsResponse {
            events: events.iter().map(to_proto).collect(),
            next_page_token,
        }))
    }

    type StreamEventsStream = ReceiverStream<Result<v1::StreamEventsResponse, Status>>;

    async fn stream_events(
        &self,
        request: Request<v1::StreamEventsRequest>,
    ) -> Result<Response<Self::StreamEventsStream>, Status> {
        let req = request.into_inner();
        let since = req.since.as_ref().map(|t| millis(t, "since")).transpose()?;
        let filter = Filter {
            actor: req.actor,
            action_prefix: req.action_prefix,
            target_prefix: req.target_prefix,
            outcome: outcome_from_proto(req.outcome)?,
            ..Filter::default()
        };
        // Subscribe before reading the backlog so no event falls between:
        // everything up to `replay_up_to` is in the database, everything
        // after it arrives on `live`.
        let mut live = self.store.subscribe();
        let replay_up_to = self.store.last_audit_sequence();
        let mut next = match since {
            Some(since) => self
                .store
                .audit_start_after(since, replay_up_to)
                .await
                .map_err(ControlError::from)?,
            None => replay_up_to + 1,
        };
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let shutdown = self.shutdown.clone();
        let store = self.store.clone();
        tokio::spawn(async move {
            // Sends one message unless the client left or the daemon stops.
            let send = |message: Result<v1::StreamEventsResponse, Status>| {
                let tx = tx.clone();
                let shutdown = shutdown.clone();
                async move {
                    tokio::select! {
                        () = shutdown.cancelled() => false,
                        sent = tx.send(message) => sent.is_ok(),
                    }
                }
            };
            let message = |e: &AuditEvent| {
                Ok(v1::StreamEventsResponse {
                    event: Some(to_proto(e)),
                })
            };
            while next <= replay_up_to {
                let chunk = match store.audit_forward(next, replay_up_to, REPLAY_CHUNK).await {
                    Ok(chunk) => chunk,
                    Err(err) => {
                        tracing::error!(error = %err, "audit replay failed");
                        send(Err(Status::internal(
                            "audit replay failed; see the toolgated log",
                        )))
                        .await;
                        return;
                    }
                };
                let Some(last) = chunk.last() else { break };
                next = last.sequence + 1;
                for event in chunk.iter().filter(|e| filter.matches(e)) {
                    if !send(message(event)).await {
                        return;
                    }
                }
            }
            loop {
                let received = tokio::select! {
                    () = shutdown.cancelled() => {
                        // Tell the client to reconnect rather than ending
                        // the stream as if it were complete.
                        let _ = tx.try_send(Err(Status::unavailable(
                            "toolgated is shutting down; reconnect with `since`",
                        )));
                        return;
                    }
                    () = tx.closed() => return,
                    received = live.recv() => received,
                };
                match received {
                    Ok(event) if event.sequence <= replay_up_to => {}
                    Ok(event) if filter.matches(&event) => {
                        // Back-pressure: a slow reader makes the broadcast
                        // lag, which ends the stream with DATA_LOSS below.
                        if !send(message(&event)).await {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        send(Err(Status::data_loss(format!(
                            "audit stream fell {missed} events behind; reconnect with `since`"
                        ))))
                        .await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
