//! Conversions shared by several services: timestamps and classification.
//! Each service's own messages are converted in that service's file.

use prost_types::Timestamp;
use toolgate_proto::v1;

use super::error::{ControlError, Result};
use crate::model::{Classification, Millis, ToolAction};

/// Unix ms to a protobuf timestamp.
pub(crate) fn timestamp(ms: Millis) -> Timestamp {
    Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: i32::try_from(ms.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    }
}

/// An optional Unix ms to an optional protobuf timestamp.
pub(crate) fn opt_timestamp(ms: Option<Millis>) -> Option<Timestamp> {
    ms.map(timestamp)
}

/// A protobuf timestamp to Unix ms; `field` names it in errors.
pub(crate) fn millis(ts: &Timestamp, field: &str) -> Result<Millis> {
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return Err(ControlError::invalid(field, "nanos must be 0 to 999999999"));
    }
    ts.seconds
        .checked_mul(1000)
        .and_then(|ms| ms.checked_add(i64::from(ts.nanos / 1_000_000)))
        .ok_or_else(|| ControlError::invalid(field, "timestamp out of range"))
}

/// Domain action to proto.
pub(crate) fn action_to_proto(action: ToolAction) -> v1::ToolAction {
    match action {
        ToolAction::Read => v1::ToolAction::Read,
        ToolAction::Write => v1::ToolAction::Write,
        ToolAction::Delete => v1::ToolAction::Delete,
    }
}

/// Proto action (as its i32) to domain; `None` for UNSPECIFIED.
pub(crate) fn action_from_proto(value: i32, field: &str) -> Result<Option<ToolAction>> {
    match v1::ToolAction::try_from(value) {
        Ok(v1::ToolAction::Unspecified) => Ok(None),
        Ok(v1::ToolAction::Read) => Ok(Some(ToolAction::Read)),
        Ok(v1::ToolAction::Write) => Ok(Some(ToolAction::Write)),
        Ok(v1::ToolAction::Delete) => Ok(Some(ToolAction::Delete)),
        Err(_) => Err(ControlError::invalid(
            field,
            format!("unknown value {value}"),
        )),
    }
}

/// Domain classification to proto.
pub(crate) fn classification_to_proto(c: Classification) -> v1::Classification {
    v1::Classification {
        action: action_to_proto(c.action).into(),
        sensitive: c.sensitive,
        dangerous: c.dangerous,
    }
}

/// Proto classification to domain; the action must be set.
pub(crate) fn classification_from_proto(
    c: &v1::Classification,
    field: &str,
) -> Result<Classification> {
    let action = action_from_proto(c.action, &format!("{field}.action"))?.ok_or_else(|| {
        ControlError::invalid(format!("{field}.action"), "must be READ, WRITE or DELETE")
    })?;
    Ok(Classification {
        action,
        sensitive: c.sensitive,
        dangerous: c.dangerous,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_including_before_1970() {
        for ms in [0, 1, 999, 1_764_405_669_123, -1, -1500] {
            assert_eq!(millis(&timestamp(ms), "t").unwrap(), ms);
        }
        let bad = Timestamp {
            seconds: 0,
            nanos: -1,
        };
        assert!(
            millis(&bad, "expires_at")
                .unwrap_err()
                .to_string()
                .starts_with("expires_at:")
        );
    }
}
