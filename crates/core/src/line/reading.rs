//! Reading a station's payload into its JA= or CSV= tags: the one-pass JSON extraction (with the
//! selected array items' own time and quality) or the CSV record's fields, the payload's time
//! stamp, the quality that decides validity, and the conversion of each value.

use std::collections::VecDeque;
use std::sync::Arc;

use super::emit::log_to;
use super::{Line, Station};
use crate::config::PayloadType;
use crate::csv;
use crate::event::{Event, LogLevel, FLAG_TIME_FROM_PAYLOAD};
use crate::ids::StationIndex;
use crate::json_extract::{Found, View};
use crate::json_path::JsonPath;
use crate::json_value;
use crate::payload::{self, PayloadError, PayloadSettings, Stamp};
use crate::tag::TagAddress;
use crate::value::Value;

impl Line {
    /// Reads `body` (the payload, inflated when it was gzip) into the station's JA= or CSV=
    /// tags, as its payload type says. Returns the time and flags of the message's other values:
    /// the payload's time stamp when it has one.
    pub(super) fn read_payload(
        &mut self,
        i: StationIndex,
        topic: &str,
        body: &[u8],
        wall_ns: i64,
        flags: u32,
    ) -> (i64, u32) {
        let st = &self.stations[i];
        match st.payload.payload_type {
            PayloadType::Json if st.json_tags || st.payload.time_field.is_some() => {
                self.read_json(i, topic, body, wall_ns, flags)
            }
            PayloadType::Csv if st.csv_tags || st.payload.csv.time.is_some() => {
                self.read_csv(i, topic, body, wall_ns, flags)
            }
            _ => (wall_ns, flags),
        }
    }

    /// The station's JA= or CSV= tags become invalid: the payload could not be read.
    pub(super) fn invalidate_payload_tags(&mut self, i: StationIndex, time_ns: i64, flags: u32) {
        let payload_type = self.stations[i].payload.payload_type;
        for k in 0..self.stations[i].tags.len() {
            let t = self.stations[i].tags[k];
            let read = match &self.tags[t].address {
                TagAddress::Json(_) => payload_type == PayloadType::Json,
                TagAddress::Csv(_) => payload_type == PayloadType::Csv,
                _ => false,
            };
            if read {
                self.set_value(t, None, time_ns, flags);
            }
        }
    }

