//! DVC's templating, applied to the YAML tree before stages are read: `vars`, `${key}`
//! interpolation, `foreach`/`do` and `matrix`.
//!
//! Owns: the variable context (the folder's `params.yaml`, then the top-level `vars`, then a
//! stage's own `vars`: files, `file:key1,key2` selections and inline mappings, merged without
//! redefining a value), replacing `${a.b}`/`${a[0]}` in every field of a stage (a whole-string
//! reference keeps the value's type), generating one stage per `foreach` item or `matrix`
//! combination named `name@key` exactly as DVC names them, and recording which template each
//! generated stage came from. Follows `dvc/parsing` of DVC 3. `${seed}` and `${params.NAME}`
//! that no variable defines are left for repro's own run-time substitution. Deliberately does not
//! own: what the fields mean (`parse`, `dvc`) or reading params files (`params_file`).

use std::collections::HashMap;

use super::cx::Cx;
use crate::params_file;
use crate::yaml::{Key, Node, Pos, Value};

/// True when the document may use templating; a pipeline without any is read as it is, so a
/// plain pipeline pays nothing (`repro status` reads it on every call).
pub(super) fn uses_templates(text: &str) -> bool {
    text.contains("${")
        || text.contains("foreach:")
        || text.contains("matrix:")
        || text.contains("vars:")
}

