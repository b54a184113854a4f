//! A small subset of Go's `text/template`, enough for `--format` the way
//! people use it with docker: `{{.Os}}`, `{{.RootFS.Layers}}`,
//! `{{json .Config}}`, `{{index .Config.Labels "k"}}`, `{{join .RepoTags ","}}`,
//! `{{range .RepoTags}}{{.}} {{end}}`, `{{if .Config.Cmd}}…{{else}}…{{end}}`,
//! pipelines (`{{.Config | json}}`) and `{{-`/`-}}` trimming.
//!
//! Values are JSON (the same document `inspect` prints) and are printed as Go's
//! `%v` prints the decoded `interface{}`: `[a b]` for lists, `map[k:v]` for
//! objects, `<no value>` for a missing key. A full Go-template engine would be
//! a large dependency for this; the crates that exist (gtmpl) are unmaintained
//! and print values differently from Go.

use serde_json::Value;

/// Template errors: parse errors at `--format` time, evaluation errors per object.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// The template text does not parse.
    #[error("template parsing error: {0}")]
    Parse(String),
    /// The template failed on a value.
    #[error("template: executing: {0}")]
    Exec(String),
}

#[derive(Debug, Clone)]
enum Arg {
    Dot(Vec<String>),
    Str(String),
    Int(i64),
    Func(String),
}

type Pipeline = Vec<Vec<Arg>>;

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipeline),
    Range(Pipeline, Vec<Node>, Vec<Node>),
    If(Pipeline, Vec<Node>, Vec<Node>),
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

enum Tok {
    Text(String),
    Action(String),
}

fn lex(src: &str) -> Result<Vec<Tok>, TemplateError> {
    let mut out = Vec::new();
    let mut rest = src;
    let mut trim_next = false;
    while let Some(start) = rest.find("{{") {
        let mut text = &rest[..start];
        if trim_next {
            text = text.trim_start();
        }
        let after = &rest[start + 2..];
        let (trim_prev, after) = match after.strip_prefix("- ") {
            Some(a) => (true, a),
            None => (false, after),
        };
        if trim_prev {
            text = text.trim_end();
        }
        if !text.is_empty() {
            out.push(Tok::Text(text.to_owned()));
        }
        let end = after
            .find("}}")
            .ok_or_else(|| TemplateError::Parse("unclosed action".to_owned()))?;
        let mut inner = &after[..end];
        trim_next = false;
        if let Some(i) = inner.strip_suffix(" -") {
            inner = i;
            trim_next = true;
        }
        out.push(Tok::Action(inner.trim().to_owned()));
        rest = &after[end + 2..];
    }
    let text = if trim_next { rest.trim_start() } else { rest };
    if !text.is_empty() {
        out.push(Tok::Text(text.to_owned()));
    }
    Ok(out)
}

fn parse_pipeline(s: &str) -> Result<Pipeline, TemplateError> {
    let mut cmds = Vec::new();
    let mut cur = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() || c == '(' || c == ')' {
            i += 1;
        } else if c == '|' {
            cmds.push(std::mem::take(&mut cur));
            i += 1;
        } else if c == '"' || c == '`' {
            let mut j = i + 1;
            let mut lit = String::new();
            while j < chars.len() && chars[j] != c {
                if c == '"' && chars[j] == '\\' && j + 1 < chars.len() {
                    j += 1;
                    lit.push(match chars[j] {
                        'n' => '\n',
                        't' => '\t',
                        other => other,
                    });
                } else {
                    lit.push(chars[j]);
                }
                j += 1;
            }
            if j >= chars.len() {
                return Err(TemplateError::Parse(format!(
                    "unterminated string in {s:?}"
                )));
            }
            cur.push(Arg::Str(lit));
            i = j + 1;
        } else {
            let mut j = i;
            while j < chars.len() && !chars[j].is_whitespace() && !"|()".contains(chars[j]) {
                j += 1;
            }
            let word: String = chars[i..j].iter().collect();
            i = j;
            if word == "." {
                cur.push(Arg::Dot(Vec::new()));
            } else if let Some(path) = word.strip_prefix('.') {
                let fields: Vec<String> = path.split('.').map(str::to_owned).collect();
                if fields.iter().any(String::is_empty) {
                    return Err(TemplateError::Parse(format!("bad field path {word:?}")));
                }
                cur.push(Arg::Dot(fields));
            } else if let Ok(n) = word.parse::<i64>() {
                cur.push(Arg::Int(n));
            } else if [
                "json", "index", "join", "len", "upper", "lower", "println", "print",
            ]
            .contains(&word.as_str())
            {
                cur.push(Arg::Func(word));
            } else {
                return Err(TemplateError::Parse(format!(
                    "function {word:?} not defined"
                )));
            }
        }
    }
    cmds.push(cur);
    if cmds.iter().any(Vec::is_empty) {
        return Err(TemplateError::Parse(format!("missing value in {s:?}")));
    }
    Ok(cmds)
}

