//! [`Extra`]: the fields of an agent's record fleet does not interpret, each kept as the JSON
//! text it was read as.
//!
//! A registry of 10,000 agents holds some 50,000 such fields (`progress`, `last_update`,
//! `prompt`, `tracked_files` and its five paths, ...) that a read hands over and almost nobody
//! looks at. Built into `serde_json::Value`s, each is a map or a string with its own allocations;
//! kept as text, each is one. A field is parsed when it is asked for ([`Extra::parse`],
//! [`Extra::value`]), and written out as a value again ([`Serialize`]), so a record prints
//! the same whichever way its fields were kept.

use std::fmt;

use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::ser::{Error as _, SerializeMap};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Fields in the order they came, each as its JSON text. A key given twice keeps its first
/// place and its last value, as a `serde_json::Map` does.
///
/// Every key and value sits in one string, so a record's fields cost two allocations, however
/// many there are. Deserializes only from serde_json (`from_str`, `from_slice`, `from_reader`,
/// `from_value`): the text of each value is taken from the input.
#[derive(Clone, Default)]
pub struct Extra {
    /// Every field's key and JSON text, back to back (and, after a field is replaced or
    /// removed, its old text until the next [`Extra::compact`]).
    text: String,
    /// Where each field's key and value are in `text`, in order.
    fields: Vec<Field>,
}

/// The text an `Extra` makes room for at its first field: what the Python server and fleet
/// write with an agent (`progress`, `last_update`, the prompt's preview, five tracked paths of
/// about 100 bytes, placement) comes to 600–900 bytes, so that reading a record seldom grows it
/// — growing it copied every record's text once more, a sixth of a 10,000-agent read.
const FIRST_CAPACITY: usize = 1024;

/// One field's key and value, as byte ranges of [`Extra::text`].
#[derive(Clone, Copy, Debug)]
struct Field {
    key: (usize, usize),
    value: (usize, usize),
}

/// `value` as JSON text. A `Value` always serializes: its keys are strings and its numbers
/// finite.
fn to_text(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

/// `text` as a value: it was valid JSON when it was kept, and JSON text always parses.
fn parsed(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

impl Extra {
    /// No fields.
    pub fn new() -> Extra {
        Extra::default()
    }

    /// How many fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    fn slice(&self, (start, end): (usize, usize)) -> &str {
        // Every range was taken from `text` as it was appended, on char boundaries.
        self.text.get(start..end).unwrap_or_default()
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.fields.iter().position(|f| self.slice(f.key) == key)
    }

    /// Whether `key` is one of them.
    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    /// `key`'s JSON text.
    pub fn get(&self, key: &str) -> Option<&str> {
        let i = self.position(key)?;
        Some(self.slice(self.fields[i].value))
    }

    /// `key`'s value, parsed.
    pub fn value(&self, key: &str) -> Option<Value> {
        self.parse(key)
    }

    /// `key`'s value read as a `T`; `None` when it is absent or is not a `T`.
    pub fn parse<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        serde_json::from_str(self.get(key)?).ok()
    }

    /// Takes `key` out, the others keeping their order, and reads it as a `T` (`None`: it was
    /// absent or not a `T`).
    pub fn take<T: DeserializeOwned>(&mut self, key: &str) -> Option<T> {
        let i = self.position(key)?;
        let field = self.fields.remove(i);
        serde_json::from_str(self.slice(field.value)).ok()
    }

    fn append(&mut self, text: &str) -> (usize, usize) {
        if self.text.capacity() == 0 {
            self.text.reserve(text.len().max(FIRST_CAPACITY));
        }
        let start = self.text.len();
        self.text.push_str(text);
        (start, self.text.len())
    }

    /// Sets `key` to the JSON text `value` (valid JSON: taken from a parser or a serializer).
    fn set(&mut self, key: &str, value: &str) {
        match self.position(key) {
            Some(i) => {
                self.fields[i].value = self.append(value);
                self.compact();
            }
            None => {
                let key = self.append(key);
                let value = self.append(value);
                self.fields.push(Field { key, value });
            }
        }
    }

    /// Sets `key` to `value`: in its place if it is there, last otherwise.
    pub fn insert(&mut self, key: impl AsRef<str>, value: &Value) {
        self.set(key.as_ref(), &to_text(value));
    }

    /// Sets every field of `fields`, in their order.
    pub fn extend<'a>(&mut self, fields: impl IntoIterator<Item = (&'a String, &'a Value)>) {
        for (key, value) in fields {
            self.insert(key, value);
        }
    }

    /// Drops the text replaced fields left, once it is as long as the text in use.
    fn compact(&mut self) {
        let used: usize = self
            .fields
            .iter()
            .map(|f| f.key.1 - f.key.0 + f.value.1 - f.value.0)
            .sum();
        if self.text.len() < 2 * used {
            return;
        }
        let mut kept = Extra::new();
        for (key, value) in self.iter() {
            kept.set(key, value);
        }
        *self = kept;
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|f| self.slice(f.key))
    }

    /// Each key with its JSON text, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields
            .iter()
            .map(|f| (self.slice(f.key), self.slice(f.value)))
    }

    /// Every field parsed, in order.
    pub fn to_map(&self) -> Map<String, Value> {
        self.iter()
            .map(|(k, v)| (k.to_owned(), parsed(v)))
            .collect()
    }
}

impl From<Map<String, Value>> for Extra {
    fn from(map: Map<String, Value>) -> Extra {
        map.into_iter().collect()
    }
}

impl FromIterator<(String, Value)> for Extra {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(fields: I) -> Extra {
        let mut extra = Extra::new();
        for (key, value) in fields {
            extra.insert(key, &value);
        }
        extra
    }
}

/// Equal when they hold the same keys with equal values, in any order (as `serde_json::Map`):
/// `{"a": 1}` read from a file written with indents equals the same field written compactly.
impl PartialEq for Extra {
    fn eq(&self, other: &Extra) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .all(|(k, v)| other.get(k).is_some_and(|o| parsed(v) == parsed(o)))
    }
}

impl Eq for Extra {}

impl fmt::Debug for Extra {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Each field as a value, so that the serializer lays it out (indents included) as it lays out
/// the rest.
impl Serialize for Extra {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.fields.len()))?;
        for (key, text) in self.iter() {
            let value: Value = serde_json::from_str(text).map_err(S::Error::custom)?;
            map.serialize_entry(key, &value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Extra {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Extra, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = Extra;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Extra, A::Error> {
                let mut extra = Extra::new();
                while let Some(key) = map.next_key::<crate::fields::Key<'de>>()? {
                    extra.collect(key.as_str(), &mut map)?;
                }
                Ok(extra)
            }
        }
        deserializer.deserialize_map(Fields)
    }
}

/// Where a record's hand-written deserializer ([`deserialize_with_extra!`](crate::deserialize_with_extra))
/// puts the fields it does not name.
pub trait Collect: Default {
    /// Reads the value of `key` from `map` and keeps it.
    fn collect<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error>;
}

impl Collect for Map<String, Value> {
    fn collect<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
        let value: Value = map.next_value()?;
        self.insert(key.to_owned(), value);
        Ok(())
    }
}

impl Collect for Extra {
    fn collect<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
        // Copied into the record's text and freed at once: what a record keeps is its text.
        let value: Box<RawValue> = map.next_value()?;
        self.set(key, value.get());
        Ok(())
    }
}
