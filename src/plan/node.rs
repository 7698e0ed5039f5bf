//! A format-neutral document tree in which every value and key carries its line and column.
//!
//! TOML and YAML plans are first parsed into this tree and then decoded by one hand-written
//! walker ([`super::decode`]). That is what lets the loader collect *every* error of a plan
//! (serde stops at the first) and locate each of them, whatever the format, and it guarantees
//! the two formats accept exactly the same schema.

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// A 1-based line and column (in characters) in the source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Loc {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, counted in characters.
    pub col: u32,
}

/// A value of the document tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string (a TOML date or datetime is turned into its text, so `end = 2026-11-27` works).
    Str(String),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// YAML null / empty value.
    Null,
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping with keys in document order (keys are strings, located).
    Map(Vec<(Key, Node)>),
}

impl Value {
    /// Name of the value's type, for "expected X, found Y" messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "a string",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Bool(_) => "a boolean",
            Value::Null => "null",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a table",
        }
    }
}

/// A mapping key and where it is written.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// The key text.
    pub name: String,
    /// Where the key is.
    pub loc: Loc,
}

/// A located value.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where the value starts.
    pub loc: Loc,
}

/// A syntax error of the underlying format, located.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    /// Where the parser stopped.
    pub loc: Loc,
    /// The parser's message.
    pub message: String,
}

/// Byte offset to line and column (characters), for TOML spans.
struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, starts }
    }

    fn loc(&self, offset: usize) -> Loc {
        let offset = offset.min(self.text.len());
        let line = match self.starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.starts[line];
        let col = self
            .text
            .get(start..offset)
            .map(|s| s.chars().count())
            .unwrap_or(0);
        Loc {
            line: u32::try_from(line + 1).unwrap_or(u32::MAX),
            col: u32::try_from(col + 1).unwrap_or(u32::MAX),
        }
    }
}

/// Parse TOML text into a located tree.
pub fn parse_toml(text: &str) -> Result<Node, SyntaxError> {
    use toml::de::{DeTable, DeValue};
    let index = LineIndex::new(text);
    let root = DeTable::parse(text).map_err(|e| SyntaxError {
        loc: index.loc(e.span().map(|s| s.start).unwrap_or(0)),
        message: e.message().trim().to_string(),
    })?;

    fn conv(v: &DeValue<'_>, start: usize, index: &LineIndex<'_>) -> Node {
        let loc = index.loc(start);
        let value = match v {
            DeValue::String(s) => Value::Str(s.to_string()),
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Value::Int(n),
                Err(_) => Value::Str(i.to_string()),
            },
            DeValue::Float(f) => match f.as_str().parse::<f64>() {
                Ok(x) => Value::Float(x),
                Err(_) => Value::Str(f.to_string()),
            },
            DeValue::Boolean(b) => Value::Bool(*b),
            DeValue::Datetime(d) => Value::Str(d.to_string()),
            DeValue::Array(a) => Value::Seq(
                a.iter()
                    .map(|item| conv(item.get_ref(), item.span().start, index))
                    .collect(),
            ),
            DeValue::Table(t) => Value::Map(table(t, index)),
        };
        Node { value, loc }
    }

    fn table(t: &DeTable<'_>, index: &LineIndex<'_>) -> Vec<(Key, Node)> {
        let mut out: Vec<(Key, Node)> = t
            .iter()
            .map(|(k, v)| {
                (
                    Key {
                        name: k.get_ref().to_string(),
                        loc: index.loc(k.span().start),
                    },
                    conv(v.get_ref(), v.span().start, index),
                )
            })
            .collect();
        // The TOML map is sorted by key; restore document order.
        out.sort_by_key(|(k, _)| k.loc);
        out
    }

    Ok(Node {
        value: Value::Map(table(root.get_ref(), &index)),
        loc: Loc { line: 1, col: 1 },
    })
}