fn parse_nodes(
    toks: &[Tok],
    pos: &mut usize,
    stop_at_end: bool,
) -> Result<(Vec<Node>, Vec<Node>), TemplateError> {
    let mut main = Vec::new();
    let mut alt = Vec::new();
    let mut in_else = false;
    while *pos < toks.len() {
        let t = &toks[*pos];
        *pos += 1;
        let target = if in_else { &mut alt } else { &mut main };
        match t {
            Tok::Text(s) => target.push(Node::Text(s.clone())),
            Tok::Action(a) => {
                let (kw, rest) = a
                    .split_once(char::is_whitespace)
                    .unwrap_or((a.as_str(), ""));
                match kw {
                    "end" if stop_at_end => return Ok((main, alt)),
                    "else" if stop_at_end && !in_else => in_else = true,
                    "range" | "if" => {
                        let p = parse_pipeline(rest)?;
                        let (body, other) = parse_nodes(toks, pos, true)?;
                        target.push(if kw == "range" {
                            Node::Range(p, body, other)
                        } else {
                            Node::If(p, body, other)
                        });
                    }
                    "end" | "else" => {
                        return Err(TemplateError::Parse(format!("unexpected {{{{{kw}}}}}")));
                    }
                    _ if a.starts_with("/*") => {}
                    _ => target.push(Node::Action(parse_pipeline(a)?)),
                }
            }
        }
    }
    if stop_at_end {
        return Err(TemplateError::Parse(
            "unexpected EOF: missing {{end}}".to_owned(),
        ));
    }
    Ok((main, alt))
}

impl Template {
    /// Parses template text.
    pub fn parse(src: &str) -> Result<Self, TemplateError> {
        let toks = lex(src)?;
        let mut pos = 0;
        let (nodes, _) = parse_nodes(&toks, &mut pos, false)?;
        Ok(Template { nodes })
    }

    /// Renders against `value`.
    pub fn render(&self, value: &Value) -> Result<String, TemplateError> {
        let mut out = String::new();
        render_nodes(&self.nodes, value, &mut out)?;
        Ok(out)
    }
}

