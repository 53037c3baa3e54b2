//! A JSON reader that keeps what `serde_json::Value` silently drops: repeated keys. A
//! document with `"stake"` twice means different things to different parsers (first or
//! last wins), so it is refused rather than resolved. Also the typed accessors that name
//! the offending field in their errors.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Number;

use super::RegistryError;

/// A parsed JSON value; objects keep every key in document order, repeats included.
pub(super) enum Json {
    Null,
    /// The value is never needed: no registry field is a boolean.
    Bool,
    Number(Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

/// Parses a whole document (UTF-8, nothing after the value but whitespace).
pub(super) fn parse(bytes: &[u8]) -> Result<Json, RegistryError> {
    serde_json::from_slice(bytes).map_err(|e| RegistryError::Json {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })
}

/// The fields of an object known to hold exactly the keys in `allowed`, each at most once.
pub(super) struct Object<'a> {
    path: &'a str,
    entries: Vec<(&'a str, &'a Json)>,
}

/// Reads `value` as an object at `path`, refusing keys outside `allowed` and repeated keys.
pub(super) fn object<'a>(
    value: &'a Json,
    path: &'a str,
    allowed: &[&str],
) -> Result<Object<'a>, RegistryError> {
    let Json::Object(members) = value else {
        return Err(type_error(path, "an object", value));
    };
    let object = Object {
        path,
        entries: Vec::with_capacity(members.len()),
    };
    members.iter().try_fold(object, |mut object, (key, value)| {
        if !allowed.contains(&key.as_str()) {
            return Err(RegistryError::UnknownField {
                field: object.path(key),
            });
        }
        if object.entries.iter().any(|(k, _)| k == key) {
            return Err(RegistryError::DuplicateKey {
                field: object.path(key),
            });
        }
        object.entries.push((key, value));
        Ok(object)
    })
}

impl<'a> Object<'a> {
    /// The value of a required field.
    pub(super) fn get(&self, name: &str) -> Result<&'a Json, RegistryError> {
        self.entries
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
            .ok_or_else(|| RegistryError::MissingField {
                field: self.path(name),
            })
    }

    /// The document path of a field of this object, for error messages.
    pub(super) fn path(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.path)
        }
    }
}

pub(super) fn string<'a>(value: &'a Json, field: &str) -> Result<&'a str, RegistryError> {
    match value {
        Json::String(s) => Ok(s),
        other => Err(type_error(field, "a string", other)),
    }
}

/// A non-negative integer written without fraction or exponent.
pub(super) fn uint(value: &Json, field: &str) -> Result<u64, RegistryError> {
    match value {
        Json::Number(n) => n.as_u64().ok_or_else(|| RegistryError::Field {
            field: field.to_owned(),
            reason: format!("expected a non-negative integer below 2^64, found {n}"),
        }),
        other => Err(type_error(field, "a non-negative integer", other)),
    }
}

pub(super) fn array<'a>(value: &'a Json, field: &str) -> Result<&'a [Json], RegistryError> {
    match value {
        Json::Array(items) => Ok(items),
        other => Err(type_error(field, "an array", other)),
    }
}

fn type_error(field: &str, expected: &str, found: &Json) -> RegistryError {
    let found = match found {
        Json::Null => "null",
        Json::Bool => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    };
    RegistryError::Field {
        field: if field.is_empty() {
            "(document)"
        } else {
            field
        }
        .to_owned(),
        reason: format!("expected {expected}, found {found}"),
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Json, E> {
        Ok(Json::Bool)
    }

    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
        Number::from_f64(v)
            .map(Json::Number)
            .ok_or_else(|| E::custom("number is not finite"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut members = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, Json>()? {
            members.push((key, value));
        }
        Ok(Json::Object(members))
    }
}