impl Cx<'_> {
    /// Expands the `stages` of `doc` (a pipeline file in folder `dir`, relative to the root):
    /// every stage with its variables interpolated, `foreach` and `matrix` stages replaced by the
    /// stages they generate. Problems are reported to the collector; the stage is then left out.
    pub(super) fn expand(&mut self, doc: &Node, dir: &str) -> Node {
        let Value::Map(top) = &doc.value else {
            return doc.clone();
        };
        let mut context = Node {
            value: Value::Map(Vec::new()),
            pos: doc.pos,
        };
        let default = join_dir(dir, crate::pipeline::DEFAULT_PARAMS_FILE);
        if self.root.join(&default).is_file() {
            self.merge_vars_file(
                &mut context,
                dir,
                crate::pipeline::DEFAULT_PARAMS_FILE,
                doc.pos,
            );
        }
        if let Some((_, vars)) = top.iter().find(|(k, _)| k.name == "vars") {
            self.load_vars(&mut context, dir, vars);
        }
        let mut out = Vec::with_capacity(top.len());
        for (k, v) in top {
            match k.name.as_str() {
                "vars" => {}
                "stages" => {
                    let expanded = match &v.value {
                        Value::Map(stages) => Value::Map(self.expand_stages(&context, dir, stages)),
                        other => other.clone(),
                    };
                    out.push((
                        k.clone(),
                        Node {
                            value: expanded,
                            pos: v.pos,
                        },
                    ));
                }
                _ => out.push((k.clone(), v.clone())),
            }
        }
        Node {
            value: Value::Map(out),
            pos: doc.pos,
        }
    }

    fn expand_stages(
        &mut self,
        context: &Node,
        dir: &str,
        stages: &[(Key, Node)],
    ) -> Vec<(Key, Node)> {
        let mut out = Vec::new();
        for (key, def) in stages {
            let Value::Map(fields) = &def.value else {
                out.push((key.clone(), def.clone()));
                continue;
            };
            let field = |name: &str| fields.iter().find(|(k, _)| k.name == name).map(|(_, v)| v);
            let generated = if let Some(foreach) = field("foreach") {
                if field("matrix").is_some() {
                    self.error(
                        key.pos,
                        format!("stage `{}` has both `foreach` and `matrix`", key.name),
                    );
                    continue;
                }
                let Some(body) = field("do") else {
                    self.error(
                        key.pos,
                        format!("`foreach` stage `{}` has no `do`", key.name),
                    )
                    .hint = Some("write the stage to repeat under `do:`".into());
                    continue;
                };
                for (k, _) in fields {
                    if k.name != "foreach" && k.name != "do" {
                        self.error(
                            k.pos,
                            format!(
                                "unknown key `{}` beside `foreach` in stage `{}`",
                                k.name, key.name
                            ),
                        )
                        .hint = Some("a `foreach` stage holds only `foreach` and `do`".into());
                    }
                }
                self.foreach_items(context, &key.name, foreach)
                    .map(|items| (items, body.clone()))
            } else if let Some(matrix) = field("matrix") {
                let body = Node {
                    value: Value::Map(
                        fields
                            .iter()
                            .filter(|(k, _)| k.name != "matrix")
                            .cloned()
                            .collect(),
                    ),
                    pos: def.pos,
                };
                self.matrix_items(context, &key.name, matrix)
                    .map(|items| (items, body))
            } else {
                if let Some(stage) = self.resolve_stage(context, dir, &key.name, def, &[]) {
                    out.push((key.clone(), stage));
                }
                continue;
            };
            let Some((items, body)) = generated else {
                continue;
            };
            for (suffix, temp) in one_per_key(items) {
                let name = format!("{}@{suffix}", key.name);
                if let Some(stage) = self.resolve_stage(context, dir, &name, &body, &temp) {
                    self.groups.insert(name.clone(), key.name.clone());
                    out.push((Key { name, pos: key.pos }, stage));
                }
            }
        }
        out
    }

    /// `foreach`: a list (items are their own keys, or their index when any is a list or a
    /// mapping) or a mapping (`${key}` and `${item}`), or a `${var}` naming one.
    fn foreach_items(
        &mut self,
        context: &Node,
        stage: &str,
        foreach: &Node,
    ) -> Option<Vec<Generated>> {
        let data = self.resolve_node(context, foreach, "foreach")?;
        match &data.value {
            Value::Seq(items) => {
                let composite = items
                    .iter()
                    .any(|i| matches!(i.value, Value::Seq(_) | Value::Map(_)));
                Some(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, item)| {
                            let key = if composite {
                                i.to_string()
                            } else {
                                to_str(item)
                            };
                            (key, vec![("item".to_string(), item.clone())])
                        })
                        .collect(),
                )
            }
            Value::Map(entries) => Some(
                entries
                    .iter()
                    .map(|(k, v)| {
                        let key = Node {
                            value: Value::Str(k.name.clone()),
                            pos: k.pos,
                        };
                        (
                            k.name.clone(),
                            vec![("item".to_string(), v.clone()), ("key".to_string(), key)],
                        )
                    })
                    .collect(),
            ),
            other => {
                self.error(
                    foreach.pos,
                    format!(
                        "`foreach` of stage `{stage}` must be a list or a mapping, found {}",
                        other.type_name()
                    ),
                );
                None
            }
        }
    }

    /// `matrix`: every combination of the named lists, in the order written, keyed as DVC keys
    /// them: values joined by `-` (a list or mapping value by its name and index).
    fn matrix_items(
        &mut self,
        context: &Node,
        stage: &str,
        matrix: &Node,
    ) -> Option<Vec<Generated>> {
        let data = self.resolve_node(context, matrix, "matrix")?;
        let Value::Map(axes) = &data.value else {
            self.error(
                matrix.pos,
                format!("`matrix` of stage `{stage}` must be a mapping of lists"),
            );
            return None;
        };
        let mut combos: Vec<Combination> = vec![(Vec::new(), Vec::new())];
        for (name, values) in axes {
            let Value::Seq(values) = &values.value else {
                self.error(
                    values.pos,
                    format!("`matrix.{}` of stage `{stage}` must be a list", name.name),
                );
                return None;
            };
            let mut next = Vec::with_capacity(combos.len() * values.len());
            for (frags, item) in &combos {
                for (i, v) in values.iter().enumerate() {
                    let frag = match v.value {
                        Value::Seq(_) | Value::Map(_) => format!("{}{i}", name.name),
                        _ => to_str(v),
                    };
                    let mut frags = frags.clone();
                    frags.push(frag);
                    let mut item = item.clone();
                    item.push((name.clone(), v.clone()));
                    next.push((frags, item));
                }
            }
            combos = next;
        }
        Some(
            combos
                .into_iter()
                .map(|(frags, item)| {
                    let key = frags.join("-");
                    let key_node = Node {
                        value: Value::Str(key.clone()),
                        pos: matrix.pos,
                    };
                    let item = Node {
                        value: Value::Map(item),
                        pos: matrix.pos,
                    };
                    (
                        key,
                        vec![("item".to_string(), item), ("key".to_string(), key_node)],
                    )
                })
                .collect(),
        )
    }

    /// One stage with its own `vars` loaded and every field interpolated (`vars` removed).
    fn resolve_stage(
        &mut self,
        context: &Node,
        dir: &str,
        name: &str,
        def: &Node,
        temp: &[(String, Node)],
    ) -> Option<Node> {
        let Value::Map(fields) = &def.value else {
            return Some(def.clone());
        };
        // A stage's own `vars` need a context of its own; `item`/`key` only lie over it.
        let with_vars;
        let base = match fields.iter().find(|(k, _)| k.name == "vars") {
            Some((_, vars)) => {
                let mut ctx = context.clone();
                self.load_vars(&mut ctx, dir, vars);
                with_vars = ctx;
                &with_vars
            }
            None => context,
        };
        let scope = Scope { base, local: temp };
        let before = self.diags.len();
        let mut out = Vec::with_capacity(fields.len());
        for (k, v) in fields {
            if k.name == "vars" {
                continue;
            }
            let resolved = self.interpolate(scope, v, &k.name, name);
            out.push((k.clone(), resolved));
        }
        (self.diags.len() == before).then_some(Node {
            value: Value::Map(out),
            pos: def.pos,
        })
    }

    /// A `foreach`/`matrix` value: a whole-string `${var}` becomes the value it names.
    fn resolve_node(&mut self, context: &Node, node: &Node, field: &str) -> Option<Node> {
        let before = self.diags.len();
        let scope = Scope {
            base: context,
            local: &[],
        };
        let out = self.interpolate(scope, node, field, field);
        (self.diags.len() == before).then_some(out)
    }

    /// Interpolates every string (and mapping key) below `node`.
    fn interpolate(&mut self, scope: Scope<'_>, node: &Node, field: &str, stage: &str) -> Node {
        let value = match &node.value {
            Value::Str(s) => return self.interpolate_str(scope, s, node.pos, field, stage),
            Value::Seq(items) => Value::Seq(
                items
                    .iter()
                    .map(|i| self.interpolate(scope, i, field, stage))
                    .collect(),
            ),
            Value::Map(entries) => Value::Map(
                entries
                    .iter()
                    .map(|(k, v)| {
                        let name = match self
                            .interpolate_str(scope, &k.name, k.pos, field, stage)
                            .value
                        {
                            Value::Str(s) => s,
                            other => scalar_text(&other).unwrap_or_else(|| k.name.clone()),
                        };
                        (
                            Key { name, pos: k.pos },
                            self.interpolate(scope, v, field, stage),
                        )
                    })
                    .collect(),
            ),
            other => other.clone(),
        };
        Node {
            value,
            pos: node.pos,
        }
    }

    fn interpolate_str(
        &mut self,
        scope: Scope<'_>,
        s: &str,
        pos: Pos,
        field: &str,
        stage: &str,
    ) -> Node {
        let refs = references(s);
        if refs.is_empty() {
            return Node {
                value: Value::Str(s.to_string()),
                pos,
            };
        }
        // A whole-string reference keeps the type of what it names (`${epochs}` -> 10).
        if refs.len() == 1 && refs[0].0 == 0 && refs[0].1 == s.len() {
            let expr = &s[2..s.len() - 1];
            match scope.select(expr) {
                Some(v) => {
                    return Node {
                        value: v.value.clone(),
                        pos,
                    }
                }
                None if repro_reference(expr) => {
                    return Node {
                        value: Value::Str(s.to_string()),
                        pos,
                    }
                }
                None => {
                    self.unknown_variable(expr, pos, field, stage);
                    return Node {
                        value: Value::Str(s.to_string()),
                        pos,
                    };
                }
            }
        }
        let mut out = String::with_capacity(s.len());
        let mut at = 0;
        for (start, end) in refs {
            out.push_str(&s[at..start].replace("\\${", "${"));
            let expr = &s[start + 2..end - 1];
            match scope.select(expr) {
                Some(v) => match &v.value {
                    Value::Map(_) if field == "cmd" => out.push_str(&dict_flags(v)),
                    Value::Seq(_) | Value::Map(_) => {
                        self.error(
                            pos,
                            format!("`${{{expr}}}` in `{field}` of stage `{stage}` is {}, which cannot be pasted into text", v.value.type_name()),
                        );
                    }
                    _ => out.push_str(&to_str(v)),
                },
                None if repro_reference(expr) => out.push_str(&s[start..end]),
                None => self.unknown_variable(expr, pos, field, stage),
            }
            at = end;
        }
        out.push_str(&s[at..].replace("\\${", "${"));
        Node {
            value: Value::Str(out),
            pos,
        }
    }

    fn unknown_variable(&mut self, expr: &str, pos: Pos, field: &str, stage: &str) {
        self.error(pos, format!("`${{{expr}}}` in `{field}` of stage `{stage}` names no variable"))
            .hint = Some("variables come from `params.yaml`, `vars:` (files or values) and `foreach`/`matrix` (`item`, `key`)".into());
    }

    /// `vars:`: a list of params files (`file`, `file:key1,key2`) and inline mappings.
    fn load_vars(&mut self, ctx: &mut Node, dir: &str, vars: &Node) {
        let items: Vec<&Node> = match &vars.value {
            Value::Seq(items) => items.iter().collect(),
            Value::Null => Vec::new(),
            _ => vec![vars],
        };
        for item in items {
            match &item.value {
                Value::Str(s) => self.merge_vars_file(ctx, dir, s, item.pos),
                Value::Map(_) => self.merge(ctx, item, "vars"),
                other => {
                    self.error(
                        item.pos,
                        format!(
                            "entries of `vars` must be a file name or a mapping, found {}",
                            other.type_name()
                        ),
                    );
                }
            }
        }
    }

    fn merge_vars_file(&mut self, ctx: &mut Node, dir: &str, spec: &str, pos: Pos) {
        let (file, keys) = match spec.split_once(':') {
            Some((f, k)) => (f, Some(k)),
            None => (spec, None),
        };
        let rel = match super::relpath::resolve_path(dir, file) {
            Ok(r) => r,
            Err(why) => {
                self.error(pos, format!("invalid vars file `{file}`"))
                    .causes
                    .push(why);
                return;
            }
        };
        let node = match params_file::read(&self.root, &rel) {
            Ok(n) => n,
            Err(why) => {
                self.error(pos, format!("cannot read vars file `{rel}`"))
                    .causes
                    .push(why);
                return;
            }
        };
        let selected = match keys {
            None => node,
            Some(keys) => {
                let mut picked = Vec::new();
                for key in keys.split(',').filter(|k| !k.is_empty()) {
                    match select(&node, key) {
                        Some(v) => picked.push((
                            Key {
                                name: key.to_string(),
                                pos,
                            },
                            v.clone(),
                        )),
                        None => {
                            self.error(pos, format!("vars file `{rel}` has no key `{key}`"));
                        }
                    }
                }
                Node {
                    value: Value::Map(picked),
                    pos,
                }
            }
        };
        self.merge(ctx, &selected, &rel);
    }

    /// Merges `from` into `into`: mappings merge key by key; redefining a value is an error.
    fn merge(&mut self, into: &mut Node, from: &Node, source: &str) {
        let (Value::Map(dst), Value::Map(src)) = (&mut into.value, &from.value) else {
            return;
        };
        for (k, v) in src {
            match dst.iter_mut().find(|(dk, _)| dk.name == k.name) {
                None => dst.push((k.clone(), v.clone())),
                Some((_, existing)) => {
                    if matches!(existing.value, Value::Map(_)) && matches!(v.value, Value::Map(_)) {
                        let mut merged = existing.clone();
                        self.merge(&mut merged, v, source);
                        *existing = merged;
                    } else if existing.value != v.value {
                        self.error(
                            v.pos,
                            format!("variable `{}` from `{source}` is already defined", k.name),
                        )
                        .hint = Some(
                            "DVC does not let one variable source redefine another's value".into(),
                        );
                    }
                }
            }
        }
    }
}