fn render_nodes(nodes: &[Node], dot: &Value, out: &mut String) -> Result<(), TemplateError> {
    for n in nodes {
        match n {
            Node::Text(s) => out.push_str(s),
            Node::Action(p) => {
                let (v, key) = eval(p, dot)?;
                out.push_str(&go_print(&v, key.as_deref()));
            }
            Node::If(p, body, other) => {
                let (v, _) = eval(p, dot)?;
                render_nodes(if truthy(&v) { body } else { other }, dot, out)?;
            }
            Node::Range(p, body, other) => {
                let (v, _) = eval(p, dot)?;
                let items: Vec<Value> = match v {
                    Value::Array(a) => a,
                    Value::Object(m) => m.into_iter().map(|(_, v)| v).collect(),
                    Value::Null => Vec::new(),
                    other => {
                        return Err(TemplateError::Exec(format!(
                            "range can't iterate over {other}"
                        )));
                    }
                };
                if items.is_empty() {
                    render_nodes(other, dot, out)?;
                }
                for item in &items {
                    render_nodes(body, item, out)?;
                }
            }
        }
    }
    Ok(())
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// The marker for a missing map key (Go prints `<no value>`).
const MISSING: &str = "\u{0}missing";

fn lookup(dot: &Value, path: &[String]) -> (Value, Option<String>) {
    let mut v = dot;
    for f in path {
        match v.get(f) {
            Some(x) => v = x,
            None => return (Value::String(MISSING.to_owned()), Some(f.clone())),
        }
    }
    (v.clone(), path.last().cloned())
}

fn eval(p: &Pipeline, dot: &Value) -> Result<(Value, Option<String>), TemplateError> {
    let mut prev: Option<(Value, Option<String>)> = None;
    for cmd in p {
        let mut args: Vec<(Value, Option<String>)> = Vec::new();
        let (head, rest) = cmd
            .split_first()
            .ok_or_else(|| TemplateError::Exec("empty command".into()))?;
        for a in rest {
            args.push(term(a, dot)?);
        }
        if let Some(pv) = prev.take() {
            args.push(pv);
        }
        let result = match head {
            Arg::Func(f) => call(f, args)?,
            other => {
                if !args.is_empty() {
                    return Err(TemplateError::Exec(
                        "can't give argument to non-function".into(),
                    ));
                }
                term(other, dot)?
            }
        };
        prev = Some(result);
    }
    prev.ok_or_else(|| TemplateError::Exec("empty pipeline".into()))
}

fn term(a: &Arg, dot: &Value) -> Result<(Value, Option<String>), TemplateError> {
    Ok(match a {
        Arg::Dot(path) => lookup(dot, path),
        Arg::Str(s) => (Value::String(s.clone()), None),
        Arg::Int(n) => (Value::from(*n), None),
        Arg::Func(f) => call(f, Vec::new())?,
    })
}

fn call(
    f: &str,
    args: Vec<(Value, Option<String>)>,
) -> Result<(Value, Option<String>), TemplateError> {
    let bad = |n: usize| {
        TemplateError::Exec(format!(
            "wrong number of args for {f}: want {n}, got {}",
            args.len()
        ))
    };
    let v = match f {
        "json" => {
            let [(v, _)] = args.as_slice() else {
                return Err(bad(1));
            };
            let v = if is_missing(v) { &Value::Null } else { v };
            Value::String(serde_json::to_string(v).map_err(|e| TemplateError::Exec(e.to_string()))?)
        }
        "index" => {
            let (first, keys) = args.split_first().ok_or_else(|| bad(2))?;
            let mut v = first.0.clone();
            for (k, _) in keys {
                v = match (&v, k) {
                    (Value::Object(m), Value::String(s)) => m
                        .get(s)
                        .cloned()
                        .unwrap_or(Value::String(MISSING.to_owned())),
                    (Value::Array(a), Value::Number(n)) => {
                        let i = n.as_u64().and_then(|i| usize::try_from(i).ok());
                        match i.and_then(|i| a.get(i)) {
                            Some(x) => x.clone(),
                            None => {
                                return Err(TemplateError::Exec(format!(
                                    "index out of range: {n}"
                                )));
                            }
                        }
                    }
                    _ => {
                        return Err(TemplateError::Exec(format!(
                            "can't index item of type {}",
                            kind(&v)
                        )));
                    }
                };
            }
            v
        }
        "join" => {
            let [(list, _), (sep, _)] = args.as_slice() else {
                return Err(bad(2));
            };
            let (Value::Array(items), Value::String(sep)) = (list, sep) else {
                return Err(TemplateError::Exec("join wants a list and a string".into()));
            };
            Value::String(
                items
                    .iter()
                    .map(|i| go_print(i, None))
                    .collect::<Vec<_>>()
                    .join(sep),
            )
        }
        "len" => {
            let [(v, _)] = args.as_slice() else {
                return Err(bad(1));
            };
            Value::from(match v {
                Value::Array(a) => a.len(),
                Value::Object(m) => m.len(),
                Value::String(s) if !is_missing(v) => s.len(),
                _ => return Err(TemplateError::Exec(format!("len of type {}", kind(v)))),
            })
        }
        "upper" | "lower" => {
            let [(v, k)] = args.as_slice() else {
                return Err(bad(1));
            };
            let s = go_print(v, k.as_deref());
            Value::String(if f == "upper" {
                s.to_uppercase()
            } else {
                s.to_lowercase()
            })
        }
        "print" | "println" => {
            let mut s = args
                .iter()
                .map(|(v, k)| go_print(v, k.as_deref()))
                .collect::<Vec<_>>()
                .join(" ");
            if f == "println" {
                s.push('\n');
            }
            Value::String(s)
        }
        other => {
            return Err(TemplateError::Exec(format!(
                "function {other:?} not defined"
            )));
        }
    };
    Ok((v, None))
}

fn is_missing(v: &Value) -> bool {
    matches!(v, Value::String(s) if s == MISSING)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "slice",
        Value::Object(_) => "map",
    }
}

