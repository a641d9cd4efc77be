//! A value found at an address: kept as the scanner read it and built into JSON only when a
//! reader asks. The usual values (a number, a string without escapes, a boolean) then cost
//! neither an allocation nor a `serde_json::Value` on the way from the payload to a tag: a
//! time stamp or a string tag reads its text where it lies in the payload.

use std::borrow::Cow;
use std::ops::Range;

use serde_json::Value as Json;

/// The value at one address, and where its JSON text is in the payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    held: Held,
    span: Range<usize>,
}

/// How a found value is kept. The scalars the quick readers of `hold` accept are kept as
/// read, so they cannot fail later; anything else (a string with escapes, an object, an array,
/// a number beyond the quick forms) is built when found, where a failure still belongs to the
/// payload.
///
/// Its tag is a whole word: a value is moved as two aligned words, where a one-byte tag made the
/// compiler copy the fifteen bytes after it with overlapping loads that stall on the stores just
/// made (scenario 6's profile).
#[derive(Debug, Clone, PartialEq)]
#[repr(u64)]
pub(super) enum Held {
    /// A string without escapes: its text lies between the span's quotes.
    Plain,
    Int(i64),
    /// A decimal read exactly; always finite.
    Float(f64),
    Bool(bool),
    Null,
    Built(Box<Json>),
}

/// A found value as a reader takes it: a scalar as read (a string as its text), anything else
/// (an object, an array, a number beyond 64 bits or 15 digits) as JSON. [`Found::view`] and
/// `View::from` never give a string, a boolean or null as `Json`; readers rely on it.
#[derive(Debug, Clone, Copy)]
pub enum View<'a> {
    Str(&'a str),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
    Json(&'a Json),
}

impl<'a> From<&'a Json> for View<'a> {
    fn from(value: &'a Json) -> View<'a> {
        match value {
            Json::String(s) => View::Str(s),
            Json::Bool(b) => View::Bool(*b),
            Json::Null => View::Null,
            j => View::Json(j),
        }
    }
}

impl<'a> View<'a> {
    /// The value as a parsed document holds it.
    pub fn to_json(self) -> Cow<'a, Json> {
        Cow::Owned(match self {
            View::Str(s) => Json::String(s.to_string()),
            View::Int(i) => Json::from(i),
            View::Float(f) => serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number),
            View::Bool(b) => Json::Bool(b),
            View::Null => Json::Null,
            View::Json(j) => return Cow::Borrowed(j),
        })
    }
}

impl Found {
    pub(super) fn new(held: Held, span: Range<usize>) -> Found {
        Found { held, span }
    }

    /// The value's JSON text as written in `payload` (the one it was extracted from).
    pub fn text<'p>(&self, payload: &'p [u8]) -> &'p str {
        payload
            .get(self.span.clone())
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or_default()
    }

    /// [`Found::text`] for a payload already known to be UTF-8: no second check of its bytes.
    pub fn text_in<'p>(&self, payload: &'p str) -> &'p str {
        payload.get(self.span.clone()).unwrap_or_default()
    }

    /// The value as a parsed document holds it (`payload`: the one it was extracted from).
    pub fn json<'a>(&'a self, payload: &'a [u8]) -> Cow<'a, Json> {
        self.view(payload).to_json()
    }

    /// The value as a reader takes it, from the UTF-8 `payload` it was extracted from.
    pub fn view_in<'a>(&'a self, payload: &'a str) -> View<'a> {
        self.view_with(|| self.text_in(payload))
    }

    /// The value as a reader takes it, from the `payload` it was extracted from (checked for
    /// UTF-8 by the span).
    pub fn view<'a>(&'a self, payload: &'a [u8]) -> View<'a> {
        self.view_with(|| self.text(payload))
    }

    fn view_with<'a>(&'a self, text: impl FnOnce() -> &'a str) -> View<'a> {
        match &self.held {
            // The span holds the quotes; a plain string has no escape to undo.
            Held::Plain => {
                let quoted = text();
                View::Str(
                    quoted
                        .get(1..quoted.len().saturating_sub(1))
                        .unwrap_or_default(),
                )
            }
            Held::Int(i) => View::Int(*i),
            Held::Float(f) => View::Float(*f),
            Held::Bool(b) => View::Bool(*b),
            Held::Null => View::Null,
            Held::Built(j) => View::from(&**j),
        }
    }
}