/// Parse YAML text into a located tree.
pub fn parse_yaml(text: &str) -> Result<Node, SyntaxError> {
    if text.trim().is_empty() {
        return Ok(Node {
            value: Value::Map(Vec::new()),
            loc: Loc { line: 1, col: 1 },
        });
    }
    // YAML 1.2 core booleans only: `n`, `no`, `on` stay strings (the "Norway problem").
    let options = serde_saphyr::options! {
        strict_booleans: true,
        legacy_octal_numbers: false,
    };
    match serde_saphyr::from_str_with_options::<serde_saphyr::Spanned<YamlNode>>(text, options) {
        Ok(root) => Ok(from_spanned(root)),
        Err(e) => {
            let loc = e
                .location()
                .map(|l| Loc {
                    line: u32::try_from(l.line()).unwrap_or(u32::MAX).max(1),
                    col: u32::try_from(l.column()).unwrap_or(u32::MAX).max(1),
                })
                .unwrap_or(Loc { line: 1, col: 1 });
            // The rendered message repeats the location and a snippet: keep the gist.
            let message = clean_yaml_message(&e.to_string());
            Err(SyntaxError { loc, message })
        }
    }
}

/// First line of serde-saphyr's rendered error, without its own `error: line L column C:`
/// prefix (the location is printed in front already) and its advice about parser options.
fn clean_yaml_message(rendered: &str) -> String {
    let mut m = rendered.lines().next().unwrap_or("invalid YAML").trim();
    m = m.strip_prefix("error:").unwrap_or(m).trim();
    if let Some(rest) = m.strip_prefix("line ") {
        if let Some((_, after)) = rest.split_once(": ") {
            m = after;
        }
    }
    if let Some((head, _)) = m.split_once(", set DuplicateKeyPolicy") {
        m = head;
    }
    if m.is_empty() {
        "invalid YAML".to_string()
    } else {
        m.to_string()
    }
}

fn yaml_loc(l: &serde_saphyr::Location) -> Loc {
    Loc {
        line: u32::try_from(l.line()).unwrap_or(u32::MAX).max(1),
        col: u32::try_from(l.column()).unwrap_or(u32::MAX).max(1),
    }
}

fn from_spanned(s: serde_saphyr::Spanned<YamlNode>) -> Node {
    let loc = yaml_loc(&s.referenced);
    let value = match s.value {
        YamlNode::Str(x) => Value::Str(x),
        YamlNode::Int(x) => Value::Int(x),
        YamlNode::Float(x) => Value::Float(x),
        YamlNode::Bool(x) => Value::Bool(x),
        YamlNode::Null => Value::Null,
        YamlNode::Seq(items) => Value::Seq(items.into_iter().map(from_spanned).collect()),
        YamlNode::Map(entries) => Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| {
                    (
                        Key {
                            name: k.value,
                            loc: yaml_loc(&k.referenced),
                        },
                        from_spanned(v),
                    )
                })
                .collect(),
        ),
    };
    Node { value, loc }
}

/// Generic YAML value deserialized through serde-saphyr, every child wrapped in its `Spanned`.
enum YamlNode {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
    Seq(Vec<serde_saphyr::Spanned<YamlNode>>),
    /// Keys are read as strings, so that `n:` or `8 hours:` are keys, not booleans or numbers.
    Map(
        Vec<(
            serde_saphyr::Spanned<String>,
            serde_saphyr::Spanned<YamlNode>,
        )>,
    ),
}

impl<'de> de::Deserialize<'de> for YamlNode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(YamlNodeVisitor)
    }
}

struct YamlNodeVisitor;

