//! Reading the original system's dump files: Django `dumpdata` JSON (a list of `{"model",
//! "pk", "fields"}` records), plus the two lists it loaded without a model, recognised by
//! their keys: the exchange-center log (`giveItem`, `receiveItem`, `firstSeen`, …) and the
//! password list (`password`, `clue1`…`clue3`, `group`).
//!
//! A file that cannot be read or is not such a list fails the whole import before anything is
//! written; a record that lacks a field its model needs is skipped by its mapper, with a note.

use std::path::Path;

use serde_json::{Map, Value};

/// What the exchange-center log's records are called in reports.
pub const EXCHANGE_LOG: &str = "exchange-center log";
/// What the password list's records are called in reports.
pub const PASSWORD_LIST: &str = "password list";

#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not JSON: {source}")]
    Json {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path} is not a dump: expected a JSON list of records, found {found}")]
    NotAList { path: String, found: &'static str },
    #[error("{path}: record {index} is not an object")]
    NotARecord { path: String, index: usize },
}

/// One dump file, read whole.
#[derive(Debug)]
pub struct DumpFile {
    /// The path as given.
    pub path: String,
    pub body: Vec<u8>,
    pub records: Vec<Record>,
}

/// One record: its model (or what a model-less list holds), its key and its fields.
#[derive(Debug, Clone)]
pub struct Record {
    /// `pets.pet`, [`EXCHANGE_LOG`], [`PASSWORD_LIST`], or `None` for a record without a
    /// model that is neither.
    pub model: Option<String>,
    pub pk: Option<Value>,
    pub fields: Map<String, Value>,
    /// Where it came from, for notes: `pets.json #3`.
    pub origin: String,
}

impl Record {
    /// `pets.pet pk 20 (pets.json #3)`: the record, as notes name it.
    pub fn describe(&self) -> String {
        let model = self.model.as_deref().unwrap_or("record");
        match &self.pk {
            Some(pk) => format!("{model} pk {pk} ({})", self.origin),
            None => format!("{model} ({})", self.origin),
        }
    }

    fn field(&self, name: &str) -> Result<&Value, String> {
        match self.fields.get(name) {
            Some(Value::Null) | None => Err(format!("{}: no {name:?}", self.describe())),
            Some(value) => Ok(value),
        }
    }

    /// An integer field; Django writes foreign keys as numbers or as strings (`"item": "44"`).
    pub fn int(&self, name: &str) -> Result<i64, String> {
        let value = self.field(name)?;
        value
            .as_i64()
            .or_else(|| value.as_str().and_then(|text| text.trim().parse().ok()))
            .ok_or_else(|| format!("{}: {name:?} is not a whole number: {value}", self.describe()))
    }

    /// An integer field that may be null or missing.
    pub fn optional_int(&self, name: &str) -> Result<Option<i64>, String> {
        match self.fields.get(name) {
            Some(Value::Null) | None => Ok(None),
            Some(_) => self.int(name).map(Some),
        }
    }

    pub fn text(&self, name: &str) -> Result<String, String> {
        let value = self.field(name)?;
        value.as_str().map(str::to_owned).ok_or_else(|| format!("{}: {name:?} is not text: {value}", self.describe()))
    }

    pub fn boolean(&self, name: &str) -> Result<bool, String> {
        let value = self.field(name)?;
        value.as_bool().ok_or_else(|| format!("{}: {name:?} is not true or false: {value}", self.describe()))
    }

    /// The record's primary key as a number.
    pub fn int_pk(&self) -> Result<i64, String> {
        self.pk
            .as_ref()
            .and_then(|pk| pk.as_i64().or_else(|| pk.as_str().and_then(|text| text.trim().parse().ok())))
            .ok_or_else(|| format!("{}: no numeric pk", self.describe()))
    }
}

/// Reads and parses one file.
pub fn read(path: &Path) -> Result<DumpFile, DumpError> {
    let shown = path.display().to_string();
    let body = std::fs::read(path).map_err(|source| DumpError::Read { path: shown.clone(), source })?;
    let records = parse(&shown, &body)?;
    Ok(DumpFile { path: shown, body, records })
}