    fn read_json(
        &mut self,
        i: StationIndex,
        topic: &str,
        body: &[u8],
        wall_ns: i64,
        flags: u32,
    ) -> (i64, u32) {
        let plan = Arc::clone(&self.stations[i].extract);
        let mut values = std::mem::take(&mut self.extracted);
        let (mut time_ns, mut flags) = (wall_ns, flags);
        // The payload as text once: the scanner reads it, and each value's text is a slice of it.
        let body_text = std::str::from_utf8(body).ok();
        let hints = &mut self.stations[i].element_hints;
        if let Err(e) = plan
            .tree
            .extract_checked(body, body_text, &mut values, hints)
        {
            self.payload_error(i, topic, PayloadError::NotJson(e));
            self.extracted = values;
            self.invalidate_payload_tags(i, wall_ns, flags);
            return (wall_ns, flags);
        }
        let text_of = |f: &Found| match body_text {
            Some(t) => f.text_in(t),
            None => f.text(body),
        };
        let view_of = |f| view(f, body, body_text);
        let st = &self.stations[i];
        if let Some(field) = &st.payload.time_field {
            let stamp = payload::stamp_at(
                &st.payload,
                "time field",
                field,
                found(&values, plan.time).map(view_of),
            );
            if let Some(ns) = time_or_warn(st, TimeOf::Message, topic, stamp, &mut self.events) {
                time_ns = ns;
                flags |= FLAG_TIME_FROM_PAYLOAD;
            }
        }
        let mut slot = 0;
        for k in 0..self.stations[i].tags.len() {
            let t = self.stations[i].tags[k];
            if !matches!(self.tags[t].address, TagAddress::Json(_)) {
                continue;
            }
            let item = plan.items.get(slot).copied().unwrap_or_default();
            let value_found = found(&values, Some(slot));
            slot += 1;
            let (mut tag_time, mut tag_flags) = (time_ns, flags);
            // A missing item is warned about once, below, not for its time as well.
            if let Some(at) = item.time.filter(|_| value_found.is_some()) {
                let st = &self.stations[i];
                let time = found(&values, Some(at)).map(view_of);
                let quick = match time {
                    Some(View::Int(whole)) => st.payload.time_mask.whole_ns(whole),
                    _ => None,
                };
                if let Some(ns) = quick.or_else(|| {
                    let field = ItemField(plan.item_path(at));
                    let of = TimeOf::Item(&self.tags[t].name);
                    item_time(st, &field, of, topic, time, &mut self.events)
                }) {
                    tag_time = ns;
                    tag_flags |= FLAG_TIME_FROM_PAYLOAD;
                }
            }
            // The quality field's position, and the value when the item has it.
            let quality = item.quality.map(|at| (at, found(&values, Some(at))));
            let value = match (value_found, quality) {
                (None, _) => {
                    let why = format!(
                        "{} is not in the payload of '{}'",
                        self.tags[t].address,
                        payload::escape(topic)
                    );
                    self.warn_invalid(t, &why);
                    None
                }
                (Some(_), Some((at, None))) => {
                    let why = format!(
                        "no quality field '{}' in the payload of '{}'",
                        ItemField(plan.item_path(at)),
                        payload::escape(topic)
                    );
                    self.warn_invalid(t, &why);
                    None
                }
                (Some(_), Some((at, Some(q))))
                    if !self.stations[i]
                        .payload
                        .is_valid_quality_found(view_of(q), || text_of(q)) =>
                {
                    let field = ItemField(plan.item_path(at)).to_string();
                    let q = payload::quality_text(view_of(q), || text_of(q));
                    self.note_bad_quality(t, &field, q);
                    None
                }
                (Some(f), _) => {
                    let ty = self.tags[t].ty;
                    let read = json_value::from_json_text(&view_of(f), || text_of(f), ty);
                    match read {
                        Ok(v) => Some(v),
                        Err(reason) => {
                            let why = format!(
                                "{} = {}: {reason}",
                                self.tags[t].address,
                                payload::shorten(text_of(f))
                            );
                            self.warn_invalid(t, &why);
                            None
                        }
                    }
                }
            };
            self.set_value(t, value, tag_time, tag_flags);
        }
        self.extracted = values;
        (time_ns, flags)
    }

    fn read_csv(
        &mut self,
        i: StationIndex,
        topic: &str,
        body: &[u8],
        wall_ns: i64,
        flags: u32,
    ) -> (i64, u32) {
        let text = String::from_utf8_lossy(body);
        let mut fields = Vec::new();
        let st = &self.stations[i];
        if let Err(e) = csv::split(&text, st.payload.csv.separator, &mut fields) {
            self.payload_error(i, topic, PayloadError::NotCsv(e));
            self.invalidate_payload_tags(i, wall_ns, flags);
            return (wall_ns, flags);
        }
        let count = fields.len();
        let (mut time_ns, mut flags) = (wall_ns, flags);
        if let Some(at) = st.payload.csv.time {
            let value = fields.get(at).map(|f| View::Str(f.trim()));
            let stamp = payload::stamp_at(&st.payload, "time field at position", &(at + 1), value);
            if let Some(ns) = time_or_warn(st, TimeOf::Message, topic, stamp, &mut self.events) {
                time_ns = ns;
                flags |= FLAG_TIME_FROM_PAYLOAD;
            }
        }
        // Ok(None): no quality field; Err: the record is too short to have one.
        let quality = match st.payload.csv.quality {
            None => Ok(None),
            Some(at) => match fields.get(at) {
                Some(q) => Ok(Some((
                    at + 1,
                    q.to_string(),
                    st.payload.is_valid_quality(q),
                ))),
                None => Err(format!(
                    "no quality field at position {} in the payload of '{}' (it has {count} \
                     fields)",
                    at + 1,
                    payload::escape(topic)
                )),
            },
        };
        for k in 0..self.stations[i].tags.len() {
            let t = self.stations[i].tags[k];
            let TagAddress::Csv(n) = self.tags[t].address else {
                continue;
            };
            let value = match (&quality, fields.get(n)) {
                (Err(why), _) => {
                    self.warn_invalid(t, &format!("CSV={}: {why}", n + 1));
                    None
                }
                (Ok(Some((at, q, false))), _) => {
                    self.note_bad_quality(t, &format!("at position {at}"), q);
                    None
                }
                (_, None) => {
                    self.warn_invalid(
                        t,
                        &format!(
                            "CSV={} is not in the payload of '{}' (it has {count} fields)",
                            n + 1,
                            payload::escape(topic)
                        ),
                    );
                    None
                }
                (_, Some(f)) if csv::is_nan(f) => {
                    let text = format!("CSV={} is nan", n + 1);
                    self.note_invalid(t, &text);
                    None
                }
                (_, Some(f)) => match Value::parse(f, self.tags[t].ty) {
                    Ok(v) => Some(v),
                    Err(reason) => {
                        let shown = crate::text::quote(f);
                        self.warn_invalid(t, &format!("CSV={} = {shown}: {reason}", n + 1));
                        None
                    }
                },
            };
            self.set_value(t, value, time_ns, flags);
        }
        (time_ns, flags)
    }
}