/// One generated stage: its key (the part after `@`) and the variables it adds (`item`, `key`).
type Generated = (String, Vec<(String, Node)>);

/// One stage per key, as DVC keeps its generated stages in a dict: a repeated key (`foreach:
/// [a, b, a]`, or a matrix axis listing a value twice) takes the place of its first occurrence
/// with the last one's variables, so its command runs once.
fn one_per_key(items: Vec<Generated>) -> Vec<Generated> {
    let mut out: Vec<Generated> = Vec::with_capacity(items.len());
    let mut at: HashMap<String, usize> = HashMap::new();
    for (key, vars) in items {
        match at.get(&key) {
            Some(&i) => out[i].1 = vars,
            None => {
                at.insert(key.clone(), out.len());
                out.push((key, vars));
            }
        }
    }
    out
}
/// A matrix combination being built: the name fragments and the chosen value of each axis.
type Combination = (Vec<String>, Vec<(Key, Node)>);

/// `dir/file`, or `file` at the root.
fn join_dir(dir: &str, file: &str) -> String {
    if dir.is_empty() {
        file.to_string()
    } else {
        format!("{dir}/{file}")
    }
}

/// `${seed}` and `${params.NAME}` are repro's own run-time references.
fn repro_reference(expr: &str) -> bool {
    expr == "seed" || expr.starts_with("params.")
}

