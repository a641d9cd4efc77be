//! Time stamps of the commands the host sends, set when a command is encoded for the socket
//! rather than when it was made: Sparkplug 3.0 asks for the time the message is published
//! (tck-id-payloads-ncmd-timestamp, tck-id-payloads-dcmd-timestamp).

use super::payload::{self, Payload};

/// A command's encoded payload with the payload's time stamp, and each metric's that has one,
/// set to `ms`; `None` when the bytes are not a payload (then they go as they are).
pub(crate) fn restamp(bytes: &[u8], ms: u64) -> Option<Vec<u8>> {
    let mut p: Payload = payload::decode(bytes).ok()?;
    p.timestamp = Some(ms);
    for m in &mut p.metrics {
        if m.timestamp.is_some() {
            m.timestamp = Some(ms);
        }
    }
    Some(payload::encode(&p))
}

#[cfg(test)]
mod tests {
    use super::super::payload::{decode, encode, Metric, MetricValue};
    use super::*;

    #[test]
    fn payload_and_metric_time_stamps_are_replaced() {
        let old = Payload {
            timestamp: Some(1),
            metrics: vec![
                Metric {
                    name: Some("a".into()),
                    timestamp: Some(1),
                    value: Some(MetricValue::Int(3)),
                    ..Default::default()
                },
                Metric {
                    name: Some("b".into()),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let new = decode(&restamp(&encode(&old), 99).unwrap()).unwrap();
        assert_eq!(new.timestamp, Some(99));
        assert_eq!(new.metrics[0].timestamp, Some(99));
        assert_eq!(new.metrics[0].value, Some(MetricValue::Int(3)));
        assert_eq!(new.metrics[1].timestamp, None, "no time stamp is added");
        assert!(restamp(&[0xff, 0xff], 5).is_none());
    }
}