impl<'de> Visitor<'de> for YamlNodeVisitor {
    type Value = YamlNode;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<YamlNode, E> {
        Ok(YamlNode::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<YamlNode, E> {
        Ok(YamlNode::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<YamlNode, E> {
        Ok(match i64::try_from(v) {
            Ok(i) => YamlNode::Int(i),
            Err(_) => YamlNode::Str(v.to_string()),
        })
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<YamlNode, E> {
        Ok(match i64::try_from(v) {
            Ok(i) => YamlNode::Int(i),
            Err(_) => YamlNode::Str(v.to_string()),
        })
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<YamlNode, E> {
        Ok(match i64::try_from(v) {
            Ok(i) => YamlNode::Int(i),
            Err(_) => YamlNode::Str(v.to_string()),
        })
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<YamlNode, E> {
        Ok(YamlNode::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<YamlNode, E> {
        Ok(YamlNode::Str(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<YamlNode, E> {
        Ok(YamlNode::Str(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<YamlNode, E> {
        Ok(YamlNode::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<YamlNode, E> {
        Ok(YamlNode::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<YamlNode, D::Error> {
        d.deserialize_any(YamlNodeVisitor)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<YamlNode, A::Error> {
        let mut out = Vec::new();
        while let Some(item) = seq.next_element()? {
            out.push(item);
        }
        Ok(YamlNode::Seq(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<YamlNode, A::Error> {
        let mut out = Vec::new();
        while let Some(k) = map.next_key()? {
            let v = map.next_value()?;
            out.push((k, v));
        }
        Ok(YamlNode::Map(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(n: &'a Node, key: &str) -> &'a Node {
        match &n.value {
            Value::Map(m) => &m.iter().find(|(k, _)| k.name == key).unwrap().1,
            _ => panic!("not a map"),
        }
    }

    #[test]
    fn toml_locations() {
        let t = "name = \"x\"\n\n[[phase]]\nname = \"hours\"\nbars = [{ size = \"8 hours\" }]\nend = 2026-11-27\n";
        let n = parse_toml(t).unwrap();
        assert_eq!(get(&n, "name").loc, Loc { line: 1, col: 8 });
        let phases = get(&n, "phase");
        let Value::Seq(items) = &phases.value else {
            panic!()
        };
        let p0 = &items[0];
        assert_eq!(get(p0, "name").loc, Loc { line: 4, col: 8 });
        let Value::Seq(bars) = &get(p0, "bars").value else {
            panic!()
        };
        assert_eq!(get(&bars[0], "size").loc, Loc { line: 5, col: 18 });
        assert_eq!(get(p0, "end").value, Value::Str("2026-11-27".into()));
        let Value::Map(m) = &p0.value else { panic!() };
        assert_eq!(m[0].0.name, "name", "document order kept");
    }

    #[test]
    fn toml_syntax_error_is_located() {
        let e = parse_toml("a = 1\nb = = 2\n").unwrap_err();
        assert_eq!(e.loc.line, 2);
    }

    #[test]
    fn yaml_locations() {
        let t = "name: x\nphase:\n  - name: hours\n    bars:\n      - { size: 8 hours, duration: 6 M }\n    use-rth: true\n    n: 3\n    w: no\n";
        let n = parse_yaml(t).unwrap();
        assert_eq!(get(&n, "name").loc, Loc { line: 1, col: 7 });
        let Value::Seq(items) = &get(&n, "phase").value else {
            panic!()
        };
        let p0 = &items[0];
        let Value::Map(m) = &p0.value else { panic!() };
        assert_eq!(m[0].0.loc, Loc { line: 3, col: 5 });
        assert_eq!(get(p0, "use-rth").value, Value::Bool(true));
        assert_eq!(get(p0, "n").value, Value::Int(3));
        assert_eq!(get(p0, "w").value, Value::Str("no".into()));
        let Value::Seq(bars) = &get(p0, "bars").value else {
            panic!()
        };
        assert_eq!(get(&bars[0], "size").value, Value::Str("8 hours".into()));
        assert_eq!(get(&bars[0], "size").loc.line, 5);
    }

    #[test]
    fn yaml_syntax_error_is_located() {
        let e = parse_yaml("a: 1\nb: [1, 2\n").unwrap_err();
        assert!(e.loc.line >= 2, "{e:?}");
    }
}