/// The byte ranges of `${...}` references not escaped by a backslash.
fn references(s: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while let Some(found) = s[i..].find("${") {
        let start = i + found;
        let Some(close) = s[start..].find('}') else {
            break;
        };
        let end = start + close + 1;
        if start == 0 || bytes[start - 1] != b'\\' {
            out.push((start, end));
        }
        i = end;
    }
    out
}

/// The variables a generated stage's fields are interpolated with: the context, and the stage's
/// `item`/`key` lying over it (a name there hides the context's of the same name). Kept apart
/// rather than copied in, since copying the context (a project's whole `params.yaml`) for every
/// generated stage made templating cost stages x params: two thirds of a no-op status of a real
/// 1,347-stage project.
#[derive(Clone, Copy)]
struct Scope<'a> {
    base: &'a Node,
    local: &'a [(String, Node)],
}

impl<'a> Scope<'a> {
    fn select(&self, expr: &str) -> Option<&'a Node> {
        let expr = expr.trim();
        let first = expr.split(['.', '[']).next().unwrap_or("");
        match self.local.iter().find(|(name, _)| name == first) {
            Some((_, value)) => select(value, &expr[first.len()..]),
            None => select(self.base, expr),
        }
    }
}

/// Looks up `a.b`, `a[0]` or `a.0` in the context.
pub(super) fn select<'a>(ctx: &'a Node, expr: &str) -> Option<&'a Node> {
    let expr = expr.trim().replace('[', ".").replace(']', "");
    let mut cur = ctx;
    for part in expr.split('.').filter(|p| !p.is_empty()) {
        cur = match &cur.value {
            Value::Map(m) => &m.iter().find(|(k, _)| k.name == part)?.1,
            Value::Seq(items) => items.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::Str(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) => Some(python_float(*f)),
        Value::Bool(b) => Some(if *b { "true" } else { "false" }.to_string()),
        Value::Null => Some("None".to_string()),
        Value::Seq(_) | Value::Map(_) => None,
    }
}