/// Go's `%v` of the decoded value. `key` is the field name, used to print a
/// null list or map the way docker's typed structs print their zero value.
fn go_print(v: &Value, key: Option<&str>) -> String {
    match v {
        _ if is_missing(v) => "<no value>".to_owned(),
        Value::Null => match key {
            Some(
                "Cmd" | "Entrypoint" | "Env" | "RepoTags" | "RepoDigests" | "Layers" | "Shell"
                | "OnBuild",
            ) => "[]".to_owned(),
            Some("Labels" | "ExposedPorts" | "Volumes") => "map[]".to_owned(),
            _ => "<nil>".to_owned(),
        },
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter()
                .map(|x| go_print(x, None))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            format!(
                "map[{}]",
                keys.iter()
                    .map(|k| format!("{k}:{}", go_print(&m[*k], Some(k))))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(t: &str, v: &Value) -> String {
        Template::parse(t).unwrap().render(v).unwrap()
    }

    #[test]
    fn paths_lists_maps_and_json() {
        let v = json!({"Os":"linux","RootFS":{"Type":"layers","Layers":["sha256:a","sha256:b"]},
            "Config":{"Cmd":["sh","-c","echo"],"Entrypoint":null,"Labels":{"b":"2","a":"1"}},"Size":1234});
        assert_eq!(r("{{.Os}}", &v), "linux");
        assert_eq!(r("{{.RootFS.Layers}}", &v), "[sha256:a sha256:b]");
        assert_eq!(r("{{.Config.Cmd}}", &v), "[sh -c echo]");
        assert_eq!(r("{{.Config.Entrypoint}}", &v), "[]");
        assert_eq!(r("{{.Config.Labels}}", &v), "map[a:1 b:2]");
        assert_eq!(r("{{.Size}}", &v), "1234");
        assert_eq!(r("{{.Nope}}", &v), "<no value>");
        assert_eq!(r("{{json .Config.Cmd}}", &v), r#"["sh","-c","echo"]"#);
        assert_eq!(r("{{.Config.Cmd | json}}", &v), r#"["sh","-c","echo"]"#);
        assert_eq!(r(r#"{{index .Config.Labels "a"}}"#, &v), "1");
        assert_eq!(r(r#"{{join .RootFS.Layers ","}}"#, &v), "sha256:a,sha256:b");
        assert_eq!(r("{{len .RootFS.Layers}}", &v), "2");
        assert_eq!(
            r("os={{.Os}} n={{len .Config.Cmd}}\n", &v),
            "os=linux n=3\n"
        );
    }

    #[test]
    fn range_if_and_trim() {
        let v = json!({"Tags":["a","b"],"Empty":[],"Yes":true});
        assert_eq!(r("{{range .Tags}}<{{.}}>{{end}}", &v), "<a><b>");
        assert_eq!(r("{{range .Empty}}x{{else}}none{{end}}", &v), "none");
        assert_eq!(r("{{if .Yes}}y{{else}}n{{end}}", &v), "y");
        assert_eq!(r("{{if .Empty}}y{{else}}n{{end}}", &v), "n");
        assert_eq!(r("a  {{- .Yes -}}  b", &v), "atrueb");
    }

    #[test]
    fn errors_are_reported() {
        assert!(Template::parse("{{.Os").is_err());
        assert!(Template::parse("{{nosuchfunc .Os}}").is_err());
        assert!(Template::parse("{{range .X}}").is_err());
        assert!(Template::parse("{{end}}").is_err());
        let t = Template::parse("{{index .Os 3}}").unwrap();
        assert!(t.render(&json!({"Os":"linux"})).is_err());
    }
}