/// Which time stamp a warning about an unusable one is for.
enum TimeOf<'a> {
    /// The message's (its time field): the receive time is used instead.
    Message,
    /// A selected item's, for this tag: the message's time is used instead.
    Item(&'a str),
}

/// An item's time stamp read from `value` (at `field`) by the station's mask, or warned about
/// (see [`time_or_warn`]). Kept out of the reader's loop, which reads the usual whole number
/// itself.
#[inline(never)]
fn item_time(
    st: &Station,
    field: &ItemField,
    of: TimeOf,
    topic: &str,
    value: Option<View>,
    events: &mut VecDeque<Event>,
) -> Option<i64> {
    let stamp = payload::stamp_at(&st.payload, "item time field", field, value);
    time_or_warn(st, of, topic, stamp, events)
}

/// The time stamp of a [`Stamp`]; a missing field (unless Ignore Missing Time) or an unreadable
/// one is warned about, naming the station (or the tag) and the topic, and the caller keeps the
/// time it had.
fn time_or_warn(
    st: &Station,
    of: TimeOf,
    topic: &str,
    stamp: Stamp,
    events: &mut VecDeque<Event>,
) -> Option<i64> {
    let why = match stamp {
        Stamp::Payload(ns) => return Some(ns),
        Stamp::Missing if st.payload.ignore_missing_time => return None,
        Stamp::Missing => {
            let field = match of {
                TimeOf::Message => time_field_name(&st.payload),
                TimeOf::Item(_) => st
                    .payload
                    .item_time_field
                    .as_ref()
                    .map_or(String::new(), |f| format!("item time field '{f}' for it")),
            };
            format!("no {field} in the payload of '{}'", payload::escape(topic))
        }
        Stamp::Unreadable(why) => format!("{why} (topic '{}')", payload::escape(topic)),
    };
    let text = match of {
        TimeOf::Message => format!("station '{}': {why}; the receive time is used", st.name),
        TimeOf::Item(tag) => format!("tag '{}.{tag}': {why}; the message's time is used", st.name),
    };
    log_to(events, LogLevel::Warn, text);
    None
}

/// The path of a selected item's time or quality field, as warnings name it.
struct ItemField<'a>(Option<&'a JsonPath>);

impl std::fmt::Display for ItemField<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(path) => path.fmt(f),
            None => Ok(()),
        }
    }
}

/// How the message's time field is named in warnings.
fn time_field_name(settings: &PayloadSettings) -> String {
    match (&settings.time_field, settings.csv.time) {
        (Some(f), _) => format!("time field '{f}'"),
        (None, Some(at)) => format!("time field at position {}", at + 1),
        (None, None) => "time field".into(),
    }
}

/// The value found in `body` (`text`: the same, when it is UTF-8) as a reader takes it.
#[inline]
fn view<'a>(f: &'a Found, body: &'a [u8], text: Option<&'a str>) -> View<'a> {
    match text {
        Some(t) => f.view_in(t),
        None => f.view(body),
    }
}

/// The value extracted into `slot`, if the payload had it.
fn found(values: &[Option<Found>], slot: Option<usize>) -> Option<&Found> {
    slot.and_then(|s| values.get(s)).and_then(Option::as_ref)
}