/// A value as DVC pastes it into text: Python's `str`, with booleans lowercase.
pub(super) fn to_str(node: &Node) -> String {
    scalar_text(&node.value).unwrap_or_else(|| format!("{:?}", node.to_json()))
}

/// Python's `repr` of a float: shortest round-trip digits, positional for exponents -4..16,
/// otherwise `1e-05` style; integral values keep `.0`.
pub(super) fn python_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..16).contains(&exp) {
        let s = format!("{x}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

/// A mapping pasted into a command, as DVC does: `--key value` for each (flattened) key,
/// `--flag` for true, nothing for false, list items after their key.
fn dict_flags(node: &Node) -> String {
    let mut flat = Vec::new();
    flatten("", node, &mut flat);
    let mut out = Vec::new();
    for (k, v) in flat {
        match &v.value {
            Value::Bool(true) => out.push(format!("--{k}")),
            Value::Bool(false) => {}
            Value::Str(s) => out.push(format!("--{k} {}", shell_quote(s))),
            Value::Seq(items) => {
                let parts: Vec<String> = items
                    .iter()
                    .map(|i| match &i.value {
                        Value::Str(s) => shell_quote(s),
                        _ => to_str(i),
                    })
                    .collect();
                out.push(format!("--{k} {}", parts.join(" ")));
            }
            _ => out.push(format!("--{k} {}", to_str(v))),
        }
    }
    out.join(" ")
}

fn flatten<'a>(prefix: &str, node: &'a Node, out: &mut Vec<(String, &'a Node)>) {
    match &node.value {
        Value::Map(m) => {
            for (k, v) in m {
                let name = if prefix.is_empty() {
                    k.name.clone()
                } else {
                    format!("{prefix}.{}", k.name)
                };
                flatten(&name, v, out);
            }
        }
        _ => out.push((prefix.to_string(), node)),
    }
}

/// Python's `shlex.quote`.
fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./-_".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\"'\"'"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_and_key_lie_over_the_context() {
        let ctx = crate::yaml::parse("item: {a: 1}\nlr: 0.1\nlist: [x, y]\n").unwrap();
        let item = crate::yaml::parse("{a: 2, b: [3, 4]}\n").unwrap();
        let local = [("item".to_string(), item)];
        let scope = Scope {
            base: &ctx,
            local: &local,
        };
        let text = |expr: &str| scope.select(expr).map(to_str);
        // A local name hides the context's, with paths below it.
        assert_eq!(text("item.a").as_deref(), Some("2"));
        assert_eq!(text(" item.b[1] ").as_deref(), Some("4"));
        // Other names come from the context.
        assert_eq!(text("lr").as_deref(), Some("0.1"));
        assert_eq!(text("list.1").as_deref(), Some("y"));
        // A name that only starts like a local one is not it.
        assert_eq!(text("items"), None);
    }

    #[test]
    fn a_repeated_key_makes_one_stage_with_the_last_variables() {
        let node = |s: &str| Node {
            value: Value::Str(s.into()),
            pos: Pos::default(),
        };
        let gen = |k: &str, v: &str| (k.to_string(), vec![("item".to_string(), node(v))]);
        let out = one_per_key(vec![gen("a", "1"), gen("b", "2"), gen("a", "3")]);
        let keys: Vec<_> = out
            .iter()
            .map(|(k, v)| (k.as_str(), v[0].1.clone()))
            .collect();
        assert_eq!(keys, vec![("a", node("3")), ("b", node("2"))]);
    }

    #[test]
    fn floats_print_as_python_prints_them() {
        assert_eq!(python_float(0.1), "0.1");
        assert_eq!(python_float(1e-5), "1e-05");
        assert_eq!(python_float(100.0), "100.0");
        assert_eq!(python_float(1e16), "1e+16");
        assert_eq!(python_float(0.0001), "0.0001");
        assert_eq!(python_float(2.5e-7), "2.5e-07");
    }

    #[test]
    fn escaped_references_are_left() {
        assert_eq!(references(r"a \${x} ${y}"), vec![(8, 12)]);
    }
}