/// Parses a file's body (`path` names it in errors and notes).
pub fn parse(path: &str, body: &[u8]) -> Result<Vec<Record>, DumpError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|source| DumpError::Json { path: path.to_owned(), source })?;
    let list = match value {
        Value::Array(list) => list,
        other => return Err(DumpError::NotAList { path: path.to_owned(), found: kind(&other) }),
    };
    let file = Path::new(path).file_name().map_or_else(|| path.to_owned(), |name| name.to_string_lossy().into_owned());
    let mut records = Vec::with_capacity(list.len());
    for (index, entry) in list.into_iter().enumerate() {
        let Value::Object(mut object) = entry else {
            return Err(DumpError::NotARecord { path: path.to_owned(), index: index + 1 });
        };
        let origin = format!("{file} #{}", index + 1);
        let record = match object.remove("model") {
            Some(Value::String(model)) => {
                let pk = object.remove("pk");
                let fields = match object.remove("fields") {
                    Some(Value::Object(fields)) => fields,
                    _ => Map::new(),
                };
                Record { model: Some(model), pk, fields, origin }
            }
            _ => Record { model: modelless(&object).map(str::to_owned), pk: None, fields: object, origin },
        };
        records.push(record);
    }
    Ok(records)
}

/// What a record without a model holds, recognised by its keys.
fn modelless(fields: &Map<String, Value>) -> Option<&'static str> {
    let has = |keys: &[&str]| keys.iter().all(|key| fields.contains_key(*key));
    if has(&["giveItem", "giveQuantity", "receiveItem", "receiveQuantity"]) {
        Some(EXCHANGE_LOG)
    } else if has(&["password", "clue1", "clue2", "clue3"]) {
        Some(PASSWORD_LIST)
    } else {
        None
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // Model records, the two model-less lists and anything else are told apart; fields read
    // as numbers whether Django wrote them as numbers or strings.
    #[test]
    fn records_are_read_by_model_or_by_their_keys() {
        let body = br#"[
            {"model": "borgen.borgenitem", "pk": 8, "fields": {"date": "2022-04-13", "item": "44", "price": 1}},
            {"firstSeen": 1, "date": "2022-05-20", "giveItem": "Acorn", "giveQuantity": 250,
             "receiveItem": "Grapes", "receiveQuantity": 125, "completed": true, "oneShot": false},
            {"clue1": "a", "clue2": "b", "clue3": "c", "group": "Passwords", "password": "halo"},
            {"something": "else"}
        ]"#;
        let records = parse("dir/seed.json", body).unwrap();
        let models: Vec<_> = records.iter().map(|record| record.model.as_deref()).collect();
        assert_eq!(models, [Some("borgen.borgenitem"), Some(EXCHANGE_LOG), Some(PASSWORD_LIST), None]);
        assert_eq!(records[0].int("item"), Ok(44));
        assert_eq!(records[0].int_pk(), Ok(8));
        assert_eq!(records[0].describe(), "borgen.borgenitem pk 8 (seed.json #1)");
        assert_eq!(
            records[0].text("price"),
            Err("borgen.borgenitem pk 8 (seed.json #1): \"price\" is not text: 1".into())
        );
        assert!(records[0].int("missing").unwrap_err().ends_with("no \"missing\""));
        assert_eq!(records[1].boolean("completed"), Ok(true));
    }

    // A file that is not a list of records is refused whole.
    #[test]
    fn a_file_that_is_not_a_dump_is_refused() {
        assert!(matches!(parse("a.json", b"{}"), Err(DumpError::NotAList { found: "an object", .. })));
        assert!(matches!(parse("a.json", b"[1]"), Err(DumpError::NotARecord { index: 1, .. })));
        assert!(matches!(parse("a.json", b"[{\"model\": "), Err(DumpError::Json { .. })));
    }
}
